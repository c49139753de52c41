// `satalab info`: the paper's cost formulas (eqs. 12-15) for given head sizes
// and numbers of Taylor terms, against a conventional KV cache at context n.
// Text for people by default; --json for scripts (scripts/plot.py draws the
// paper's Figures 1, 3, 4 and 5 from it).
#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

#include "commands.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/cost/cost.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/format.hpp"
#include "satalab/version.hpp"

namespace satalab::cli {
namespace {

// Version of the --json document; bump it when a key is added, removed,
// renamed or changes meaning (scripts/plot.py refuses versions it does not know).
constexpr int kCostJsonSchemaVersion = 1;

struct InfoOptions {
  std::vector<std::size_t> d_keys;
  std::size_t d_value = 0;  // 0: equal to d_key
  std::vector<std::size_t> taylor_terms{4};
  std::uint64_t n_tokens = 100000;
  bool json = false;
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

// α_p = 1 / (p! c^p) with c = sqrt(d_key): the scaling constant of the degree-p
// term (paper eq. 9 and Figure 5).
double alpha(std::size_t d_key, std::size_t degree) {
  double factorial = 1;
  for (std::size_t i = 2; i <= degree; ++i) factorial *= static_cast<double>(i);
  return 1.0 / (factorial * std::pow(static_cast<double>(d_key), static_cast<double>(degree) / 2));
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

// One model (d_key, d_value, P) as a JSON object. Per degree: the packed basis
// size m_p = C(d+p-1, p), the unpacked size d^p of a feature map that keeps
// every ordered monomial (Figure 3), the state elements (d_v+1)·m_p (eq. 12),
// the FLOPs (4 d_v + 2p + 4)·m_p (eq. 14) and α_p. Conventional attention is
// given per context token, since both of its costs are linear in n:
// n·(d_k+d_v) cache elements and n·(2 d_k + 2 d_v + 3) FLOPs per token.
std::string model_json(std::size_t d_key, std::size_t d_value, std::size_t P, std::uint64_t n) {
  const SataCost cost = sata_cost(d_key, d_value, P);
  std::string terms;
  for (std::size_t p = 0; p < P; ++p) {
    const std::uint64_t m = symmetric_basis_size(d_key, p);
    terms += fmt::format(
        "{}\n        {{\"degree\": {}, \"basis_size\": {}, \"unpacked_size\": {:.17g}, \"state_elements\": {}, "
        "\"flops_per_token\": {}, \"alpha\": {:.17g}}}",
        p ? "," : "", p, m, std::pow(static_cast<double>(d_key), static_cast<double>(p)), m * (d_value + 1),
        m * (4 * d_value + 2 * p + 4), alpha(d_key, p));
  }
  return fmt::format(
      "    {{\"d_key\": {}, \"d_value\": {}, \"taylor_terms\": {}, \"features\": {}, \"state_elements\": {}, "
      "\"flops_per_token\": {},\n"
      "     \"kv_cache_elements_per_context_token\": {}, \"conventional_flops_per_context_token\": {},\n"
      "     \"kv_cache_elements\": {}, \"conventional_flops_per_token\": {},\n"
      "     \"terms\": [{}\n     ]}}",
      d_key, d_value, P, cost.features, cost.state_elements, cost.flops_per_token, d_key + d_value,
      2 * d_key + 2 * d_value + 3, kv_cache_elements(d_key, d_value, n), conventional_flops_per_token(d_key, d_value, n),
      terms);
}

// Resolution of the formats models run in (Figure 5): the unit roundoff 2^-p
// and PyTorch's finfo.resolution, 10^-floor((p-1)·log10 2), the decimal
// resolution the paper plots.
std::string formats_json() {
  std::string out;
  for (const char* name : {"e5m2", "e4m3", "bf16", "fp16", "fp32", "fp64"}) {
    const Format f = format_by_name(name);
    const double digits = std::floor(static_cast<double>(f.precision_bits - 1) * std::log10(2.0));
    out += fmt::format("{}\n    {{\"name\": \"{}\", \"precision_bits\": {}, \"unit_roundoff\": {:.17g}, "
                       "\"decimal_resolution\": {:.17g}}}",
                       out.empty() ? "" : ",", f.name, f.precision_bits, f.unit_roundoff(), std::pow(10.0, -digits));
  }
  return out;
}

void print_json(const InfoOptions& options) {
  std::string command = "satalab info --d-key";
  for (std::size_t d : options.d_keys) command += fmt::format(" {}", d);
  if (options.d_value) command += fmt::format(" --d-value {}", options.d_value);
  command += " --taylor-terms";
  for (std::size_t P : options.taylor_terms) command += fmt::format(" {}", P);
  command += fmt::format(" --n-tokens {} --json", options.n_tokens);
  std::string models;
  for (std::size_t d_key : options.d_keys) {
    for (std::size_t P : options.taylor_terms) {
      if (!models.empty()) models += ",\n";
      models += model_json(d_key, options.d_value ? options.d_value : d_key, P, options.n_tokens);
    }
  }
  fmt::print(
      "{{\n  \"kind\": \"satalab-cost\",\n  \"schema_version\": {},\n  \"satalab_version\": \"{}\",\n"
      "  \"git_commit\": \"{}\",\n  \"command_line\": \"{}\",\n  \"n_tokens\": {},\n"
      "  \"formats\": [{}\n  ],\n  \"models\": [\n{}\n  ]\n}}\n",
      kCostJsonSchemaVersion, satalab::version(), satalab::git_commit(), command, options.n_tokens, formats_json(), models);
}

}  // namespace

Runner add_info_command(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Print SATA's state size and FLOPs per token (paper eqs. 12-15) per degree, and compare them with a\n"
              "conventional KV cache and attention FLOPs at context length n. --json prints the same numbers (and\n"
              "alpha_p per degree, the unpacked basis size d^p and the resolution of fp8/bf16/fp16/fp32/fp64) as\n"
              "one JSON document, the input of scripts/plot.py's cost figures.");
  cmd->add_option("--d-key", options->d_keys, "Head size of queries and keys; several allowed (--d-key 8 16 32 64)")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--d-value", options->d_value, "Head size of values (default: equal to each d_key)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--taylor-terms,-P", options->taylor_terms,
                  "Number of Taylor terms P (degrees 0..P-1); several allowed (-P 1 2 3 4)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--n-tokens", options->n_tokens, "Context length for the KV-cache comparison")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", options->json,
                "Print one JSON document (kind \"satalab-cost\", schema_version 1) instead of the text");
  return [options]() {
    if (options->json) {
      print_json(*options);
      return 0;
    }
    for (std::size_t d_key : options->d_keys) {
      for (std::size_t P : options->taylor_terms) {
        print_one(d_key, options->d_value ? options->d_value : d_key, P, options->n_tokens);
      }
    }
    return 0;
  };
}

}  // namespace satalab::cli
