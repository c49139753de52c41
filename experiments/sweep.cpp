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
#include <map>
#include <tuple>

#include "commands.hpp"
#include "satalab/attention/compute.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/cost/cost.hpp"
#include "satalab/error.hpp"
#include "satalab/io/hdf5_arrays.hpp"
#include "satalab/io/results_file.hpp"
#include "satalab/memory.hpp"
#include "satalab/metrics/error_metrics.hpp"
#include "satalab/workload/gaussian.hpp"
#include "satalab/workload/heavy_tailed.hpp"
#include "satalab/workload/needle.hpp"
#include "satalab/version.hpp"
#include "sweep_config.hpp"

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
  int jobs = 0;
  std::uint64_t memory_limit = 0;
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
  const std::string variant = p.method == "exact-kvquant" ? "kv=" + p.kv_quant : fmt::format("P={}", p.taylor_terms);
  return fmt::format("#{} {} {} d={} H={} n={} scale={} {} {}", p.point_id, p.method, variant, p.d_key, p.heads,
                     p.n_tokens, p.scale, p.precision, p.workload);
}

AttentionOptions attention_options(const PointParams& p) {
  AttentionOptions o;
  o.taylor_terms = p.taylor_terms;
  o.mask = p.causal ? Mask::causal : Mask::none;
  o.chunk = p.chunk;
  o.placement = placement_by_name(p.placement);
  if (p.softmax_denominator > 0) o.softmax_denominator = p.softmax_denominator;
  o.kv_quant = kv_quant_scheme(p.kv_quant);
  return o;
}

double softmax_denominator(const PointParams& p) {
  return p.softmax_denominator > 0 ? p.softmax_denominator : std::sqrt(static_cast<double>(p.d_key));
}

// Everything that determines a point's inputs and its exact truth.
using InputKey = std::tuple<std::string, std::uint64_t, std::uint32_t, std::uint64_t, std::uint32_t, std::uint32_t,
                            double, double, double, std::string, bool, double, std::string, std::uint64_t>;
InputKey input_key(const PointParams& p, const std::string& truth) {
  return {p.workload,   p.seed,   p.heads, p.n_tokens, p.d_key, p.d_value, p.scale, p.dof, p.needle_logit,
          p.input_file, p.causal, softmax_denominator(p), truth, measured_rows(p)};
}

// The query positions where errors are measured: empty for every row, else
// measured_rows(p) evenly spaced positions (r+1)·n/R - 1, the last n - 1.
std::vector<std::size_t> measured_positions(const PointParams& p) {
  const std::uint64_t rows = measured_rows(p);
  if (rows == p.n_tokens) return {};
  std::vector<std::size_t> positions(rows);
  for (std::uint64_t r = 0; r < rows; ++r) positions[r] = static_cast<std::size_t>((r + 1) * p.n_tokens / rows - 1);
  return positions;
}

// Metrics over measured rows report their position blocks in token positions.
ErrorMetrics at_positions(ErrorMetrics m, const std::vector<std::size_t>& positions) {
  if (!positions.empty()) {
    for (auto& block : m.by_position) {
      block.first_token = positions[block.first_token];
      block.last_token = positions[block.last_token];
    }
  }
  return m;
}

// Rows `positions` of a full output (all rows when positions is empty).
AttentionOutput select_rows(const AttentionOutput& full, const std::vector<std::size_t>& positions) {
  if (positions.empty()) return full;
  const std::size_t heads = full.y.heads, n = full.y.n_tokens, dv = full.y.dim, rows = positions.size();
  AttentionOutput out;
  out.y = {heads, rows, dv, std::vector<double>(heads * rows * dv)};
  out.z.resize(heads * rows);
  for (std::size_t h = 0; h < heads; ++h) {
    for (std::size_t r = 0; r < rows; ++r) {
      const double* src = full.y.data.data() + (h * n + positions[r]) * dv;
      std::copy(src, src + dv, out.y.data.begin() + (h * rows + r) * dv);
      out.z[h * rows + r] = full.z[h * n + positions[r]];
    }
  }
  return out;
}

struct Inputs {
  QkvArrays qkv;
  std::optional<NeedleInputs> needle;
};

Inputs make_inputs(const PointParams& p) {
  GaussianWorkload w{p.heads, p.n_tokens, p.d_key, p.d_value, p.scale, p.seed};
  Inputs in;
  if (p.workload == "gaussian") {
    in.qkv = gaussian_inputs(w);
  } else if (p.workload == "heavy-tailed") {
    in.qkv = heavy_tailed_inputs(w, p.dof);
  } else if (p.workload == "needle") {
    in.needle = needle_inputs(w, p.needle_logit, softmax_denominator(p));
    in.qkv = in.needle->qkv;
  } else if (p.workload == "file") {
    in.qkv = read_qkv(p.input_file);
  } else {
    throw InvalidArgument(fmt::format("point {}: unknown workload '{}'", p.point_id, p.workload));
  }
  return in;
}

// Working memory of a point: the largest of its computations plus the inputs
// and the truth it holds meanwhile (conservative).
std::uint64_t point_memory_bytes(const PointParams& p) {
  const PrecisionPolicy policy = precision_policy(p.precision);
  const PrecisionPolicy truth = choose_truth(p.truth, policy);
  QkvArrays shape_only;  // sizes only: attention_memory_bytes reads the dims
  shape_only.q = {p.heads, p.n_tokens, p.d_key, {}};
  shape_only.k = shape_only.q;
  shape_only.v = {p.heads, p.n_tokens, p.d_value, {}};
  const AttentionOptions o = attention_options(p);
  const Method method = method_by_name(p.method);
  std::uint64_t largest = 0;
  for (const auto& [m, pol] : {std::pair{method, policy}, {Method::exact, truth}, {Method::taylor_quadratic, truth},
                               {Method::exact, policy}}) {
    largest = std::max(largest, attention_memory_bytes(m, shape_only, pol, o));
  }
  const std::uint64_t rows = checked_mul(p.heads, p.n_tokens, "point size");
  const std::uint64_t held = checked_mul(rows, (2 * p.d_key + p.d_value) + 4 * (p.d_value + 1), "point size") * 8;
  std::uint64_t basis_tables = 0;
  if (method == Method::sata) {
    basis_tables = checked_mul(feature_count(p.d_key, p.taylor_terms), 24, "symmetric basis tables");
  }
  return checked_add(checked_add(largest, held, "point memory"), basis_tables, "point memory");
}

// A rough time model for --dry-run and the ETA before the first points finish,
// calibrated on a 2-core AVX-512 machine: the O(n^2) computations (truth,
// Taylor-quadratic at truth, exact baseline at the policy) as pair work, plus
// SATA's state work. Policies that accumulate in the carrier's own format run
// as matrix products (fast); fp16/bf16 accumulation and mp round every
// operation in software (slow).
double pair_seconds(double pairs, double d_key, double d_value, const PrecisionPolicy& policy) {
  if (policy.carrier == Carrier::mp) return pairs * (d_key + d_value + 20) / 1.5e7;
  if (uses_matrix_products(policy)) return pairs * (2 * (d_key + d_value) / 2e10 + 2e-9);  // GEMMs + one exp per pair
  return pairs * (d_key + d_value + 20) / 2e8;
}

double point_seconds_estimate(const PointParams& p) {
  const double n = static_cast<double>(p.n_tokens), h = p.heads, rows = static_cast<double>(measured_rows(p));
  const double pairs = h * rows * (p.causal ? 0.5 * (n + 1) : n);  // (query, key) pairs of the measured rows
  const PrecisionPolicy policy = precision_policy(p.precision);
  const PrecisionPolicy truth = choose_truth(p.truth, policy);
  double seconds = pair_seconds(pairs, p.d_key, p.d_value, truth);  // exact truth
  if (p.method != "exact") {
    seconds += pair_seconds(pairs, p.d_key, p.d_value, truth);   // Taylor-quadratic oracle
    seconds += pair_seconds(pairs, p.d_key, p.d_value, policy);  // exact baseline at the policy
  }
  if (p.method == "sata") {
    const double flops = static_cast<double>(sata_cost(p.d_key, p.d_value, p.taylor_terms).flops_per_token) * n * h;
    if (policy.carrier == Carrier::mp) {
      seconds += flops / 1.5e7;
    } else if (uses_matrix_products(policy)) {
      seconds += flops / (policy.carrier == Carrier::f32 ? 8e10 : 4e10);
    } else {
      seconds += flops / 2e8;
    }
  } else {
    seconds += pair_seconds(pairs, p.d_key, p.d_value, policy);
  }
  return seconds;
}

// The cost-model columns of a point (closed forms; also for skipped points).
void fill_costs(const PointParams& p, PointResult& r) {
  const SataCost cost = sata_cost(p.d_key, p.d_value, p.taylor_terms);
  r.state_elements = p.method == "sata" ? cost.state_elements : 0;
  r.flops_per_token =
      p.method == "sata" ? cost.flops_per_token : conventional_flops_per_token(p.d_key, p.d_value, p.n_tokens);
  r.kv_cache_elements = kv_cache_elements(p.d_key, p.d_value, p.n_tokens);
}

// A point that produced no output (skipped or failed): its statistics are NaN,
// never zeros that could pass for a perfect result.
PointResult unmeasured_result(const std::string& status) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  PointResult r;
  r.status = status;
  r.total.abs_error = r.total.rel_error = r.total.normwise_rel_error = Quantiles{nan, nan, nan, nan, nan};
  r.normalisers.min = r.normalisers.min_abs = nan;
  r.logit_max_abs = r.logit_std = nan;
  return r;
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

int run_sweep(const SweepOptions& o, const std::string& command_line) {
  if (o.help_schema) {
    std::cout << kResultsSchemaText;
    return 0;
  }
  if (o.config.empty()) throw InvalidArgument("missing sweep file (usage: satalab sweep CONFIG.toml --out RESULTS.h5)");
  if (o.memory_limit) set_memory_limit_bytes(o.memory_limit);
  if (o.resume && o.force) throw InvalidArgument("--resume and --force exclude each other");
  if (!o.dry_run && o.out.empty()) throw InvalidArgument("--out RESULTS.h5 is required (or use --dry-run)");
  if (o.jobs < 0) throw InvalidArgument(fmt::format("--jobs {} is invalid (must be >= 1)", o.jobs));
  const SweepConfig config = load_sweep_config(o.config, o.overrides);

  // Everything that can be refused is refused before any point runs.
  // With --skip-unfit, points that cannot fit are recorded as skipped instead.
  std::vector<std::uint64_t> memory(config.points.size());
  std::map<std::uint64_t, std::string> skipped;  // point_id -> reason
  double estimated_total = 0;
  for (std::size_t i = 0; i < config.points.size(); ++i) {
    const PointParams& p = config.points[i];
    try {
      if (p.method == "sata" && p.taylor_terms > SymmetricBasis::kMaxTaylorTerms) {
        throw InvalidArgument(fmt::format("taylor_terms P = {} is invalid for sata (allowed: 1 .. {})", p.taylor_terms,
                                          SymmetricBasis::kMaxTaylorTerms));
      }
      memory[i] = point_memory_bytes(p);
      check_memory(memory[i], "its working memory");
    } catch (const ResourceLimit& e) {
      if (o.skip_unfit) {
        skipped[p.point_id] = fmt::format("skipped: {}", e.what());
        continue;
      }
      throw ResourceLimit(fmt::format("point {}: {} — refused before running anything; trim the grid with --set, "
                                      "raise --memory-limit, or record such points as skipped with --skip-unfit",
                                      point_label(p), e.what()));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(fmt::format("point {}: {}", point_label(p), e.what()));
    }
    estimated_total += point_seconds_estimate(p);
  }
  if (o.dry_run) {
    fmt::print("{:>6}  {:<70} {:>12} {:>10}\n", "point", "parameters", "memory", "est. time");
    for (std::size_t i = 0; i < config.points.size(); ++i) {
      const PointParams& p = config.points[i];
      if (const auto it = skipped.find(p.point_id); it != skipped.end()) {
        fmt::print("{:>6}  {:<70} {}\n", p.point_id, point_label(p), it->second);
        continue;
      }
      fmt::print("{:>6}  {:<70} {:>9.1f} MiB {:>10}\n", p.point_id, point_label(p),
                 static_cast<double>(memory[i]) / (1 << 20), duration_text(point_seconds_estimate(p)));
    }
    fmt::print("{} points{}; estimated total {} (a rough model; truths shared between points make it shorter)\n",
               config.points.size(), skipped.empty() ? "" : fmt::format(" ({} skipped: cannot fit)", skipped.size()),
               duration_text(estimated_total));
    return 0;
  }

  if (o.jobs > 0) omp_set_num_threads(o.jobs);
  SweepMetadata metadata;
  metadata.satalab_version = satalab::version();
  metadata.git_commit = satalab::git_commit();
  metadata.command_line = command_line;
  metadata.config_text = config.text;
  {
    const std::time_t now = std::time(nullptr);
    char buffer[64];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    metadata.start_time = buffer;
  }
  metadata.total_points = config.points.size();
  ResultsFile results(o.out, metadata, o.resume ? OpenMode::resume : (o.force ? OpenMode::overwrite : OpenMode::create));

  // Group pending points by input set, in order of their first point_id.
  std::map<InputKey, std::vector<const PointParams*>> groups;
  std::vector<InputKey> group_order;
  std::size_t pending = 0;
  std::vector<const PointParams*> to_skip;
  for (const auto& p : config.points) {
    if (results.finished().count(p.point_id)) continue;
    if (skipped.count(p.point_id)) {
      to_skip.push_back(&p);
      continue;
    }
    const PrecisionPolicy truth = choose_truth(p.truth, precision_policy(p.precision));
    const InputKey key = input_key(p, truth.name);
    if (!groups.count(key)) group_order.push_back(key);
    groups[key].push_back(&p);
    ++pending;
  }
  const std::size_t already = config.points.size() - pending - to_skip.size();
  fmt::print(stderr, "satalab sweep: {} points ({} already finished, {} to run) -> {}\n", config.points.size(),
             already, pending, o.out);

  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  const auto start = std::chrono::steady_clock::now();
  std::size_t done = 0;
  double estimated_left = 0;
  for (const auto& key : group_order) {
    for (const PointParams* p : groups[key]) estimated_left += point_seconds_estimate(*p);
  }
  double estimated_done = 0;
  std::vector<PointRecord> finished_now;
  for (const PointParams* p : to_skip) {  // recorded as rows, so the table says why they are missing
    PointRecord record;
    record.params = *p;
    record.result = unmeasured_result(skipped.at(p->point_id));
    fill_costs(*p, record.result);
    results.add(record);
    finished_now.push_back(std::move(record));
  }

  for (const auto& key : group_order) {
    if (g_interrupted) break;
    const auto& points = groups[key];
    const PointParams& first = *points.front();
    const PrecisionPolicy truth = choose_truth(first.truth, precision_policy(first.precision));
    const Inputs inputs = make_inputs(first);
    AttentionOptions truth_options = attention_options(first);
    truth_options.query_rows = measured_positions(first);
    const auto truth_start = std::chrono::steady_clock::now();
    const AttentionOutput exact_truth = compute_attention(Method::exact, inputs.qkv, truth, truth_options);
    double truth_seconds = seconds_since(truth_start);
    const LogitStats logits = logit_stats(inputs.qkv, softmax_denominator(first), first.causal);
    std::map<std::uint32_t, AttentionOutput> oracle_by_terms;      // taylor-quadratic at truth, per P
    std::map<std::string, AttentionOutput> baseline_by_precision;  // exact at the point's policy
    const OutputShape shape{first.heads, measured_rows(first), first.d_value};

    for (const PointParams* pp : points) {
      if (g_interrupted) break;
      const PointParams& p = *pp;
      const double eta = done == 0 ? estimated_left - estimated_done
                                   : seconds_since(start) / estimated_done * (estimated_left - estimated_done);
      fmt::print(stderr, "[{}/{}] {}  elapsed {}  ETA {}\n", already + done + 1, config.points.size(), point_label(p),
                 duration_text(seconds_since(start)), duration_text(eta));
      const auto point_start = std::chrono::steady_clock::now();
      PointRecord record;
      record.params = p;
      PointResult& r = record.result;
      r.truth_used = truth.name;
      r.truth_wall_s = truth_seconds;
      truth_seconds = 0;  // charged to the first point of the group only
      try {
        const PrecisionPolicy policy = precision_policy(p.precision);
        const Method method = method_by_name(p.method);
        AttentionOptions options = attention_options(p);
        r.bytes_per_sequence =
            sequence_memory_bytes(method, p.heads, p.n_tokens, p.d_key, p.d_value, policy, options);
        // SATA produces every row (and its normalisers are counted over all of
        // them); the quadratic methods compute just the measured rows.
        if (method != Method::sata) options.query_rows = truth_options.query_rows;
        const AttentionOutput full = compute_attention(method, inputs.qkv, policy, options);
        const AttentionOutput out =
            method == Method::sata ? select_rows(full, truth_options.query_rows) : full;
        const auto& rows = truth_options.query_rows;
        r.total = at_positions(error_metrics(out.y.data, exact_truth.y.data, shape, kPositionBlocks), rows);
        r.normalisers = normaliser_stats(full.z);
        if (method_is_taylor(method)) {
          auto it = oracle_by_terms.find(p.taylor_terms);
          if (it == oracle_by_terms.end()) {
            AttentionOptions oracle_options = truth_options;
            oracle_options.taylor_terms = p.taylor_terms;
            it = oracle_by_terms
                     .emplace(p.taylor_terms,
                              compute_attention(Method::taylor_quadratic, inputs.qkv, truth, oracle_options))
                     .first;
          }
          r.truncation = at_positions(error_metrics(it->second.y.data, exact_truth.y.data, shape, kPositionBlocks), rows);
          r.rounding = at_positions(error_metrics(out.y.data, it->second.y.data, shape, kPositionBlocks), rows);
        }
        if (method != Method::exact) {  // exact-kvquant: the unquantized cache at the same policy
          auto b = baseline_by_precision.find(p.precision);
          if (b == baseline_by_precision.end()) {
            b = baseline_by_precision
                    .emplace(p.precision, compute_attention(Method::exact, inputs.qkv, policy, truth_options))
                    .first;
          }
          r.baseline = at_positions(error_metrics(b->second.y.data, exact_truth.y.data, shape, kPositionBlocks), rows);
        } else {
          r.baseline = r.total;
        }
        if (!full.kv_scales_key.empty()) {
          r.kv_key_scale = *std::max_element(full.kv_scales_key.begin(), full.kv_scales_key.end());
          r.kv_value_scale = *std::max_element(full.kv_scales_value.begin(), full.kv_scales_value.end());
        }
        if (inputs.needle && full.y.n_tokens == p.n_tokens) r.needle_hit_rate = needle_hit_rate(*inputs.needle, full.y.data);
        if (inputs.needle && truth_options.query_rows.empty()) {
          r.needle_truth_hit_rate = needle_hit_rate(*inputs.needle, exact_truth.y.data);
        }
        if (o.save_outputs) {
          r.y = out.y.data;
          r.y_truth = exact_truth.y.data;
          r.z = out.z;
        }
      } catch (const std::exception& e) {
        const double truth_wall_s = r.truth_wall_s;
        r = unmeasured_result(fmt::format("failed: {}", e.what()));
        r.truth_used = truth.name;
        r.truth_wall_s = truth_wall_s;
      }
      r.logit_max_abs = logits.max_abs;
      r.logit_std = logits.std;
      fill_costs(p, r);
      r.wall_s = seconds_since(point_start);
      results.add(record);
      estimated_done += point_seconds_estimate(p);
      ++done;
      record.result.y.clear();
      record.result.y_truth.clear();
      record.result.z.clear();
      finished_now.push_back(std::move(record));
    }
  }
  results.finish();
  std::sort(finished_now.begin(), finished_now.end(),
            [](const PointRecord& a, const PointRecord& b) { return a.params.point_id < b.params.point_id; });
  print_summary(finished_now);
  if (g_interrupted) {
    fmt::print(stderr, "interrupted: {} points saved in {}; continue with --resume\n", already + done, o.out);
    return 130;
  }
  fmt::print(stderr, "satalab sweep: {} points in {}; results in {}\n", done, duration_text(seconds_since(start)), o.out);
  return 0;
}

}  // namespace

Runner add_sweep_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<SweepOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sweep",
      "Run every point of a sweep file (TOML; list-valued keys are the axes of a Cartesian product) and write\n"
      "one HDF5 results file: a table /points with one row per point and per-point error histograms and\n"
      "position summaries (schema: --help-schema). Points sharing inputs share one truth. Finished points\n"
      "are journaled durably; an interrupted sweep continues with --resume.");
  cmd->footer(
      "Sweep file keys (each a value or a list): method (sata, taylor-quadratic, exact, exact-kvquant),\n"
      "taylor_terms, kv_quant, d_key, d_value, heads, heads_times_d_key, n_tokens, scale, precision, truth,\n"
      "causal, chunk, placement, workload, dof, needle_logit, input_file, seed, softmax_denominator; name and\n"
      "description. kv_quant is exact-kvquant's KV-cache scheme, as for 'satalab run --kv-quant': none,\n"
      "fp16, bf16, e4m3, e4m3sat, e5m2 [-head|-unscaled], int8, int4-g<G>, int2-g<G>, any but none with\n"
      "-r<R>. A taylor_terms axis multiplies only sata and taylor-quadratic points, a kv_quant axis only\n"
      "exact-kvquant points. Details: experiments/sweep_config.hpp.");
  cmd->add_option("config", o->config, "Sweep file (see experiments/configs/)");
  cmd->add_option("--out,-o", o->out, "Results file (HDF5)");
  cmd->add_option("--set", o->overrides, "Override a key: --set taylor_terms=[3,4] (TOML value syntax); repeatable");
  cmd->add_flag("--resume", o->resume, "Continue an existing results file: compute only the missing points");
  cmd->add_flag("--force", o->force, "Replace an existing results file");
  cmd->add_flag("--dry-run", o->dry_run, "List the points with estimated memory and time, run nothing");
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
