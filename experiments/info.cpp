// `satalab info`: the paper's cost formulas (eqs. 12-15) for given head sizes,
// against a conventional KV cache at context n.
#include <fmt/format.h>

#include <vector>

#include "commands.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/cost/cost.hpp"
#include "satalab/error.hpp"

namespace satalab::cli {
namespace {

struct InfoOptions {
  std::vector<std::size_t> d_keys;
  std::size_t d_value = 0;  // 0: equal to d_key
  std::size_t taylor_terms = 4;
  std::uint64_t n_tokens = 100000;
};

std::string bytes_text(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024 && u < 5) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.4g} {}", bytes, units[u]);
}

void print_one(std::size_t d_key, std::size_t d_value, std::size_t P, std::uint64_t n) {
  const SataCost cost = sata_cost(d_key, d_value, P);
  fmt::print("SATA cost, d_key={} d_value={} P={} (degrees 0..{})\n", d_key, d_value, P, P - 1);
  fmt::print("  {:>6}  {:>20}  {:>22}  {:>26}\n", "degree", "m_p = C(d+p-1, p)", "state (d_v+1)*m_p",
             "FLOPs/token (4d_v+2p+4)*m_p");
  for (std::size_t p = 0; p < P; ++p) {
    const std::uint64_t m = symmetric_basis_size(d_key, p);
    fmt::print("  {:>6}  {:>20}  {:>22}  {:>26}\n", p, m, m * (d_value + 1), m * (4 * d_value + 2 * p + 4));
  }
  fmt::print("  {:>6}  {:>20}  {:>22}  {:>26}\n", "total", cost.features, cost.state_elements, cost.flops_per_token);
  fmt::print("  state elements (eq. 13): {}\n", cost.state_elements);
  fmt::print("  FLOPs per token (eq. 15): {}\n", cost.flops_per_token);
  const double elements = static_cast<double>(cost.state_elements);
  fmt::print("  state bytes: fp64 {}, fp32 {}, fp16/bf16 {}, fp8 {}\n", bytes_text(8 * elements),
             bytes_text(4 * elements), bytes_text(2 * elements), bytes_text(elements));
  const std::uint64_t kv = kv_cache_elements(d_key, d_value, n);
  const std::uint64_t conventional = conventional_flops_per_token(d_key, d_value, n);
  fmt::print("conventional attention at n_tokens={}:\n", n);
  fmt::print("  KV cache elements n(d_k+d_v): {} ({} at fp16)\n", kv, bytes_text(2.0 * static_cast<double>(kv)));
  fmt::print("  FLOPs per token n(2d_k+2d_v+3): {}\n", conventional);
  fmt::print("ratios at n_tokens={}: state / KV cache = {:.4g}, SATA FLOPs / conventional FLOPs = {:.4g}\n", n,
             elements / static_cast<double>(kv),
             static_cast<double>(cost.flops_per_token) / static_cast<double>(conventional));
  fmt::print("break-even context (KV cache = state): {:.0f} tokens; (conventional FLOPs = SATA FLOPs): {:.0f} tokens\n\n",
             elements / static_cast<double>(d_key + d_value),
             static_cast<double>(cost.flops_per_token) / static_cast<double>(2 * d_key + 2 * d_value + 3));
}

}  // namespace

Runner add_info_command(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Print SATA's state size and FLOPs per token (paper eqs. 12-15) per degree, and compare them with a\n"
              "conventional KV cache and attention FLOPs at context length n.");
  cmd->add_option("--d-key", options->d_keys, "Head size of queries and keys; several allowed (--d-key 8 16 32 64)")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--d-value", options->d_value, "Head size of values (default: equal to each d_key)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--taylor-terms,-P", options->taylor_terms, "Number of Taylor terms P (degrees 0..P-1)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--n-tokens", options->n_tokens, "Context length for the KV-cache comparison")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  return [options]() {
    for (std::size_t d_key : options->d_keys) {
      print_one(d_key, options->d_value ? options->d_value : d_key, options->taylor_terms, options->n_tokens);
    }
    return 0;
  };
}

}  // namespace satalab::cli
