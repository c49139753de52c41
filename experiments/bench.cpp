// `satalab bench`: what SATA costs, measured. Per-token decode time and memory
// of SATA (the fused state update + readout) and of exact attention over a KV
// cache for contexts from 1K to 100M tokens; causal prefill throughput of
// SATA's chunked prefill and of exact attention; and, in the same run, the
// machine's own bounds (streaming copy bandwidth on a buffer larger than the
// last-level cache, Eigen GEMM rates), so that every speed is read as a ratio
// to a baseline measured alongside it (docs/architecture.md §7). Rows go to an HDF5 table
// (lib/io/bench_file.hpp, docs/bench-schema.md); a summary goes to stdout.
// GCC 12 reports false "may be used uninitialized" inside its own AVX-512
// intrinsics when Eigen's products are inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <Eigen/Core>
#include <fmt/format.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <type_traits>

#include "commands.hpp"
#include "satalab/attention/exact_decoder.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/attention/sata_decoder.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/cost/cost.hpp"
#include "satalab/error.hpp"
#include "satalab/experiment/point.hpp"
#include "satalab/io/bench_file.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/carrier.hpp"
#include "satalab/numeric/format.hpp"
#include "satalab/version.hpp"

namespace satalab::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> sections = {"bounds", "decode", "prefill"};
  std::vector<std::string> methods = {"sata", "exact"};
  std::vector<std::size_t> d_keys = {8, 16, 32, 64};
  std::vector<std::size_t> taylor_terms = {4};
  std::vector<std::string> precisions = {"fp32", "fp16-acc32"};
  std::size_t heads = 2;
  std::vector<std::string> contexts = {"1K", "10K", "100K", "1M", "10M", "100M"};
  std::vector<std::string> prefill_tokens = {"16384"};
  std::vector<std::string> prefill_precisions = {"fp32", "fp16-acc32", "fp64"};
  std::size_t chunk = 0;
  std::size_t decode_steps = 10000;
  std::size_t repeats = 7;
  std::size_t prefill_repeats = 3;
  double repeat_seconds = 0.5;
  double process_budget = 120;
  std::uint64_t copy_bytes = 0;  // 0: max(256 MiB, 8 x LLC)
  std::size_t gemm_size = 2048;
  std::string out;
  bool force = false;
  std::uint64_t memory_limit = 0;
  std::uint64_t seed = 1;
};

// ---------------------------------------------------------------------------
// Validated plan.

struct Plan {
  bool bounds = false, decode = false, prefill = false, sata = false, exact = false;
  bool accumulation = false;  // SATA's decode step per state accumulation mode
  std::vector<PrecisionPolicy> precisions, prefill_precisions;
  std::vector<std::uint64_t> contexts, prefill_tokens;
};

// "1K" = 1,000, "10M" = 10,000,000, "1G" = 10^9, or a plain count.
std::uint64_t parse_count(const std::string& text, const char* option) {
  std::uint64_t multiplier = 1;
  std::string digits = text;
  if (!digits.empty()) {
    const char last = digits.back();
    if (last == 'K' || last == 'k') multiplier = 1000;
    if (last == 'M' || last == 'm') multiplier = 1000000;
    if (last == 'G' || last == 'g') multiplier = 1000000000;
    if (multiplier != 1) digits.pop_back();
  }
  const bool numeric = !digits.empty() && digits.size() <= 12 &&
                       std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  const std::uint64_t value = numeric ? std::stoull(digits) * multiplier : 0;
  if (value == 0) {
    throw InvalidArgument(
        fmt::format("{} '{}' is invalid (allowed: a positive count, optionally with K, M or G, e.g. 1K, 10M)", option,
                    text));
  }
  return value;
}

PrecisionPolicy bench_policy(const std::string& name, const char* option) {
  PrecisionPolicy policy = precision_policy(name);
  if (policy.carrier == Carrier::mp) {
    throw InvalidArgument(fmt::format("{} '{}' is not benchmarked (allowed: policies on float or double carriers: "
                                      "fp64, fp32, fp16, bf16, fp16-acc32, bf16-acc32, e4m3-acc32, e5m2-acc32)",
                                      option, name));
  }
  return policy;
}

Plan make_plan(const BenchOptions& o) {
  Plan plan;
  for (const std::string& s : o.sections) {
    if (s == "bounds") {
      plan.bounds = true;
    } else if (s == "decode") {
      plan.decode = true;
    } else if (s == "prefill") {
      plan.prefill = true;
    } else if (s == "accumulation") {
      plan.accumulation = true;
    } else {
      throw InvalidArgument(
          fmt::format("--sections '{}' is unknown (allowed: bounds, decode, prefill, accumulation)", s));
    }
  }
  for (const std::string& m : o.methods) {
    if (m == "sata") {
      plan.sata = true;
    } else if (m == "exact") {
      plan.exact = true;
    } else {
      throw InvalidArgument(fmt::format("--methods '{}' is unknown (allowed: sata, exact)", m));
    }
  }
  if (o.heads < 1) throw InvalidArgument(fmt::format("--heads {} is invalid (must be >= 1)", o.heads));
  for (std::size_t d : o.d_keys) {
    if (d < 1) throw InvalidArgument(fmt::format("--d-key {} is invalid (must be >= 1)", d));
  }
  for (std::size_t p : o.taylor_terms) {
    AttentionOptions options;
    options.taylor_terms = p;
    try {
      validate_method_options(Method::sata, options);  // the one check of P (experiment/point.hpp)
    } catch (const InvalidMethodOption& e) {
      throw InvalidArgument(e.spelled([](std::string_view key) {
        return key == "taylor_terms" ? std::string("--taylor-terms") : "--" + std::string(key);
      }));
    }
  }
  for (const std::string& p : o.precisions) plan.precisions.push_back(bench_policy(p, "--precision"));
  for (const std::string& p : o.prefill_precisions) {
    plan.prefill_precisions.push_back(bench_policy(p, "--prefill-precision"));
  }
  for (const std::string& c : o.contexts) plan.contexts.push_back(parse_count(c, "--context"));
  for (const std::string& c : o.prefill_tokens) plan.prefill_tokens.push_back(parse_count(c, "--prefill-tokens"));
  std::sort(plan.contexts.begin(), plan.contexts.end());
  plan.contexts.erase(std::unique(plan.contexts.begin(), plan.contexts.end()), plan.contexts.end());
  if (o.decode_steps < 1 || o.repeats < 1 || o.prefill_repeats < 1) {
    throw InvalidArgument(fmt::format("--decode-steps {}, --repeats {}, --prefill-repeats {}: all must be >= 1",
                                      o.decode_steps, o.repeats, o.prefill_repeats));
  }
  if (!(o.repeat_seconds > 0) || !(o.process_budget >= 0) || !std::isfinite(o.process_budget)) {
    throw InvalidArgument(fmt::format("--repeat-seconds {} must be > 0 and --process-budget {} >= 0",
                                      o.repeat_seconds, o.process_budget));
  }
  if (o.gemm_size < 1) throw InvalidArgument(fmt::format("--gemm-size {} is invalid (must be >= 1)", o.gemm_size));
  return plan;
}

// ---------------------------------------------------------------------------
// Machine facts.

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

// Bytes of the last-level cache (0 if unknown).
std::uint64_t llc_bytes() {
  for (int index = 4; index >= 0; --index) {
    std::ifstream in(fmt::format("/sys/devices/system/cpu/cpu0/cache/index{}/size", index));
    std::string text;
    if (in >> text && !text.empty()) {
      std::uint64_t value = std::strtoull(text.c_str(), nullptr, 10);
      if (text.back() == 'K') value <<= 10;
      if (text.back() == 'M') value <<= 20;
      if (value > 0) return value;
    }
  }
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return l3 > 0 ? static_cast<std::uint64_t>(l3) : 0;
}

std::uint64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGE_SIZE));
}

double wall_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// ---------------------------------------------------------------------------
// Timing: one warm-up repeat, then `repeats` repeats; each calls `reset` (untimed), then `unit` until
// `max_units` units or `repeat_seconds` have passed (at least one unit). The
// time per unit of each repeat gives the median and the minimum.

struct Timing {
  double median = 0, min = 0, cores_used = 0;
  std::uint64_t units = 0;  // the fewest units of any repeat
};

Timing time_units(std::size_t repeats, std::size_t max_units, double repeat_seconds, const std::function<void()>& reset,
                  const std::function<void()>& unit) {
  std::vector<double> per_unit;
  double wall_total = 0, cpu_total = 0;
  Timing t;
  t.units = max_units;
  // One untimed repeat first (warm caches, page tables and clocks), then `repeats` timed ones.
  for (std::size_t r = 0; r <= repeats; ++r) {
    reset();
    if (r == 0) {
      const double start = wall_now();
      std::size_t units = 0;
      do {
        unit();
        ++units;
      } while (units < max_units && wall_now() - start < repeat_seconds);
      continue;
    }
    const double cpu0 = cpu_now(), start = wall_now();
    std::size_t units = 0;
    double elapsed = 0;
    do {
      unit();
      ++units;
      elapsed = wall_now() - start;
    } while (units < max_units && elapsed < repeat_seconds);
    cpu_total += cpu_now() - cpu0;
    wall_total += elapsed;
    per_unit.push_back(elapsed / static_cast<double>(units));
    t.units = std::min<std::uint64_t>(t.units, units);
  }
  std::sort(per_unit.begin(), per_unit.end());
  const std::size_t m = per_unit.size();
  t.median = m % 2 == 1 ? per_unit[m / 2] : 0.5 * (per_unit[m / 2 - 1] + per_unit[m / 2]);
  t.min = per_unit.front();
  t.cores_used = wall_total > 0 ? cpu_total / wall_total : 0;
  return t;
}

// Before timing decode steps: let OpenMP's idle threads stop spinning. After
// a parallel region (processing the context), libgomp's threads busy-wait for
// a while (milliseconds by default) before they sleep; a series of serial
// decode steps timed in that window shares its core with a spinning sibling
// (on 2 hyperthreads of one core, up to 40% slower, at random). A decode loop
// in a model runs steps back to back and never sees that window.
void let_idle_threads_sleep() { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }

void put_timing(BenchRow& row, const Timing& t, std::size_t repeats) {
  row.repeats = static_cast<std::uint32_t>(repeats);
  row.steps = t.units;
  row.seconds_median = t.median;
  row.seconds_min = t.min;
  row.cores_used = t.cores_used;
  if (row.bytes_per_unit > 0) row.bytes_per_second = static_cast<double>(row.bytes_per_unit) / t.median;
  if (row.flops_per_unit > 0) row.flops_per_second = static_cast<double>(row.flops_per_unit) / t.median;
  row.rss_bytes = resident_bytes();
}

// ---------------------------------------------------------------------------
// Inputs for timing: entries uniform on [-√3, √3) (unit variance) from a
// counter-based hash, so any slice is generated independently and in
// parallel; rounded once into the policy's input format. Their values do not
// change the work done.

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class InputStream {
 public:
  explicit InputStream(std::uint64_t seed) : key_(splitmix64(seed)) {}
  template <class T>
  void fill(T* out, std::size_t count, const Rounder<T>& input) {
    const std::uint64_t base = counter_;
    counter_ += count;
    const auto n = static_cast<long>(count);
#pragma omp parallel for schedule(static) if (count > (1u << 16))
    for (long i = 0; i < n; ++i) {
      const std::uint64_t bits = splitmix64(key_ ^ (base + static_cast<std::uint64_t>(i)));
      const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;  // [0, 1)
      out[i] = T((2 * u - 1) * 1.7320508075688772);
    }
    input.apply(out, count);
  }

 private:
  std::uint64_t key_, counter_ = 0;
};

// ---------------------------------------------------------------------------
// The run.

struct Context {
  const BenchOptions& o;
  const Plan& plan;
  BenchMetadata metadata;
  std::vector<BenchRow> rows;
  int threads = 1;

  void add(BenchRow row) {
    row.threads = row.threads ? row.threads : static_cast<std::uint32_t>(threads);
    fmt::print(stderr, "  {}\n", progress_line(row));
    rows.push_back(std::move(row));
    if (!o.out.empty()) write_bench_file(o.out, metadata, rows, true);
  }

  static std::string progress_line(const BenchRow& r) {
    if (r.status != "ok") return fmt::format("{} {} {} d={} P={}: {}", r.kind, r.method, r.precision, r.d_key,
                                             r.taylor_terms, r.status);
    return fmt::format("{} {} {} d={} P={} H={} n={} ({} processed): {:.4g} s per unit", r.kind, r.method,
                       r.precision, r.d_key, r.taylor_terms, r.heads, r.context_tokens, r.tokens_processed,
                       r.seconds_median);
  }
};

std::uint64_t format_bytes(std::uint64_t elements, const Format& format) {
  return elements * static_cast<std::uint64_t>(storage_bits(format)) / 8;
}

// --- machine bounds ---------------------------------------------------------

// One thread, then all of them.
std::vector<int> thread_counts(const Context& ctx) {
  return ctx.threads > 1 ? std::vector<int>{1, ctx.threads} : std::vector<int>{1};
}

void measure_bandwidth(Context& ctx, std::uint64_t buffer_bytes) {
  const std::size_t n = buffer_bytes / sizeof(float);
  check_memory(2 * n * sizeof(float), "copy-bandwidth buffers");
  std::vector<float> a(n, 1.0f), b(n, 2.0f);
  for (int threads : thread_counts(ctx)) {
    // memcpy in `threads` contiguous slices.
    BenchRow copy;
    copy.kind = "copy_bandwidth";
    copy.method = "memcpy";
    copy.threads = static_cast<std::uint32_t>(threads);
    copy.context_tokens = n * sizeof(float);
    copy.bytes_per_unit = 2 * n * sizeof(float);
    const auto slices = static_cast<long>(threads);
    const Timing tc = time_units(ctx.o.repeats, 1, 0, [] {}, [&] {
#pragma omp parallel for schedule(static) num_threads(threads)
      for (long s = 0; s < slices; ++s) {
        const std::size_t begin = n * static_cast<std::size_t>(s) / static_cast<std::size_t>(slices);
        const std::size_t end = n * static_cast<std::size_t>(s + 1) / static_cast<std::size_t>(slices);
        std::memcpy(b.data() + begin, a.data() + begin, (end - begin) * sizeof(float));
      }
    });
    put_timing(copy, tc, ctx.o.repeats);
    ctx.add(copy);
    // Read-modify-write in place: the access pattern of a decode step.
    BenchRow update = copy;
    update.kind = "update_bandwidth";
    update.method = "read-modify-write";
    const auto count = static_cast<long>(n);
    float* x = b.data();
    const Timing tu = time_units(ctx.o.repeats, 1, 0, [] {}, [&] {
#pragma omp parallel for schedule(static) num_threads(threads)
      for (long i = 0; i < count; ++i) x[i] = x[i] * 0.5f + 1.0f;
    });
    put_timing(update, tu, ctx.o.repeats);
    ctx.add(update);
  }
}

template <class T>
void measure_gemm(Context& ctx, std::size_t size, const char* precision) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const auto N = static_cast<Eigen::Index>(size);
  check_memory(3 * size * size * sizeof(T) * static_cast<std::size_t>(ctx.threads), "GEMM matrices");
  for (int threads : thread_counts(ctx)) {
    std::vector<Matrix> a(threads, Matrix::Constant(N, N, T(0.5))), b(threads, Matrix::Constant(N, N, T(0.25))),
        c(threads, Matrix::Zero(N, N));
    BenchRow row;
    row.kind = "gemm";
    row.method = "eigen-gemm";
    row.precision = precision;
    row.threads = static_cast<std::uint32_t>(threads);
    row.context_tokens = size;
    row.flops_per_unit = static_cast<std::uint64_t>(threads) * 2 * size * size * size;
    // Every thread multiplies its own pair at once: the rate with all cores busy.
    const Timing t = time_units(std::min<std::size_t>(ctx.o.repeats, 3), 1, 0, [] {}, [&] {
#pragma omp parallel for schedule(static, 1) num_threads(threads)
      for (int i = 0; i < threads; ++i) c[i].noalias() = a[i] * b[i];
    });
    put_timing(row, t, std::min<std::size_t>(ctx.o.repeats, 3));
    ctx.add(row);
  }
}

// --- decode -----------------------------------------------------------------

BenchRow decode_row(const char* method, const PrecisionPolicy& policy, std::size_t d, std::size_t P, std::size_t heads,
                    std::uint64_t context) {
  BenchRow row;
  row.kind = "decode";
  row.method = method;
  row.precision = policy.name;
  row.d_key = row.d_value = static_cast<std::uint32_t>(d);
  row.taylor_terms = static_cast<std::uint32_t>(P);
  row.heads = static_cast<std::uint32_t>(heads);
  row.context_tokens = context;
  return row;
}

// Decode steps per repeat: at most --decode-steps and context/16, so that a
// context grows by less than 7% while it is timed (SATA's steps stay in its
// state; exact attention's cache is truncated back between repeats).
std::size_t steps_per_repeat(const BenchOptions& o, std::uint64_t context) {
  return static_cast<std::size_t>(std::clamp<std::uint64_t>(context / 16, 1, o.decode_steps));
}

// A few distinct tokens for the timed steps, [pool × heads × d].
struct StepTokens {
  static constexpr std::size_t kPool = 16;
  template <class T>
  static std::vector<T> make(InputStream& stream, std::size_t heads, std::size_t d, const Rounder<T>& input) {
    std::vector<T> out(kPool * heads * d);
    stream.fill(out.data(), out.size(), input);
    return out;
  }
};

template <class T>
void decode_sata_series(Context& ctx, const PrecisionPolicy& policy, std::size_t d, std::size_t P) {
  const BenchOptions& o = ctx.o;
  const std::size_t H = o.heads;
  AttentionOptions options;
  options.taylor_terms = P;
  options.chunk = o.chunk;
  std::unique_ptr<SataDecoder<T>> decoder;
  try {
    decoder = std::make_unique<SataDecoder<T>>(H, d, d, policy, options);
  } catch (const ResourceLimit& e) {
    for (std::uint64_t n : ctx.plan.contexts) {
      BenchRow row = decode_row("sata", policy, d, P, H, n);
      row.status = fmt::format("skipped: {}", e.what());
      ctx.add(row);
    }
    return;
  }
  const PolicyRounders<T> round(policy);
  InputStream stream(o.seed);
  // Prefill pieces: a multiple of the chunk, about 4M input elements.
  const std::size_t chunk = options.effective_chunk();
  const std::size_t piece = std::max(chunk, std::min<std::size_t>(16384, (std::size_t{1} << 22) / (H * (3 * d + 1))) /
                                                chunk * chunk);
  std::vector<T> q(H * piece * d), k(H * piece * d), v(H * piece * d), y(H * piece * d), z(H * piece);
  const std::vector<T> sq = StepTokens::make<T>(stream, H, d, round.input);
  const std::vector<T> sk = StepTokens::make<T>(stream, H, d, round.input);
  const std::vector<T> sv = StepTokens::make<T>(stream, H, d, round.input);
  std::vector<T> step_y(H * d), step_z(H);
  std::size_t next_token = 0;
  const double series_start = wall_now();
  const SataCost cost = sata_cost(d, d, P);
  for (std::uint64_t n : ctx.plan.contexts) {
    // Really process the tokens up to n (chunked prefill), within the budget.
    while (decoder->tokens() < n && wall_now() - series_start < o.process_budget) {
      const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(piece, n - decoder->tokens()));
      stream.fill(q.data(), H * count * d, round.input);
      stream.fill(k.data(), H * count * d, round.input);
      stream.fill(v.data(), H * count * d, round.input);
      decoder->prefill(q.data(), k.data(), v.data(), count, y.data(), z.data());
    }
    BenchRow row = decode_row("sata", policy, d, P, H, n);
    row.tokens_processed = decoder->tokens();
    row.chunk = static_cast<std::uint32_t>(chunk);
    row.memory_bytes = decoder->state_bytes();
    row.memory_bytes_format = format_bytes(decoder->state_elements(), policy.accumulate);
    row.bytes_per_unit = 2 * decoder->state_bytes();
    row.flops_per_unit = H * cost.flops_per_token;
    let_idle_threads_sleep();
    // --decode-steps whatever the context: a step does not grow the state (the
    // context/16 cap is for exact attention, whose cache grows by the steps).
    const Timing t = time_units(o.repeats, o.decode_steps, o.repeat_seconds, [] {}, [&] {
      const std::size_t at = (next_token++ % StepTokens::kPool) * H * d;
      decoder->step(sq.data() + at, sk.data() + at, sv.data() + at, step_y.data(), step_z.data());
    });
    put_timing(row, t, o.repeats);
    row.seconds_per_token_head = t.median / static_cast<double>(H);
    row.tokens_per_second = static_cast<double>(H) / t.median;
    ctx.add(row);
  }
}

// The decode step of SATA in each state accumulation mode (AttentionOptions::
// state_accumulation), from an empty state: a step's work does not depend on
// the tokens the state holds. kind "accumulation", method = the mode; the
// summary gives each mode's time over plain's in the same run.
template <class T>
void accumulation_series(Context& ctx, const PrecisionPolicy& policy, std::size_t d, std::size_t P) {
  const BenchOptions& o = ctx.o;
  const std::size_t H = o.heads;
  const PolicyRounders<T> round(policy);
  InputStream stream(o.seed);
  const std::vector<T> sq = StepTokens::make<T>(stream, H, d, round.input);
  const std::vector<T> sk = StepTokens::make<T>(stream, H, d, round.input);
  const std::vector<T> sv = StepTokens::make<T>(stream, H, d, round.input);
  std::vector<T> step_y(H * d), step_z(H);
  for (const std::string& mode : state_accumulation_names()) {
    AttentionOptions options;
    options.taylor_terms = P;
    options.state_accumulation = state_accumulation_by_name(mode);
    BenchRow row = decode_row(mode.c_str(), policy, d, P, H, 0);
    row.kind = "accumulation";
    std::unique_ptr<SataDecoder<T>> decoder;
    try {
      decoder = std::make_unique<SataDecoder<T>>(H, d, d, policy, options);
    } catch (const ResourceLimit& e) {
      row.status = fmt::format("skipped: {}", e.what());
      ctx.add(row);
      continue;
    }
    std::size_t next_token = 0;
    row.memory_bytes = decoder->state_bytes();
    row.flops_per_unit = H * sata_cost(d, d, P).flops_per_token;
    let_idle_threads_sleep();
    const Timing t = time_units(o.repeats, o.decode_steps, o.repeat_seconds, [] {}, [&] {
      const std::size_t at = (next_token++ % StepTokens::kPool) * H * d;
      decoder->step(sq.data() + at, sk.data() + at, sv.data() + at, step_y.data(), step_z.data());
    });
    put_timing(row, t, o.repeats);
    row.tokens_processed = decoder->tokens();
    row.seconds_per_token_head = t.median / static_cast<double>(H);
    row.tokens_per_second = static_cast<double>(H) / t.median;
    ctx.add(row);
  }
}

template <class T>
void decode_exact_series(Context& ctx, const PrecisionPolicy& policy, std::size_t d) {
  const BenchOptions& o = ctx.o;
  const std::size_t H = o.heads;
  AttentionOptions options;
  const PolicyRounders<T> round(policy);
  InputStream stream(o.seed + 1);
  const std::vector<T> sq = StepTokens::make<T>(stream, H, d, round.input);
  const std::vector<T> sk = StepTokens::make<T>(stream, H, d, round.input);
  const std::vector<T> sv = StepTokens::make<T>(stream, H, d, round.input);
  std::vector<T> step_y(H * d), step_z(H);
  std::size_t next_token = 0;
  for (std::uint64_t n : ctx.plan.contexts) {
    BenchRow row = decode_row("exact", policy, d, 0, H, n);
    const std::size_t steps = steps_per_repeat(o, n);
    const std::uint64_t capacity = n + steps;
    const std::size_t piece = static_cast<std::size_t>(
        std::min<std::uint64_t>(n, std::max<std::size_t>(1, (std::size_t{1} << 22) / (H * 2 * d))));
    try {
      const std::uint64_t need = checked_add(ExactDecoder<T>::memory_bytes(H, d, d, capacity, policy, options),
                                             checked_mul(H * piece * 2 * d, sizeof(T), "KV fill buffers"), "KV cache");
      check_memory(need, fmt::format("KV cache of {} tokens x {} heads (d={})", n, H, d));
    } catch (const ResourceLimit& e) {
      row.status = fmt::format("skipped: {}", e.what());
      ctx.add(row);
      continue;
    }
    auto decoder = std::make_unique<ExactDecoder<T>>(H, d, d, capacity, policy, options);
    std::vector<T> k(H * piece * d), v(H * piece * d);
    while (decoder->tokens() < n) {
      const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(piece, n - decoder->tokens()));
      stream.fill(k.data(), H * count * d, round.input);
      stream.fill(v.data(), H * count * d, round.input);
      decoder->append(k.data(), v.data(), count);
    }
    row.tokens_processed = decoder->tokens();
    const std::uint64_t cache_elements = static_cast<std::uint64_t>(H) * n * 2 * d;
    row.memory_bytes = cache_elements * sizeof(T);
    row.memory_bytes_format = format_bytes(cache_elements, policy.input);
    row.bytes_per_unit = row.memory_bytes;
    row.flops_per_unit = H * conventional_flops_per_token(d, d, n);
    let_idle_threads_sleep();
    const Timing t = time_units(o.repeats, steps, o.repeat_seconds, [&] { decoder->truncate(n); }, [&] {
      const std::size_t at = (next_token++ % StepTokens::kPool) * H * d;
      decoder->step(sq.data() + at, sk.data() + at, sv.data() + at, step_y.data(), step_z.data());
    });
    put_timing(row, t, o.repeats);
    row.seconds_per_token_head = t.median / static_cast<double>(H);
    row.tokens_per_second = static_cast<double>(H) / t.median;
    ctx.add(row);
  }
}

// --- prefill ----------------------------------------------------------------

template <class T>
void prefill_rows(Context& ctx, const PrecisionPolicy& policy, std::size_t d, std::uint64_t n64) {
  const BenchOptions& o = ctx.o;
  const std::size_t H = o.heads, n = static_cast<std::size_t>(n64);
  const PolicyRounders<T> round(policy);
  InputStream stream(o.seed + 2);
  const std::uint64_t input_bytes = checked_mul(checked_mul(H, n, "prefill inputs"), 3 * d * sizeof(T), "prefill inputs");
  auto base_row = [&](const char* method, std::size_t P) {
    BenchRow row;
    row.kind = "prefill";
    row.method = method;
    row.precision = policy.name;
    row.d_key = row.d_value = static_cast<std::uint32_t>(d);
    row.taylor_terms = static_cast<std::uint32_t>(P);
    row.heads = static_cast<std::uint32_t>(H);
    row.context_tokens = n;
    row.tokens_processed = n;
    return row;
  };
  try {
    check_memory(checked_mul(input_bytes, 2, "prefill inputs and outputs"), "prefill inputs and outputs");
  } catch (const ResourceLimit& e) {
    BenchRow row = base_row("sata", 0);
    row.status = fmt::format("skipped: {}", e.what());
    ctx.add(row);
    return;
  }
  HeadTensor<T> q(H, n, d), k(H, n, d), v(H, n, d);
  stream.fill(q.data.data(), q.data.size(), round.input);
  stream.fill(k.data.data(), k.data.size(), round.input);
  stream.fill(v.data.data(), v.data.size(), round.input);
  if (ctx.plan.sata) {
    for (std::size_t P : o.taylor_terms) {
      BenchRow row = base_row("sata", P);
      AttentionOptions options;
      options.taylor_terms = P;
      options.chunk = o.chunk;
      row.chunk = static_cast<std::uint32_t>(options.effective_chunk());
      try {
        std::unique_ptr<SataDecoder<T>> decoder;
        std::vector<T> y(H * n * d), z(H * n);
        auto fresh = [&] { decoder = std::make_unique<SataDecoder<T>>(H, d, d, policy, options); };
        fresh();
        row.memory_bytes = decoder->state_bytes();
        row.memory_bytes_format = format_bytes(decoder->state_elements(), policy.accumulate);
        // The inter-chunk matrix products: readout Φ(Q)·S and update Φ(K)ᵀ·[V 1],
        // 2·features·(d+1) FLOPs each per token and head.
        row.flops_per_unit = H * n * 4 * feature_count(d, P) * (d + 1);
        const Timing t = time_units(o.prefill_repeats, 1, 0, fresh, [&] {
          decoder->prefill(q.data.data(), k.data.data(), v.data.data(), n, y.data(), z.data());
        });
        put_timing(row, t, o.prefill_repeats);
        row.seconds_per_token_head = t.median / static_cast<double>(H * n);
        row.tokens_per_second = static_cast<double>(H * n) / t.median;
      } catch (const ResourceLimit& e) {
        row.status = fmt::format("skipped: {}", e.what());
      }
      ctx.add(row);
    }
  }
  if (ctx.plan.exact) {
    BenchRow row = base_row("exact", 0);
    AttentionOptions options;
    // The matrix products of the causal pairs: scores q·k (2d) and weights·[v 1] (2(d+1)).
    row.flops_per_unit = H * (n64 * (n64 + 1) / 2) * (2 * d + 2 * (d + 1));
    row.memory_bytes = H * n * 2 * d * sizeof(T);
    row.memory_bytes_format = format_bytes(H * n * 2 * d, policy.input);
    const Timing t = time_units(o.prefill_repeats, 1, 0, [] {}, [&] { (void)exact_attention(q, k, v, policy, options); });
    put_timing(row, t, o.prefill_repeats);
    row.seconds_per_token_head = t.median / static_cast<double>(H * n);
    row.tokens_per_second = static_cast<double>(H * n) / t.median;
    ctx.add(row);
  }
}

// --- summary ----------------------------------------------------------------

std::string si(double value, const char* unit) {
  if (!std::isfinite(value)) return "-";
  const char* prefixes[] = {"", "K", "M", "G", "T"};
  int i = 0;
  while (std::abs(value) >= 1000 && i < 4) {
    value /= 1000;
    ++i;
  }
  return fmt::format("{:.3g} {}{}", value, prefixes[i], unit);
}

std::string seconds_text(double s) {
  if (!std::isfinite(s)) return "-";
  if (s < 1e-6) return fmt::format("{:.3g} ns", s * 1e9);
  if (s < 1e-3) return fmt::format("{:.3g} µs", s * 1e6);
  if (s < 1) return fmt::format("{:.3g} ms", s * 1e3);
  return fmt::format("{:.3g} s", s);
}

const BenchRow* find_bound(const std::vector<BenchRow>& rows, const std::string& kind, const std::string& precision,
                           std::uint32_t threads) {
  for (const BenchRow& r : rows) {
    if (r.kind == kind && r.precision == precision && r.threads == threads && r.status == "ok") return &r;
  }
  return nullptr;
}

void print_summary(const Context& ctx) {
  const auto& rows = ctx.rows;
  const auto T = static_cast<std::uint32_t>(ctx.threads);
  fmt::print("satalab bench: {} thread(s), {}, last-level cache {} MiB\n", ctx.threads, ctx.metadata.cpu_model,
             ctx.metadata.llc_bytes >> 20);
  fmt::print("  Times are wall-clock medians; other work on a shared machine slows them (see cores used).\n"
             "  Compare the ratios to the bounds measured in this run, not absolute numbers across runs.\n\n");
  const BenchRow* copy = find_bound(rows, "copy_bandwidth", "", T);
  const BenchRow* update = find_bound(rows, "update_bandwidth", "", T);
  const BenchRow* gemm32 = find_bound(rows, "gemm", "fp32", T);
  const BenchRow* gemm64 = find_bound(rows, "gemm", "fp64", T);
  bool any_bound = false;
  for (const BenchRow& r : rows) {
    if (r.kind == "decode" || r.kind == "prefill" || r.kind == "accumulation") continue;
    if (!any_bound) fmt::print("machine bounds\n");
    any_bound = true;
    if (r.kind == "gemm") {
      fmt::print("  Eigen GEMM {} {}x{}, {} thread(s): {}FLOP/s  (cores used {:.2f})\n", r.precision, r.context_tokens,
                 r.context_tokens, r.threads, si(r.flops_per_second, ""), r.cores_used);
    } else {
      fmt::print("  {:<18} {} MiB, {} thread(s): {}B/s read+written  (cores used {:.2f})\n", r.method,
                 r.context_tokens >> 20, r.threads, si(r.bytes_per_second, ""), r.cores_used);
    }
  }
  if (any_bound) fmt::print("\n");

  bool any_decode = false;
  for (const BenchRow& r : rows) {
    if (r.kind != "decode") continue;
    if (!any_decode) {
      fmt::print("decode: one token for every head; per token per head = step / heads\n");
      fmt::print("  {:<6} {:<10} {:>3} {:>2} {:>5} {:>11} {:>11} {:>12} {:>11} {:>10} {:>9} {:>6}\n", "method",
                 "precision", "d", "P", "heads", "context", "processed", "/token/head", "memory", "B/s moved",
                 "x copy", "cores");
    }
    any_decode = true;
    if (r.status != "ok") {
      fmt::print("  {:<6} {:<10} {:>3} {:>2} {:>5} {:>11}  {}\n", r.method, r.precision, r.d_key, r.taylor_terms,
                 r.heads, r.context_tokens, r.status);
      continue;
    }
    // Time of the step over the time to move its bytes once at the copy bandwidth.
    const double vs_copy = copy ? r.seconds_median / (static_cast<double>(r.bytes_per_unit) / copy->bytes_per_second)
                                : std::nan("");
    fmt::print("  {:<6} {:<10} {:>3} {:>2} {:>5} {:>11} {:>11} {:>12} {:>11} {:>10} {:>9.2f} {:>6.2f}\n", r.method,
               r.precision, r.d_key, r.taylor_terms, r.heads, r.context_tokens, r.tokens_processed,
               seconds_text(r.seconds_per_token_head), si(static_cast<double>(r.memory_bytes), "B"),
               si(r.bytes_per_second, "B/s"), vs_copy, r.cores_used);
  }
  if (any_decode) {
    fmt::print("  (x copy: step time / time to read+write the state or read the cache once at the {}-thread copy "
               "bandwidth)\n\n",
               ctx.threads);
  }

  bool any_prefill = false;
  for (const BenchRow& r : rows) {
    if (r.kind != "prefill") continue;
    if (!any_prefill) {
      fmt::print("causal prefill\n");
      fmt::print("  {:<6} {:<10} {:>3} {:>2} {:>5} {:>8} {:>12} {:>12} {:>11} {:>6}\n", "method", "precision", "d",
                 "P", "heads", "tokens", "tokens/s", "FLOP/s", "x GEMM", "cores");
    }
    any_prefill = true;
    if (r.status != "ok") {
      fmt::print("  {:<6} {:<10} {:>3} {:>2} {:>5} {:>8}  {}\n", r.method, r.precision, r.d_key, r.taylor_terms,
                 r.heads, r.context_tokens, r.status);
      continue;
    }
    const BenchRow* gemm = r.precision == "fp64" ? gemm64 : gemm32;
    const double vs_gemm = gemm ? r.flops_per_second / gemm->flops_per_second : std::nan("");
    fmt::print("  {:<6} {:<10} {:>3} {:>2} {:>5} {:>8} {:>12} {:>12} {:>11.2f} {:>6.2f}\n", r.method, r.precision,
               r.d_key, r.taylor_terms, r.heads, r.context_tokens, si(r.tokens_per_second, ""),
               si(r.flops_per_second, ""), vs_gemm, r.cores_used);
  }
  if (any_prefill) {
    fmt::print("  (FLOP/s: SATA the inter-chunk products Φ(Q)·S and Φ(K)ᵀ·[V 1] only, over the whole prefill time;\n"
               "   exact the products of the causal pairs. x GEMM: over the {}-thread Eigen GEMM rate of the carrier.)\n",
               ctx.threads);
  }
  bool any_accumulation = false;
  for (const BenchRow& r : rows) {
    if (r.kind != "accumulation") continue;
    if (!any_accumulation) {
      fmt::print("\nstate accumulation modes: SATA's decode step per mode\n");
      fmt::print("  {:<12} {:<10} {:>3} {:>2} {:>5} {:>12} {:>9} {:>6}\n", "mode", "precision", "d", "P", "heads",
                 "/token/head", "x plain", "cores");
    }
    any_accumulation = true;
    if (r.status != "ok") {
      fmt::print("  {:<12} {:<10} {:>3} {:>2} {:>5}  {}\n", r.method, r.precision, r.d_key, r.taylor_terms, r.heads,
                 r.status);
      continue;
    }
    const BenchRow* plain = nullptr;
    for (const BenchRow& p : rows) {
      if (p.kind == "accumulation" && p.method == "plain" && p.precision == r.precision && p.d_key == r.d_key &&
          p.taylor_terms == r.taylor_terms && p.heads == r.heads && p.status == "ok") {
        plain = &p;
      }
    }
    fmt::print("  {:<12} {:<10} {:>3} {:>2} {:>5} {:>12} {:>9.2f} {:>6.2f}\n", r.method, r.precision, r.d_key,
               r.taylor_terms, r.heads, seconds_text(r.seconds_per_token_head),
               plain ? r.seconds_median / plain->seconds_median : std::nan(""), r.cores_used);
  }
  (void)update;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buffer;
}

int bench(const BenchOptions& o, const std::string& command_line) {
  if (o.memory_limit) set_memory_limit_bytes(o.memory_limit);
  const Plan plan = make_plan(o);
  if (!o.out.empty() && !o.force && std::filesystem::exists(o.out)) {
    throw InvalidArgument(fmt::format("--out '{}': file exists (use --force to replace it)", o.out));
  }
  Context ctx{o, plan, {}, {}, omp_get_max_threads()};
  ctx.metadata = {satalab::version(), satalab::git_commit(), command_line, utc_now(), cpu_model(),
                  static_cast<std::uint64_t>(ctx.threads), llc_bytes(), memory_limit_bytes(), physical_memory_bytes()};
  // An empty table first: a bad --out fails before anything is measured.
  if (!o.out.empty()) write_bench_file(o.out, ctx.metadata, ctx.rows, o.force);
  fmt::print(stderr, "satalab bench: {} thread(s), memory limit {:.3g} GiB\n", ctx.threads,
             static_cast<double>(memory_limit_bytes()) / (1ull << 30));

  if (plan.bounds) {
    const std::uint64_t copy = o.copy_bytes ? o.copy_bytes : std::max<std::uint64_t>(256ull << 20, 8 * llc_bytes());
    measure_bandwidth(ctx, copy);
    measure_gemm<float>(ctx, o.gemm_size, "fp32");
    measure_gemm<double>(ctx, o.gemm_size, "fp64");
  }
  if (plan.decode) {
    for (const PrecisionPolicy& policy : plan.precisions) {
      for (std::size_t d : o.d_keys) {
        if (plan.sata) {
          for (std::size_t P : o.taylor_terms) {
            with_carrier(policy, [&]<class T>(CarrierTag<T>) requires std::is_floating_point_v<T> {
              decode_sata_series<T>(ctx, policy, d, P);
            });
          }
        }
        if (plan.exact) {
          with_carrier(policy, [&]<class T>(CarrierTag<T>) requires std::is_floating_point_v<T> {
            decode_exact_series<T>(ctx, policy, d);
          });
        }
      }
    }
  }
  if (plan.prefill) {
    for (const PrecisionPolicy& policy : plan.prefill_precisions) {
      for (std::size_t d : o.d_keys) {
        for (std::uint64_t n : plan.prefill_tokens) {
          with_carrier(policy, [&]<class T>(CarrierTag<T>) requires std::is_floating_point_v<T> {
            prefill_rows<T>(ctx, policy, d, n);
          });
        }
      }
    }
  }
  if (plan.accumulation) {
    for (const PrecisionPolicy& policy : plan.precisions) {
      for (std::size_t d : o.d_keys) {
        for (std::size_t P : o.taylor_terms) {
          with_carrier(policy, [&]<class T>(CarrierTag<T>) requires std::is_floating_point_v<T> {
            accumulation_series<T>(ctx, policy, d, P);
          });
        }
      }
    }
  }
  print_summary(ctx);
  if (!o.out.empty()) fmt::print("\n  wrote {} rows to {}\n", ctx.rows.size(), o.out);
  return 0;
}

}  // namespace

Runner add_bench_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Measure what attention costs on this machine, next to the machine's own bounds measured in the same run.\n"
      "\n"
      "Sections (--sections):\n"
      "  bounds   streaming copy bandwidth (memcpy) and in-place read-modify-write bandwidth on a buffer larger\n"
      "           than the last-level cache, and Eigen's fp32/fp64 GEMM rate on N x N squares; each with one\n"
      "           thread and with all threads at once.\n"
      "  decode   time per token of one decode step (append the token, read out its query) for every head:\n"
      "           SATA's fused pass over its state, and exact attention over a KV cache, at each --context.\n"
      "           SATA really processes the context first (chunked prefill) unless --process-budget runs out:\n"
      "           then the row records fewer tokens_processed (a step's cost does not depend on the count).\n"
      "           Exact attention fills its cache with the context; contexts whose cache exceeds the memory\n"
      "           limit are recorded as skipped, naming the bytes needed.\n"
      "  prefill  causal prefill of --prefill-tokens tokens per head: SATA chunked (matrix products between\n"
      "           chunks) and exact attention (tiled, O(n d) memory), tokens/s and FLOP/s.\n"
      "  accumulation  SATA's decode step in each state accumulation mode (plain, compensated, blocked,\n"
      "           fp64; satalab drift's --modes) at each --precision, d and P: time per token per head and\n"
      "           the ratio to plain measured in the same run. Not in the default sections.\n"
      "\n"
      "Inputs are pseudo-random (unit variance), rounded into the policy's input format. Times are wall-clock\n"
      "medians over --repeats, after one untimed warm-up repeat; decode timing starts 100 ms after the context\n"
      "is processed, so that OpenMP's idle threads have stopped spinning (OMP_WAIT_POLICY=active would keep\n"
      "them spinning and slow single-threaded steps on shared cores). Every row also records the cores the\n"
      "process kept busy. On a shared machine read speeds as ratios to the bounds of the same run.\n"
      "Results: --out FILE.h5 (one /bench table, see docs/bench-schema.md), rewritten after every row; a\n"
      "summary on stdout.");
  cmd->add_option("--sections", o->sections, "Any of bounds, decode, prefill, accumulation")->capture_default_str()->delimiter(',');
  cmd->add_option("--methods", o->methods, "Any of sata, exact (decode and prefill)")
      ->capture_default_str()
      ->delimiter(',');
  cmd->add_option("--d-key,-d", o->d_keys, "Head sizes (d_value = d_key)")->capture_default_str()->delimiter(',');
  cmd->add_option("--taylor-terms,-P", o->taylor_terms, "SATA's P (degrees 0..P-1)")
      ->capture_default_str()
      ->delimiter(',');
  cmd->add_option("--precision", o->precisions,
                  "Decode precision policies (float or double carriers: fp32, fp16-acc32, fp64, bf16-acc32, ...)")
      ->capture_default_str()
      ->delimiter(',');
  cmd->add_option("--heads,-H", o->heads, "Heads decoded together (in parallel)")->capture_default_str();
  cmd->add_option("--context", o->contexts, "Decode context lengths (K = 1e3, M = 1e6, G = 1e9)")
      ->capture_default_str()
      ->delimiter(',');
  cmd->add_option("--process-budget", o->process_budget,
                  "Seconds SATA may spend per (precision, d, P) really processing tokens up to the contexts")
      ->capture_default_str();
  cmd->add_option("--decode-steps", o->decode_steps,
                  "Decode steps per repeat, at most (exact attention: at most context/16, its cache grows by the steps)")
      ->capture_default_str();
  cmd->add_option("--repeat-seconds", o->repeat_seconds, "A decode repeat stops after this many seconds")
      ->capture_default_str();
  cmd->add_option("--repeats", o->repeats, "Timed repeats of decode steps and bounds (median reported)")
      ->capture_default_str();
  cmd->add_option("--prefill-tokens", o->prefill_tokens, "Prefill lengths per head")
      ->capture_default_str()
      ->delimiter(',');
  cmd->add_option("--prefill-precision", o->prefill_precisions, "Prefill precision policies")
      ->capture_default_str()
      ->delimiter(',');
  cmd->add_option("--prefill-repeats", o->prefill_repeats, "Timed repeats of each prefill")->capture_default_str();
  cmd->add_option("--chunk", o->chunk, "SATA prefill chunk (0: the library default, 64)")->capture_default_str();
  cmd->add_option("--copy-bytes", o->copy_bytes,
                  "Bandwidth buffer size (bytes; KB, MB, GB accepted; default max(256 MiB, 8 x last-level cache))")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--gemm-size", o->gemm_size, "N of the N x N GEMM bound")->capture_default_str();
  cmd->add_option("--out", o->out, "Write the rows to this HDF5 file (refused if it exists, unless --force)");
  cmd->add_flag("--force", o->force, "Replace the --out file if it exists");
  cmd->add_option("--memory-limit", o->memory_limit,
                  "Refuse (record as skipped) states and caches larger than this (bytes; KB, MB, GB accepted;\n"
                  "default 80% of RAM)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--seed", o->seed, "Seed of the pseudo-random inputs")->capture_default_str();
  return [o, command_line]() { return bench(*o, command_line); };
}

}  // namespace satalab::cli
