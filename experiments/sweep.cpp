// `satalab sweep`: run a grid of points from a TOML sweep file and keep every
// result in one crash-safe HDF5 file (lib/io/results_file.hpp). Points that
// share inputs share one truth computation.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <limits>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "commands.hpp"
#include "satalab/experiment/evaluate.hpp"
#include "satalab/error.hpp"
#include "satalab/io/hdf5_arrays.hpp"
#include "satalab/io/results_file.hpp"
#include "satalab/memory.hpp"
#include "satalab/metrics/error_metrics.hpp"
#include "satalab/workload/gaussian.hpp"
#include "satalab/version.hpp"
#include "sweep_config.hpp"
#include "sweep_mpi.hpp"
#include "sweep_plan.hpp"

namespace satalab::cli {

extern const char* const kResultsSchemaText;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt(int) { g_interrupted.store(true); }

struct SweepOptions {
  std::string config;
  std::string out;
  std::vector<std::string> overrides;
  bool resume = false, force = false, dry_run = false, save_outputs = false, help_schema = false;
  bool skip_unfit = false;
  bool allow_mixed_builds = false;
  int jobs = 0;
  std::uint64_t memory_limit = 0;
  std::string shard;  // "K/N", empty: the whole sweep
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string duration_text(double s) {
  if (!std::isfinite(s)) return "?";
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600) return fmt::format("{:.0f}m{:02.0f}s", std::floor(s / 60), std::fmod(s, 60));
  return fmt::format("{:.0f}h{:02.0f}m", std::floor(s / 3600), std::fmod(s / 60, 60));
}

std::string point_label(const PointParams& p) {
  std::string variant = p.method == "exact-kvquant" ? "kv=" + p.kv_quant
                        : p.recipe != "none"       ? fmt::format("recipe={} {}x{}", p.recipe, p.tile_rows, p.tile_cols)
                                                   : fmt::format("P={}", p.taylor_terms);
  // Read-out polynomials: named when not the default.
  if (p.polynomial != "taylor") {
    variant += " " + p.polynomial + (p.polynomial == "chebyshev" ? fmt::format("(width={})", p.chebyshev_width) : "");
  }
  if (p.key_centring != "none") variant += " keys-" + p.key_centring;
  // State accumulation modes: named when not plain.
  if (p.state_accumulation != "plain") {
    variant += " acc=" + p.state_accumulation +
               (p.state_accumulation == "blocked" ? fmt::format("({})", p.state_block) : "");
  }
  return fmt::format("#{} {} {} d={} H={} n={} scale={} {} {}", p.point_id, p.method, variant, p.d_key, p.heads,
                     p.n_tokens, p.scale, p.precision, p.modifiers.empty() ? p.workload : p.workload + "+" + p.modifiers);
}

void print_summary(const std::vector<PointRecord>& records) {
  fmt::print("\n{:>6} {:<16} {:>3} {:<14} {:>5} {:>5} {:>8} {:>6} {:<12} {:>10} {:>10} {:>10} {:>6} {:>12} {:>8}  {}\n",
             "point", "method", "P", "kv_quant", "d_key", "heads", "n_tokens", "scale", "precision", "abs med",
             "rel med", "abs max", "z<=0", "bytes/seq", "wall s", "status");
  for (const auto& rec : records) {
    const auto& p = rec.params;
    const auto& r = rec.result;
    fmt::print("{:>6} {:<16} {:>3} {:<14} {:>5} {:>5} {:>8} {:>6} {:<12} {:>10.3e} {:>10.3e} {:>10.3e} {:>6} {:>12} "
               "{:>8.2f}  {}\n",
               p.point_id, p.method, p.taylor_terms, p.kv_quant, p.d_key, p.heads, p.n_tokens, p.scale, p.precision,
               r.total.abs_error.median, r.total.rel_error.median, r.total.abs_error.max, r.normalisers.non_positive,
               r.bytes_per_sequence, r.wall_s, r.status);
  }
}

// What a sweep will run, decided before anything runs: the config, the shard,
// the groups of points sharing inputs, and the points refused or skipped.
struct SweepPlan {
  SweepConfig config;
  Shard shard;
  std::vector<PointGroup> groups;              // every point of the sweep, by inputs
  std::vector<bool> in_shard;                  // per point_id
  std::vector<PointSpec> specs;                // per point_id
  std::vector<std::uint64_t> memory;           // per point_id (in-shard points)
  std::map<std::uint64_t, std::string> skipped;  // point_id -> reason (--skip-unfit)
  std::uint64_t shard_points = 0;
  double estimated_seconds = 0;  // the shard's points that will run
};

// Everything that can be refused is refused here, before any point runs.
// With --skip-unfit, points that cannot fit are recorded as skipped instead.
SweepPlan plan_sweep(const SweepOptions& o) {
  if (o.config.empty()) throw InvalidArgument("missing sweep file (usage: satalab sweep CONFIG.toml --out RESULTS.h5)");
  if (o.memory_limit) set_memory_limit_bytes(o.memory_limit);
  if (o.resume && o.force) throw InvalidArgument("--resume and --force exclude each other");
  if (!o.dry_run && o.out.empty()) throw InvalidArgument("--out RESULTS.h5 is required (or use --dry-run)");
  if (o.jobs < 0) throw InvalidArgument(fmt::format("--jobs {} is invalid (must be >= 1)", o.jobs));
  SweepPlan plan;
  if (!o.shard.empty()) plan.shard = parse_shard(o.shard);
  plan.config = load_sweep_config(o.config, o.overrides);
  const auto& points = plan.config.points;
  plan.specs.reserve(points.size());
  for (const PointParams& p : points) {
    try {
      plan.specs.push_back(point_spec(p));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(fmt::format("point {}: {}", point_label(p), e.what()));
    }
  }
  plan.groups = group_by_inputs(points);
  plan.in_shard.assign(points.size(), false);
  const std::vector<std::uint64_t> shard_of = assign_shards(plan.groups, plan.shard.count);
  for (std::size_t g = 0; g < plan.groups.size(); ++g) {
    if (shard_of[g] != plan.shard.index) continue;
    for (const std::uint64_t id : plan.groups[g].point_ids) plan.in_shard[id] = true;
    plan.shard_points += plan.groups[g].point_ids.size();
  }
  plan.memory.assign(points.size(), 0);
  for (const PointParams& p : points) {
    if (!plan.in_shard[p.point_id]) continue;
    try {
      plan.memory[p.point_id] = point_memory_bytes(plan.specs[p.point_id]);
      check_memory(plan.memory[p.point_id], "its working memory");
    } catch (const ResourceLimit& e) {
      if (o.skip_unfit) {
        plan.skipped[p.point_id] = fmt::format("skipped: {}", e.what());
        continue;
      }
      throw ResourceLimit(fmt::format("point {}: {} — refused before running anything; trim the grid with --set, "
                                      "raise --memory-limit, or record such points as skipped with --skip-unfit",
                                      point_label(p), e.what()));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(fmt::format("point {}: {}", point_label(p), e.what()));
    }
    plan.estimated_seconds += point_seconds_estimate(p);
  }
  return plan;
}

std::string shard_text(const Shard& s) { return fmt::format("{}/{}", s.index, s.count); }

int print_dry_run(const SweepPlan& plan) {
  const auto& points = plan.config.points;
  fmt::print("{:>6}  {:<70} {:>12} {:>10}\n", "point", "parameters", "memory", "est. time");
  for (const PointParams& p : points) {
    if (!plan.in_shard[p.point_id]) continue;
    if (const auto it = plan.skipped.find(p.point_id); it != plan.skipped.end()) {
      fmt::print("{:>6}  {:<70} {}\n", p.point_id, point_label(p), it->second);
      continue;
    }
    fmt::print("{:>6}  {:<70} {:>9.1f} MiB {:>10}\n", p.point_id, point_label(p),
               static_cast<double>(plan.memory[p.point_id]) / (1 << 20),
               duration_text(point_seconds_estimate(p)));
  }
  const std::string skipped =
      plan.skipped.empty() ? "" : fmt::format(" ({} skipped: cannot fit)", plan.skipped.size());
  if (plan.shard.count == 1) {
    fmt::print("{} points{}; estimated total {} (a rough model; truths shared between points make it shorter)\n",
               points.size(), skipped, duration_text(plan.estimated_seconds));
    return 0;
  }
  std::vector<double> loads(plan.shard.count, 0.0);
  const std::vector<std::uint64_t> shard_of = assign_shards(plan.groups, plan.shard.count);
  for (std::size_t g = 0; g < plan.groups.size(); ++g) loads[shard_of[g] - 1] += plan.groups[g].estimated_seconds;
  const auto [lightest, heaviest] = std::minmax_element(loads.begin(), loads.end());
  fmt::print("shard {}: {} of {} points{}; estimated {} (shards of this split: {} to {}; a rough model)\n",
             shard_text(plan.shard), plan.shard_points, points.size(), skipped, duration_text(plan.estimated_seconds),
             duration_text(*lightest), duration_text(*heaviest));
  return 0;
}

SweepMetadata sweep_metadata(const SweepPlan& plan, const std::string& command_line) {
  SweepMetadata metadata;
  metadata.satalab_version = satalab::version();
  metadata.git_commit = satalab::git_commit();
  metadata.command_line = command_line;
  metadata.config_text = plan.config.text;
  const std::time_t now = std::time(nullptr);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  metadata.start_time = buffer;
  metadata.total_points = plan.config.points.size();
  metadata.shard_index = plan.shard.index;
  metadata.shard_count = plan.shard.count;
  metadata.shard_points = plan.shard_points;
  return metadata;
}

OpenMode open_mode(const SweepOptions& o) {
  return o.resume ? OpenMode::resume : (o.force ? OpenMode::overwrite : OpenMode::create);
}

// Opens the results file; a refusal gets the flags that go on (another build,
// another config, another shard).
void open_results(const SweepOptions& o, const SweepMetadata& metadata, std::optional<ResultsFile>& results) {
  try {
    results.emplace(o.out, metadata, open_mode(o), o.allow_mixed_builds);
  } catch (const ResultsFileExists& e) {
    throw InvalidArgument(fmt::format("{} (use --resume to continue it or --force to replace it)", e.what()));
  } catch (const MixedBuilds& e) {
    throw InvalidArgument(fmt::format("{}; rerun with --allow-mixed-builds to continue anyway", e.what()));
  } catch (const ResumeMismatch& e) {
    if (e.kind() == ResumeMismatch::Kind::config) {
      throw InvalidArgument(fmt::format("{} (use --force to replace it or choose another output file)", e.what()));
    }
    const auto [index, count] = e.shard();
    throw InvalidArgument(fmt::format("{} (resume it with --shard {}/{}{})", e.what(), index, count,
                                      count == 1 ? ", i.e. without --shard" : ""));
  }
}

// The shard's points still to compute, as groups sharing inputs (ids ascending).
std::vector<std::vector<std::uint64_t>> pending_groups(const SweepPlan& plan, const std::set<std::uint64_t>& finished,
                                                       const std::vector<std::size_t>& order) {
  std::vector<std::vector<std::uint64_t>> pending;
  for (const std::size_t g : order) {
    std::vector<std::uint64_t> ids;
    for (const std::uint64_t id : plan.groups[g].point_ids) {
      if (plan.in_shard[id] && !finished.count(id) && !plan.skipped.count(id)) ids.push_back(id);
    }
    if (!ids.empty()) pending.push_back(std::move(ids));
  }
  return pending;
}

// Computes one group of points sharing inputs: their truth once, then each
// point; hands each finished point to `sink`. Stops between points when
// interrupted. `on_start` (may be empty) is called before each point.
void run_group(const SweepPlan& plan, const std::vector<std::uint64_t>& ids, bool save_outputs,
               const std::function<void(const PointParams&)>& on_start, const RecordSink& sink) {
  const PointSpec& first = plan.specs.at(ids.front());
  TruthCache cache(point_inputs(first), first);
  cache.truth_output();  // before the first point: the group's cost, charged to that point
  const LogitStats logits = logit_stats(cache.inputs().qkv, first.softmax_denominator(),
                                        first.options.mask == Mask::causal);
  for (const std::uint64_t id : ids) {
    if (g_interrupted) break;
    const PointParams& p = plan.config.points.at(id);
    if (on_start) on_start(p);
    const auto point_start = std::chrono::steady_clock::now();
    PointRecord record;
    record.params = p;
    PointResult& r = record.result;
    r.truth_used = cache.truth().name;
    r.truth_wall_s = cache.take_truth_seconds();
    try {
      const PointSpec& spec = plan.specs.at(id);
      fill_result(spec, evaluate_point(spec, cache), cache, save_outputs, r);
    } catch (const std::exception& e) {
      const double truth_wall_s = r.truth_wall_s;
      r = unmeasured_result(fmt::format("failed: {}", e.what()));
      r.truth_used = cache.truth().name;
      r.truth_wall_s = truth_wall_s;
    }
    r.logit_max_abs = logits.max_abs;
    r.logit_std = logits.std;
    fill_costs(p, r);
    r.wall_s = seconds_since(point_start);
    sink(std::move(record));
  }
}

// The writer's side of a sweep (single process, or MPI rank 0): journals
// finished points, reports progress and ETA, prints the summary.
class SweepWriter {
 public:
  SweepWriter(const SweepPlan& plan, ResultsFile& results, std::string out,
              const std::vector<std::vector<std::uint64_t>>& pending, const std::string& where)
      : plan_(plan), results_(results), out_(std::move(out)), start_(std::chrono::steady_clock::now()) {
    std::size_t to_run = 0;
    for (const auto& ids : pending) {
      to_run += ids.size();
      for (const std::uint64_t id : ids) estimated_left_ += point_seconds_estimate(plan.config.points[id]);
    }
    std::vector<std::uint64_t> to_skip;
    for (const auto& [id, reason] : plan.skipped) {
      if (!results.finished().count(id)) to_skip.push_back(id);
    }
    already_ = plan.shard_points - to_run - to_skip.size();
    const std::string shard = plan.shard.count == 1
                                  ? fmt::format("{} points", plan.shard_points)
                                  : fmt::format("shard {} with {} of {} points", shard_text(plan.shard),
                                                plan.shard_points, plan.config.points.size());
    fmt::print(stderr, "satalab sweep: {} ({} already finished, {} to run{}) -> {}\n", shard, already_, to_run, where,
               out_);
    for (const std::uint64_t id : to_skip) {  // recorded as rows, so the table says why they are missing
      PointRecord record;
      record.params = plan.config.points[id];
      record.result = unmeasured_result(plan.skipped.at(id));
      fill_costs(record.params, record.result);
      results_.add(record);
      finished_now_.push_back(std::move(record));
    }
  }

  // Single process: before each point.
  void starting(const PointParams& p) const {
    fmt::print(stderr, "[{}/{}] {}  elapsed {}  ETA {}\n", already_ + done_ + 1, plan_.shard_points, point_label(p),
               duration_text(seconds_since(start_)), duration_text(eta()));
  }

  // MPI: after each point, as it arrives.
  void finished(const PointParams& p) const {
    fmt::print(stderr, "[{}/{}] done {}  elapsed {}  ETA {}\n", already_ + done_, plan_.shard_points,
               point_label(p), duration_text(seconds_since(start_)), duration_text(eta()));
  }

  void add(PointRecord&& record) {
    results_.add(record);
    estimated_done_ += point_seconds_estimate(record.params);
    ++done_;
    record.result.y.clear();
    record.result.y_truth.clear();
    record.result.z.clear();
    finished_now_.push_back(std::move(record));
  }

  int finish(bool interrupted) {
    results_.finish();
    std::sort(finished_now_.begin(), finished_now_.end(),
              [](const PointRecord& a, const PointRecord& b) { return a.params.point_id < b.params.point_id; });
    print_summary(finished_now_);
    if (interrupted) {
      fmt::print(stderr, "interrupted: {} points saved in {}; continue with --resume\n", already_ + done_, out_);
      return 130;
    }
    fmt::print(stderr, "satalab sweep: {} points in {}; results in {}\n", done_, duration_text(seconds_since(start_)),
               out_);
    return 0;
  }

 private:
  double eta() const {
    const double left = std::max(0.0, estimated_left_ - estimated_done_);
    return done_ == 0 ? left : seconds_since(start_) / estimated_done_ * left;
  }
  const SweepPlan& plan_;
  ResultsFile& results_;
  std::string out_;
  std::chrono::steady_clock::time_point start_;
  std::size_t already_ = 0, done_ = 0;
  double estimated_left_ = 0, estimated_done_ = 0;
  std::vector<PointRecord> finished_now_;
};

#if SATALAB_WITH_MPI
// One sweep over the ranks of an MPI job (sweep_mpi.hpp). Every rank plans
// the sweep from the same arguments; a refusal on any rank stops all of them
// with exit 2, and only rank 0 touches the results file.
int run_sweep_mpi(const SweepOptions& o, const std::string& command_line) {
  MpiRuntime mpi;
  const bool root = mpi.rank() == 0;
  std::optional<SweepPlan> plan;
  std::string error;
  try {
    plan.emplace(plan_sweep(o));
  } catch (const std::exception& e) {
    error = e.what();
  }
  const bool root_ok = mpi.broadcast(plan.has_value());
  if (!mpi.all(plan.has_value())) {
    if (root) fmt::print(stderr, "satalab: error: {}\n", error);
    if (!root && root_ok && !plan) fmt::print(stderr, "satalab: error: rank {}: {}\n", mpi.rank(), error);
    return kExitBadInput;
  }
  if (o.dry_run) return root ? print_dry_run(*plan) : 0;
  if (o.jobs > 0) omp_set_num_threads(o.jobs);
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  const int jobs = o.jobs;
  const GroupRunner run = [&](const std::vector<std::uint64_t>& ids, const RecordSink& sink) {
    if (jobs > 0) omp_set_num_threads(jobs);  // rank 0 computes on a thread of its own
    run_group(*plan, ids, o.save_outputs, {}, sink);
  };
  if (!root) {
    if (!mpi.broadcast(false)) return kExitBadInput;  // rank 0 could not open the results file
    serve_groups(mpi, run);
    return 0;
  }
  std::optional<ResultsFile> results;
  try {
    open_results(o, sweep_metadata(*plan, command_line), results);
  } catch (...) {
    mpi.broadcast(false);
    throw;
  }
  mpi.broadcast(true);
  const auto pending = pending_groups(*plan, results->finished(), most_expensive_first(plan->groups));
  SweepWriter writer(*plan, *results, o.out, pending, fmt::format(" on {} ranks", mpi.size()));
  distribute_groups(
      mpi, pending, run,
      [&](PointRecord&& r) {
        const PointParams p = r.params;
        writer.add(std::move(r));
        writer.finished(p);
      },
      g_interrupted);
  return writer.finish(g_interrupted);
}
#endif

int run_sweep(const SweepOptions& o, const std::string& command_line) {
  if (o.help_schema) {
    std::cout << kResultsSchemaText;
    return 0;
  }
  if (const std::uint64_t ranks = launched_ranks(); ranks > 1) {
#if SATALAB_WITH_MPI
    return run_sweep_mpi(o, command_line);
#else
    if (launched_rank() > 0) return kExitBadInput;  // rank 0 says why, once
    throw InvalidArgument(fmt::format(
        "this satalab was built without MPI (SATALAB_MPI=OFF) but was started as one of {} ranks (mpirun/srun): "
        "it would run the whole sweep {} times; rebuild with MPI (scripts/setup.sh --with-mpi) or start one process",
        ranks, ranks));
#endif
  }
  const SweepPlan plan = plan_sweep(o);
  if (o.dry_run) return print_dry_run(plan);
  if (o.jobs > 0) omp_set_num_threads(o.jobs);
  std::optional<ResultsFile> opened;
  open_results(o, sweep_metadata(plan, command_line), opened);
  ResultsFile& results = *opened;
  std::vector<std::size_t> in_order(plan.groups.size());
  std::iota(in_order.begin(), in_order.end(), std::size_t{0});
  const auto pending = pending_groups(plan, results.finished(), in_order);
  SweepWriter writer(plan, results, o.out, pending, "");
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  for (const auto& ids : pending) {
    if (g_interrupted) break;
    run_group(
        plan, ids, o.save_outputs, [&](const PointParams& p) { writer.starting(p); },
        [&](PointRecord&& r) { writer.add(std::move(r)); });
  }
  return writer.finish(g_interrupted);
}
}  // namespace

Runner add_sweep_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<SweepOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sweep",
      "Run every point of a sweep file (TOML; list-valued keys are the axes of a Cartesian product) and write\n"
      "one HDF5 results file: a table /points with one row per point and per-point error histograms and\n"
      "position summaries (schema: --help-schema). Points sharing inputs share one truth. Finished points\n"
      "are journaled durably; an interrupted sweep continues with --resume.\n"
      "Scale-out: --shard K/N runs one of N static shards (e.g. one per Slurm array task; unite them with\n"
      "'satalab merge'); under 'mpirun -np R' (a build with SATALAB_MPI) rank 0 hands groups of points out to\n"
      "all R ranks, most expensive first, and is the only writer.");
  cmd->footer(
      "Sweep file keys (each a value or a list): method (sata, taylor-quadratic, exact, exact-kvquant),\n"
      "taylor_terms, kv_quant, d_key, d_value, heads, heads_times_d_key, n_tokens, scale, precision, truth,\n"
      "causal, chunk, placement, workload (gaussian, heavy-tailed, needle, fitted, file), dof, needle_logit,\n"
      "input_file, seed, softmax_denominator, truth_rows, modifiers (rope, outliers, key-bias, sink, joined by\n"
      "'+'), rope_theta, outlier_channels, outlier_magnitude, key_bias_norm, sink_tokens, sink_logit,\n"
      "sink_alignment, recipe, tile_rows, tile_cols, polynomial (taylor, taylor-shift, moment-fit, chebyshev,\n"
      "positive; as 'satalab run --polynomial': points with P >= 3 only, except taylor), chebyshev_width,\n"
      "key_centring (none, first-chunk), state_accumulation (sata: plain, compensated, blocked, fp64),\n"
      "state_block (blocked's tokens per block); name and description. kv_quant is exact-kvquant's KV-cache scheme,\n"
      "as for 'satalab run --kv-quant': none,\n"
      "fp16, bf16, e4m3, e4m3sat, e5m2 [-head|-unscaled], int8, int4-g<G>, int2-g<G>, any but none with\n"
      "[-prerope][-o[<f>]][-s<S>][-r<R>|-rq<R>] (keys before RoPE, dense-and-sparse outliers, sink tokens in\n"
      "16 bits, residual of the sequence or per query). A taylor_terms axis multiplies only sata and taylor-quadratic points, a kv_quant axis only\n"
      "exact-kvquant points. recipe is exact attention's kernel recipe, as for 'satalab run --recipe' (none,\n"
      "flash2-bf16, flash2-fp16, flash2-bf16-acc16, sdpa-math-bf16, sdpa-math-fp16, sdpa-math-fp8, flash3-fp8,\n"
      "flash3-fp8-hadamard, sage-int8): a recipe axis multiplies only exact points, a tile_rows axis only\n"
      "recipes with per-block Q scales, a tile_cols axis only online (flash, sage) recipes, and a recipe\n"
      "point is listed once at precision fp32 (it sets every format).\n"
      "Details: experiments/sweep_config.hpp.");
  cmd->add_option("config", o->config, "Sweep file (see experiments/configs/)");
  cmd->add_option("--out,-o", o->out, "Results file (HDF5)");
  cmd->add_option("--set", o->overrides, "Override a key: --set taylor_terms=[3,4] (TOML value syntax); repeatable");
  cmd->add_flag("--resume", o->resume, "Continue an existing results file: compute only the missing points");
  cmd->add_flag("--force", o->force, "Replace an existing results file");
  cmd->add_flag("--allow-mixed-builds", o->allow_mixed_builds,
                "With --resume: continue a file whose points another build computed (another commit, compiler,\n"
                "flags, instruction set or exp library); the file then records every build and its points");
  cmd->add_flag("--dry-run", o->dry_run,
                "List the points with estimated memory and time, run nothing (with --shard: that shard's points)");
  cmd->add_option("--shard", o->shard,
                  "Run shard K of N (K/N, 1 <= K <= N): a fixed subset of the points, the N shards balanced by the "
                  "--dry-run estimate; points sharing inputs stay in one shard. Unite the shard files with "
                  "'satalab merge'");
  cmd->add_flag("--skip-unfit", o->skip_unfit,
                "Record points that cannot fit in memory as rows with status 'skipped: <need>' instead of refusing "
                "the sweep");
  cmd->add_option("--jobs,-j", o->jobs, "Threads (default: all cores); results are identical for any value");
  cmd->add_flag("--save-outputs", o->save_outputs, "Also store raw outputs y, y_truth, z per point");
  cmd->add_flag("--help-schema", o->help_schema, "Print the results file schema and exit");
  cmd->add_option("--memory-limit", o->memory_limit, "Refuse points needing more memory (bytes; KB/MB/GB suffixes)")
      ->transform(CLI::AsSizeValue(false));
  return [o, command_line]() { return run_sweep(*o, command_line); };
}

}  // namespace satalab::cli
