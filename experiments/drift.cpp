// `satalab drift`: SATA's state summed over a long context in each state
// accumulation mode, against exact attention at log-spaced positions
// (experiment/drift.hpp; docs/architecture.md §6, §10).
#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "satalab/error.hpp"
#include "satalab/experiment/drift.hpp"
#include "satalab/io/drift_file.hpp"
#include "satalab/io/output_path.hpp"

namespace satalab::cli {
namespace {

struct DriftOptions {
  DriftConfig config;
  std::string modes = "plain,compensated,blocked,fp64";
  std::string output = "drift.h5";
  std::string checkpoint;  // default <output>.checkpoint.h5
  std::uint64_t checkpoint_tokens = 10'000'000;
  double checkpoint_seconds = 300;
  bool resume = false, overwrite = false;
};

std::vector<StateAccumulation> parse_modes(const std::string& text) {
  std::vector<StateAccumulation> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(state_accumulation_by_name(item));
  return out;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

int run_drift(DriftOptions& o, const std::string& command_line) {
  // Everything that can be refused is refused before anything is computed or written.
  o.config.modes = parse_modes(o.modes);
  validate_drift_config(o.config);
  if (o.checkpoint_tokens < 1) throw InvalidArgument("--checkpoint-tokens 0 is invalid (must be >= 1)");
  const std::string checkpoint = o.checkpoint.empty() ? o.output + ".checkpoint.h5" : o.checkpoint;
  check_output_path(o.output, o.overwrite ? OutputMode::replace : OutputMode::create);
  check_output_path(checkpoint, o.resume ? OutputMode::extend : (o.overwrite ? OutputMode::replace : OutputMode::create));

  DriftRun run(o.config);
  double elapsed_before = 0;
  if (o.resume) elapsed_before = read_drift_checkpoint(checkpoint, run);

  const auto start = std::chrono::steady_clock::now();
  const auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  const std::uint64_t N = o.config.tokens, resumed_at = run.tokens_done();
  auto last_checkpoint = std::chrono::steady_clock::now();
  auto last_progress = last_checkpoint;
  std::uint64_t next_checkpoint = (run.tokens_done() / o.checkpoint_tokens + 1) * o.checkpoint_tokens;
  fmt::print(stderr, "satalab drift: {} tokens x {} heads, {} modes at {}, {} truth positions{}\n", N,
             o.config.heads, o.config.modes.size(), o.config.precision, run.results().positions.size(),
             o.resume ? fmt::format(", resumed at {} tokens", resumed_at) : "");
  // Pieces of at most 2^16 tokens: progress and the time-based checkpoint are looked at between them.
  constexpr std::uint64_t kPiece = 1 << 16;
  while (run.tokens_done() < N) {
    const std::uint64_t until = std::min({N, run.tokens_done() + kPiece, next_checkpoint});
    run.advance(until);
    const bool by_tokens = run.tokens_done() >= next_checkpoint;
    const bool by_time = since(last_checkpoint) >= o.checkpoint_seconds;
    if ((by_tokens || by_time) && run.tokens_done() < N) {
      write_drift_checkpoint(checkpoint, run, elapsed_before + since(start));
      last_checkpoint = std::chrono::steady_clock::now();
      while (next_checkpoint <= run.tokens_done()) next_checkpoint += o.checkpoint_tokens;
    }
    if (since(last_progress) >= 10 || run.tokens_done() == N) {
      const double s = since(start);
      const double rate = static_cast<double>(run.tokens_done() - resumed_at) / std::max(s, 1e-9);
      const double eta = static_cast<double>(N - run.tokens_done()) / std::max(rate, 1e-9);
      fmt::print(stderr, "  {:>12} / {} tokens ({:5.1f}%), {} of {} positions, {:.3g} tokens/s, ETA {:.0f} s\n",
                 run.tokens_done(), N, 100.0 * static_cast<double>(run.tokens_done()) / static_cast<double>(N),
                 run.results().done_positions, run.results().positions.size(), rate, eta);
      last_progress = std::chrono::steady_clock::now();
    }
  }
  const double seconds = elapsed_before + since(start);
  std::map<std::string, std::string> attributes = {
      {"command_line", command_line},
      {"start_time", utc_now()},
      {"seconds", fmt::format("{:.6g}", seconds)},
      {"threads", std::to_string(omp_get_max_threads())},
  };
  write_drift_file(o.output, run, attributes, o.overwrite);
  std::error_code ignored;
  std::filesystem::remove(checkpoint, ignored);

  // A summary: the relative error at the last position, head 0, per mode.
  const auto& r = run.results();
  const std::size_t last = r.positions.size() - 1;
  fmt::print("satalab drift: {} tokens, {} heads, P={}, d_key={}, d_value={}, {} in {:.1f} s -> {}\n", N,
             o.config.heads, o.config.taylor_terms, o.config.d_key, o.config.d_value, o.config.precision, seconds,
             o.output);
  fmt::print("  at position {}: truncation {:.3e}, exact attention at {} {:.3e}\n", r.positions[last],
             drift_row_error(r.truth[0][last].taylor_y, r.truth[0][last].y).rel, o.config.precision,
             drift_row_error(r.truth[0][last].baseline_y, r.truth[0][last].y).rel);
  for (std::size_t m = 0; m < o.config.modes.size(); ++m) {
    fmt::print("  {:<12} rel error {:.3e}  rounding (vs Taylor oracle) {:.3e}  z_0 {:.9g} (exact {:.9g})\n",
               state_accumulation_name(o.config.modes[m]), drift_row_error(r.sata[m][0][last].y, r.truth[0][last].y).rel,
               drift_row_error(r.sata[m][0][last].y, r.truth[0][last].taylor_y).rel, r.sata[m][0][last].z_terms[0],
               r.truth[0][last].taylor_z_terms[0]);
  }
  return 0;
}

}  // namespace

Runner add_drift_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<DriftOptions>();
  CLI::App* cmd = app.add_subcommand(
      "drift",
      "Long-context drift: streaming SATA decode of counter-based inputs (q, k ~ N(0, scale^2), v ~ N(0, 1),\n"
      "regenerated on demand) to N tokens per head, heads in parallel, one state per accumulation mode;\n"
      "at log-spaced positions the output against exact attention in fp64 over all previous keys, the\n"
      "Taylor oracle (fp64) and exact attention at the policy. Checkpoints the states; --resume continues\n"
      "a killed run with the same numbers. Writes an HDF5 file (docs/results-schema.md, Drift files).");
  cmd->add_option("--tokens,-N", o->config.tokens, "Tokens decoded per head")->capture_default_str();
  cmd->add_option("--heads", o->config.heads, "Heads (decoded in parallel)")->capture_default_str();
  cmd->add_option("--d-key", o->config.d_key, "Head size of q and k")->capture_default_str();
  cmd->add_option("--d-value", o->config.d_value, "Head size of v")->capture_default_str();
  cmd->add_option("--taylor-terms,-P", o->config.taylor_terms, "Taylor terms P")->capture_default_str();
  cmd->add_option("--precision", o->config.precision,
                  "Precision policy with a float or double carrier: fp32, fp16-acc32, bf16, bf16-acc32, fp16, fp64")
      ->capture_default_str();
  cmd->add_option("--modes", o->modes,
                  "State accumulation modes, comma-separated: plain, compensated (Kahan-Neumaier), blocked\n"
                  "(a block of --state-block tokens summed apart, then added), fp64 (state sums in double)")
      ->capture_default_str();
  cmd->add_option("--state-block", o->config.state_block, "Tokens per block of the blocked mode")
      ->capture_default_str();
  cmd->add_option("--workload", o->config.workload, "Input distribution: gaussian (counter-based)")
      ->capture_default_str();
  cmd->add_option("--scale", o->config.scale, "Standard deviation of q and k entries")->capture_default_str();
  cmd->add_option("--seed", o->config.seed, "Seed of the counter-based generator")->capture_default_str();
  cmd->add_option("--first-position", o->config.first_position, "First truth position")->capture_default_str();
  cmd->add_option("--positions", o->config.positions, "Truth positions, log-spaced up to N-1")->capture_default_str();
  cmd->add_option("--output,-o", o->output, "Results file (HDF5)")->capture_default_str();
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint file (default <output>.checkpoint.h5)");
  cmd->add_option("--checkpoint-tokens", o->checkpoint_tokens, "Checkpoint every this many tokens")
      ->capture_default_str();
  cmd->add_option("--checkpoint-seconds", o->checkpoint_seconds, "... or after this many seconds")
      ->capture_default_str();
  cmd->add_flag("--resume", o->resume, "Continue from the checkpoint (same configuration)");
  cmd->add_flag("--force", o->overwrite, "Replace an existing results file");
  return [o, command_line] { return run_drift(*o, command_line); };
}

}  // namespace satalab::cli
