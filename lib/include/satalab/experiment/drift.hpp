#pragma once
// Long-context drift (docs/architecture.md §1, question 4; §10): SATA's state
// summed over up to 10^9 tokens in each state accumulation mode, against
// exact attention at log-spaced query positions. Inputs are counter-based
// (workload/counter_inputs.hpp), so nothing is cached: the decode draws its
// token, the truth regenerates the keys a query sees.
//
// At every truth position p of every head, the query of the decode step at p
// (attending to tokens 0 … p) is compared with
//   - the truth: exact attention in fp64 (streaming_exact_row), on the
//     float64 inputs;
//   - the Taylor oracle: the truncated series T_P in fp64 on the inputs as
//     the policy stores them, per degree: z_p = Σ_j s_j^p/p! and the
//     numerators, so SATA's rounding is separated from its truncation;
//   - the exact baseline: exact attention at the policy, computed the way a
//     long-context decoder splits keys (flash-decoding): blocks of
//     kStreamingKeyBlock keys, each an online softmax with the policy's
//     rounding in key order, the blocks merged in order in the accumulate
//     format, each rescaled by exp(m_b − m).
// Heads decode in parallel (OpenMP), each head on one thread in token order,
// so the numbers do not depend on the thread count; the truth's blocks run
// in parallel with fixed merge orders.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "satalab/attention/options.hpp"
#include "satalab/numeric/precision_policy.hpp"
#include "satalab/workload/counter_inputs.hpp"

namespace satalab {

struct DriftConfig {
  std::uint64_t tokens = 100'000'000;  // N: tokens decoded per head
  std::size_t heads = 2, d_key = 8, d_value = 8, taylor_terms = 4;
  std::string precision = "fp32";
  std::vector<StateAccumulation> modes = {StateAccumulation::plain, StateAccumulation::compensated,
                                          StateAccumulation::blocked, StateAccumulation::fp64};
  std::size_t state_block = 1024;  // tokens per block of the blocked mode
  std::string workload = "gaussian";  // counter-based gaussian (the only one)
  double scale = 1.0;                 // q, k entries N(0, scale^2)
  std::uint64_t seed = 1;
  std::uint64_t first_position = 1000;  // the first truth position
  std::size_t positions = 16;           // truth positions, log-spaced first_position … N−1
};

// Throws InvalidArgument (one line naming the value and what is allowed):
// N not above the first truth position, positions < 2, a size < 1, an mp
// policy, an unknown workload, an empty or repeated mode list.
void validate_drift_config(const DriftConfig& config);

// The truth positions: round(first · (last/first)^(i/(count−1))) with last =
// N − 1, duplicates dropped, increasing.
std::vector<std::uint64_t> drift_positions(const DriftConfig& config);

// One line per key=value of the configuration, the identity of a checkpoint.
std::string drift_config_text(const DriftConfig& config);

// What the truth side computes for one (head, position), all float64.
struct DriftTruth {
  std::vector<double> y;                 // exact attention, fp64 (d_value)
  double z = 0, max_score = 0;           // Σ exp(s − max s), max s
  std::vector<double> taylor_y;          // the Taylor oracle's output (d_value)
  std::vector<double> taylor_z_terms;    // Σ_j s_j^p / p!, p < P
  std::vector<double> baseline_y;        // exact attention at the policy (d_value)
  double baseline_z = 0;
};
// InvalidArgument for an mp policy.
DriftTruth drift_truth(const CounterWorkload& workload, std::size_t head, std::uint64_t position,
                       const PrecisionPolicy& policy, std::size_t taylor_terms);

// SATA's output at one (mode, head, position).
struct DriftSata {
  std::vector<double> y;        // d_value
  double z = 0;                 // the normaliser as read out at the policy
  std::vector<double> z_terms;  // the state's z column read out per degree in fp64 (P)
};

// Everything one run has measured so far; [head][position] and [mode][head][position].
struct DriftResults {
  std::vector<std::uint64_t> positions;
  std::size_t done_positions = 0;  // positions < tokens_done whose rows are filled
  std::vector<std::vector<DriftTruth>> truth;
  std::vector<std::vector<std::vector<DriftSata>>> sata;
};

// The decode of one configuration, advanced in pieces and checkpointable.
class DriftRun {
 public:
  explicit DriftRun(const DriftConfig& config);  // validates
  ~DriftRun();
  DriftRun(const DriftRun&) = delete;
  DriftRun& operator=(const DriftRun&) = delete;

  // Decodes tokens [tokens_done(), until) of every head and mode, and
  // computes the truth of the positions passed.
  void advance(std::uint64_t until);
  std::uint64_t tokens_done() const;
  const DriftConfig& config() const;
  const DriftResults& results() const;

  // The states of every (mode, head), exactly (SataState::snapshot), and the
  // inverse; InvalidArgument when the numbers do not fit this configuration.
  std::vector<std::vector<double>> state_snapshots() const;
  void restore(std::uint64_t tokens_done, const std::vector<std::vector<double>>& snapshots,
               const DriftResults& results);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace satalab

namespace satalab {

// Errors of an output row y against a reference: max_t |y_t − ref_t| and
// ||y − ref||_2 / ||ref||_2 (NaN when either row is empty).
struct RowError {
  double abs = 0, rel = 0;
};
RowError drift_row_error(const std::vector<double>& y, const std::vector<double>& ref);

}  // namespace satalab
