#pragma once
// The four-way error decomposition of one point (docs/architecture.md), the
// one implementation behind `satalab run`, `satalab sweep` (single process and
// MPI ranks) and Python's decompose():
//   total      = method(policy)            vs exact(truth)
//   truncation = taylor-quadratic(truth)   vs exact(truth)             (sata, taylor-quadratic)
//   rounding   = method(policy)            vs taylor-quadratic(truth)  (sata, taylor-quadratic)
//   baseline   = exact(policy)             vs exact(truth)             (for exact: the total;
//                                           for exact-kvquant: the unquantized cache;
//                                           for a kernel recipe: its plain counterpart,
//                                           attention/recipe.hpp, or the total when it is one)
// plus the normaliser statistics, needle hit rates and KV scales of the
// method's output. Points that share inputs, truth and measured rows share one
// TruthCache: one truth, one Taylor-quadratic oracle per P, one exact baseline
// per policy.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "satalab/attention/compute.hpp"
#include "satalab/experiment/point.hpp"
#include "satalab/workload/needle.hpp"

namespace satalab {

// A point's inputs; the needle construction for the needle workload.
struct PointInputs {
  QkvArrays qkv;
  std::optional<NeedleInputs> needle;
};

// Generates or reads the inputs of spec's workload.
PointInputs point_inputs(const PointSpec& spec);

// The role of one attention computation in a decomposition.
enum class Computation { method, truth, oracle, baseline };

// How one attention output is computed; compute_attention by default. A caller
// may pass its own (one that reports progress, times or can be interrupted) as
// long as it returns what compute_attention returns.
using AttentionComputer = std::function<AttentionOutput(Computation, Method, const QkvArrays&,
                                                        const PrecisionPolicy&, const AttentionOptions&)>;

// The computations of a decomposition, (method, policy) each, in the order
// they run: the method at the policy, exact at truth, Taylor-quadratic at
// truth, exact at the policy (all four listed for every method: the memory
// checks count them all).
std::vector<std::pair<Method, PrecisionPolicy>> decomposition_computations(const PointSpec& spec);

// Checks every computation of spec on `inputs` against the memory limit before
// any starts (ResourceLimit naming the computation), and for sata that the
// symmetric basis tables can be built.
void check_decomposition_memory(const PointSpec& spec, const QkvArrays& inputs);

// Working memory of a point from its shape alone: the largest computation plus
// the inputs and outputs held meanwhile and sata's basis tables
// (conservative). Throws ResourceLimit on overflow.
std::uint64_t point_memory_bytes(const PointSpec& spec);

// The truth, oracles and baselines shared by the points of one group (the
// same inputs, truth precision and measured rows; the first point's attention
// options). Each is computed on first use; not thread-safe.
class TruthCache {
 public:
  TruthCache(PointInputs inputs, const PointSpec& first, AttentionComputer compute = {});

  const PointInputs& inputs() const { return inputs_; }
  const PrecisionPolicy& truth() const { return truth_; }
  const std::vector<std::size_t>& rows() const { return options_.query_rows; }
  // Exact attention at the truth precision, at the measured rows.
  const AttentionOutput& truth_output();
  // Seconds the truth took, once: the first call after it was computed
  // returns them, later calls 0 (a group charges them to one point).
  double take_truth_seconds();
  // Taylor-quadratic at the truth precision with P terms.
  // (With read-out polynomials: one oracle per P, polynomial and key centring.)
  const AttentionOutput& oracle(std::size_t taylor_terms, const ReadoutPolynomial& polynomial = {},
                                KeyCentring key_centring = KeyCentring::none);
  // Exact attention at `policy` (keyed by its name).
  const AttentionOutput& baseline(const PrecisionPolicy& policy);
  AttentionOutput compute(Computation role, Method method, const PrecisionPolicy& policy,
                          const AttentionOptions& options) const;
  // Exact attention under a kernel recipe (the plain implementation a recipe
  // point's baseline is; keyed by the recipe's name, tiles and seed).
  const AttentionOutput& recipe_baseline(const KernelRecipe& recipe);

 private:
  PointInputs inputs_;
  PrecisionPolicy truth_;
  AttentionOptions options_;  // the first point's, with its measured rows
  AttentionComputer compute_;
  std::optional<AttentionOutput> truth_output_;
  double truth_seconds_ = 0;
  bool truth_seconds_taken_ = false;
  std::map<std::pair<std::size_t, std::string>, AttentionOutput> oracles_;
  std::map<std::string, AttentionOutput> baselines_;
  std::map<std::string, AttentionOutput> recipe_baselines_;  // kernel recipes
};

// A decomposed point: the method's output and the statistics.
struct PointEvaluation {
  // The method at the policy, at the measured rows (every row when spec.rows
  // is empty); kv scales as compute_attention returns them.
  AttentionOutput output;
  ErrorMetrics total;
  std::optional<ErrorMetrics> truncation, rounding;
  ErrorMetrics baseline;
  NormaliserStats normalisers;  // over every row the method produced
  double needle_hit_rate = std::numeric_limits<double>::quiet_NaN();
  double needle_truth_hit_rate = std::numeric_limits<double>::quiet_NaN();
  double method_seconds = 0;
};

// Decomposes one point against the cache's truth (spec.rows must equal
// cache.rows()). Throws what compute_attention throws.
PointEvaluation evaluate_point(const PointSpec& spec, TruthCache& cache);

// The results-file record of an evaluation: statistics, kv scales, needle hit
// rates and bytes per sequence; with `outputs` the raw y, y_truth and z.
// (status, truth_used, timings, logits and costs are the caller's.)
void fill_result(const PointSpec& spec, const PointEvaluation& evaluation, TruthCache& cache, bool outputs,
                 PointResult& r);

}  // namespace satalab
