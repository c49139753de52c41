// `satalab advise`: for a workload or an input file and a target median
// relative error, the smallest number of Taylor terms P per head and per
// read-out polynomial family (attention/readout_polynomial.hpp) at which SATA
// meets the target, and the state bytes per head it costs. Each P is one point
// decomposed by the library's evaluate_point (experiment/evaluate.hpp) against
// exact attention at the truth precision, as `satalab run` decomposes it; the
// truth of a head is computed once and shared by all its points.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "commands.hpp"
#include "satalab/attention/compute.hpp"
#include "satalab/attention/readout_polynomial.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/error.hpp"
#include "satalab/experiment/evaluate.hpp"
#include "satalab/io/hdf5_arrays.hpp"
#include "satalab/io/output_path.hpp"
#include "satalab/memory.hpp"
#include "satalab/version.hpp"

namespace satalab::cli {
namespace {

// Version of the --json document; bump it when a key is added, removed,
// renamed or changes meaning.
constexpr int kAdviseJsonVersion = 1;

struct AdviseOptions {
  PointParams params;  // workload, shape, modifiers, precision, truth, mask, truth_rows
  std::string input;
  std::optional<double> target;
  std::vector<std::string> families;  // empty: all
  std::size_t max_terms = 8;
  std::string json;
  bool overwrite = false;
  bool non_causal = false;
  std::uint64_t memory_limit = 0;
};

// One family on one head: the P tried, each one's median relative error, and
// the smallest P meeting the target (if any).
struct FamilyAdvice {
  std::size_t head = 0;
  PolynomialFamily family = PolynomialFamily::taylor;
  std::vector<std::pair<std::size_t, double>> tried;  // (P, median relative error)
  std::optional<std::size_t> terms;                   // the smallest P meeting the target
  std::uint64_t state_bytes = 0;                      // per head, at `terms`
  std::string stopped;                                // why the search ended without reaching the target
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string flag_for(std::string_view key) {
  std::string flag = "--" + std::string(key);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// Head h of `all` as a one-head array.
HeadArrays head_slice(const HeadArrays& all, std::size_t h) {
  const std::size_t per_head = all.n_tokens * all.dim;
  return {1, all.n_tokens, all.dim,
          std::vector<double>(all.data.begin() + static_cast<std::ptrdiff_t>(h * per_head),
                              all.data.begin() + static_cast<std::ptrdiff_t>((h + 1) * per_head))};
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(ch)));
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double x) { return std::isfinite(x) ? fmt::format("{:.17g}", x) : "null"; }

// Writes `text` to `path` atomically: a temporary file in the same directory,
// flushed, then renamed into place (a reader never sees half a file).
void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw InvalidArgument(fmt::format("--json '{}': cannot write the temporary file", path));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw InvalidArgument(fmt::format("--json '{}': cannot rename the temporary file into place (errno {})", path, err));
  }
}

int advise(AdviseOptions o, const std::string& command_line) {
  const auto start = std::chrono::steady_clock::now();
  if (o.memory_limit) set_memory_limit_bytes(o.memory_limit);
  if (!o.target || !std::isfinite(*o.target) || !(*o.target > 0.0 && *o.target < 1.0)) {
    throw InvalidArgument(
        o.target ? fmt::format("--target {} is invalid (a median relative error: must be > 0 and < 1)", *o.target)
                 : std::string("--target is required (a median relative error > 0 and < 1, e.g. 1e-3)"));
  }
  if (o.max_terms < 1 || o.max_terms > SymmetricBasis::kMaxTaylorTerms) {
    throw InvalidArgument(
        fmt::format("--max-terms {} is invalid (allowed: 1 .. {})", o.max_terms, SymmetricBasis::kMaxTaylorTerms));
  }
  std::vector<PolynomialFamily> families;
  if (o.families.empty()) o.families = polynomial_family_names();
  for (const std::string& name : o.families) {
    PolynomialFamily f;
    try {
      f = polynomial_family_by_name(name);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(fmt::format("--families: {}", e.what()));
    }
    if (std::find(families.begin(), families.end(), f) != families.end()) {
      throw InvalidArgument(fmt::format("--families: '{}' is listed twice", name));
    }
    if (polynomial_min_terms(f) > o.max_terms) {
      throw InvalidArgument(fmt::format("--max-terms {} is below the smallest P of family '{}' ({})", o.max_terms,
                                        name, polynomial_min_terms(f)));
    }
    families.push_back(f);
  }
  if (!o.json.empty()) {
    if (!o.overwrite && std::filesystem::exists(o.json)) {
      throw InvalidArgument(fmt::format("--json '{}': file exists (use --force to replace it)", o.json));
    }
    try {
      check_output_path(o.json, o.overwrite ? OutputMode::replace : OutputMode::create);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(fmt::format("--json: {}", e.what()));
    }
  }
  PointParams& p = o.params;
  p.method = "sata";
  p.causal = !o.non_causal;
  if (!o.input.empty()) {
    // The file's shape; point_inputs reads it again (through the same path as `satalab run --input`).
    const QkvArrays shape = read_qkv(o.input);
    p.workload = "file";
    p.input_file = o.input;
    p.heads = static_cast<std::uint32_t>(shape.q.heads);
    p.n_tokens = shape.q.n_tokens;
    p.d_key = static_cast<std::uint32_t>(shape.q.dim);
    p.d_value = static_cast<std::uint32_t>(shape.v.dim);
  } else if (p.d_value == 0) {
    p.d_value = p.d_key;
  }
  if (p.workload == "file" && o.input.empty()) throw InvalidArgument("--workload file needs --input FILE.h5");
  if (p.workload == "fitted") throw InvalidArgument("--workload fitted is not supported by advise (use --input)");
  PointSpec spec;
  try {
    spec = point_spec(p);  // validates every name and the taylor family at P
  } catch (const InvalidMethodOption& e) {
    throw InvalidArgument(e.spelled(flag_for));
  }
  // The whole workload (modifiers seeded as `satalab run` seeds them), then one head at a time.
  PointInputs all = point_inputs(spec);
  spec.heads = 1;
  const std::size_t heads = all.qkv.q.heads;
  const double c = spec.softmax_denominator();

  fmt::print(stderr, "satalab advise: {} heads x {} tokens, {} families, P <= {}\n", heads, spec.n_tokens,
             families.size(), o.max_terms);
  std::vector<FamilyAdvice> advice;
  for (std::size_t h = 0; h < heads; ++h) {
    PointInputs head;
    head.qkv = {head_slice(all.qkv.q, h), head_slice(all.qkv.k, h), head_slice(all.qkv.v, h)};
    TruthCache cache(std::move(head), spec);
    for (const PolynomialFamily family : families) {
      FamilyAdvice a;
      a.head = h;
      a.family = family;
      for (std::size_t P = polynomial_min_terms(family); P <= o.max_terms; ++P) {
        PointSpec point = spec;
        point.options.taylor_terms = P;
        point.options.polynomial.family = family;
        try {
          validate_method_options(point.method, point.options, point.policy);
        } catch (const InvalidMethodOption& e) {
          a.stopped = e.spelled(flag_for);
          break;
        }
        try {
          check_decomposition_memory(point, cache.inputs().qkv);
        } catch (const ResourceLimit& e) {
          a.stopped = fmt::format("memory at P={}: {}", P, e.what());
          break;
        }
        const PointEvaluation ev = evaluate_point(point, cache);
        const double err = ev.total.rel_error.median;
        a.tried.emplace_back(P, err);
        fmt::print(stderr, "  head {} {} P={}: median relative error {:.3e}\n", h, polynomial_family_name(family), P,
                   err);
        if (err <= *o.target) {
          a.terms = P;
          a.state_bytes = sequence_memory_bytes(Method::sata, 1, point.n_tokens, point.d_key, point.d_value,
                                                point.policy, point.options);
          break;
        }
      }
      if (!a.terms && a.stopped.empty()) a.stopped = fmt::format("not reached with P <= {}", o.max_terms);
      advice.push_back(std::move(a));
    }
  }

  const std::uint64_t rows = measured_rows(p);
  fmt::print("satalab advise: target median relative error {:.3g}, method sata at {}, truth exact@{}\n",
             *o.target, spec.policy.name, spec.truth.name);
  fmt::print("  {} {} heads={} n_tokens={} d_key={} d_value={} c={:.6g}; errors over {} of {} query rows per head\n",
             o.input.empty() ? fmt::format("workload {} scale={} seed={}", p.workload, p.scale, p.seed)
                             : fmt::format("file {}", std::filesystem::path(o.input).filename().string()),
             p.causal ? "causal" : "non-causal", heads, spec.n_tokens, spec.d_key, spec.d_value, c, rows,
             spec.n_tokens);
  if (!p.modifiers.empty()) fmt::print("  modifiers {}\n", p.modifiers);
  fmt::print("\n  {:>4}  {:<13} {:>3}  {:>12}  {:>16}  {}\n", "head", "family", "P", "rel med", "state bytes/head",
             "errors at P = first, first+1, ...");
  for (const FamilyAdvice& a : advice) {
    std::string errors;
    for (const auto& [P, err] : a.tried) errors += fmt::format("{}{:.2e}", errors.empty() ? "" : " ", err);
    const double reached = a.terms ? a.tried.back().second : std::numeric_limits<double>::quiet_NaN();
    fmt::print("  {:>4}  {:<13} {:>3}  {:>12}  {:>16}  {}\n", a.head, polynomial_family_name(a.family),
               a.terms ? std::to_string(*a.terms) : "-", a.terms ? fmt::format("{:.3e}", reached) : "-",
               a.terms ? std::to_string(a.state_bytes) : "-", a.terms ? errors : errors + " (" + a.stopped + ")");
  }
  // Per family over all heads: the P every head reaches the target with (one P per model).
  fmt::print("\n  {:<13} {:>14}  {:>22}\n", "family", "P (all heads)", "state bytes (all heads)");
  for (const PolynomialFamily family : families) {
    std::size_t worst = 0;
    std::uint64_t bytes = 0;
    bool every = true;
    for (const FamilyAdvice& a : advice) {
      if (a.family != family) continue;
      if (!a.terms) every = false;
      else if (*a.terms > worst) worst = *a.terms;
    }
    if (every) {
      AttentionOptions options = spec.options;
      options.taylor_terms = worst;
      bytes = sequence_memory_bytes(Method::sata, heads, spec.n_tokens, spec.d_key, spec.d_value, spec.policy, options);
    }
    fmt::print("  {:<13} {:>14}  {:>22}\n", polynomial_family_name(family), every ? std::to_string(worst) : "-",
               every ? std::to_string(bytes) : "- (a head does not reach the target)");
  }
  fmt::print("\n  time {:.2f} s\n", seconds_since(start));

  if (!o.json.empty()) {
    std::string results;
    for (const FamilyAdvice& a : advice) {
      std::string tried;
      for (const auto& [P, err] : a.tried) {
        tried += fmt::format("{}{{\"taylor_terms\": {}, \"rel_error_median\": {}}}", tried.empty() ? "" : ", ", P,
                             json_number(err));
      }
      results += fmt::format(
          "{}\n    {{\"head\": {}, \"family\": {}, \"reached\": {}, \"taylor_terms\": {}, \"rel_error_median\": {}, "
          "\"state_bytes_per_head\": {}, \"stopped\": {}, \"tried\": [{}]}}",
          results.empty() ? "" : ",", a.head, json_string(polynomial_family_name(a.family)), a.terms ? "true" : "false",
          a.terms ? std::to_string(*a.terms) : "null", a.terms ? json_number(a.tried.back().second) : "null",
          a.terms ? std::to_string(a.state_bytes) : "null", a.terms ? "null" : json_string(a.stopped), tried);
    }
    const std::string text = fmt::format(
        "{{\n  \"advise_json_version\": {},\n  \"satalab_version\": {},\n  \"git_commit\": {},\n  \"command_line\": {},\n"
        "  \"target_rel_error_median\": {},\n  \"method\": \"sata\",\n  \"precision\": {},\n  \"truth\": {},\n"
        "  \"workload\": {},\n  \"input\": {},\n  \"modifiers\": {},\n  \"causal\": {},\n  \"heads\": {},\n"
        "  \"n_tokens\": {},\n  \"d_key\": {},\n  \"d_value\": {},\n  \"softmax_denominator\": {},\n"
        "  \"measured_rows\": {},\n  \"max_terms\": {},\n  \"results\": [{}\n  ]\n}}\n",
        kAdviseJsonVersion, json_string(satalab::version()), json_string(satalab::git_commit()),
        json_string(command_line), json_number(*o.target), json_string(spec.policy.name),
        json_string("exact@" + spec.truth.name), json_string(p.workload),
        json_string(o.input.empty() ? "" : std::filesystem::path(o.input).filename().string()),
        json_string(p.modifiers), p.causal ? "true" : "false", heads, spec.n_tokens, spec.d_key, spec.d_value,
        json_number(c), rows, o.max_terms, results);
    write_text_atomically(o.json, text);
    fmt::print("  wrote {}\n", o.json);
  }
  return 0;
}

}  // namespace

Runner add_advise_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<AdviseOptions>();
  o->params.precision = "fp64";
  o->params.truth_rows = 256;
  o->params.d_value = 0;
  CLI::App* cmd = app.add_subcommand(
      "advise",
      "For a workload or an input file (e.g. captured heads) and a target median relative error, the smallest\n"
      "number of Taylor terms P per head and per read-out polynomial family at which SATA's median relative\n"
      "error against exact attention meets the target, and the state bytes per head it costs. Each P is one\n"
      "point of `satalab run` (sata at --precision vs exact at the truth precision), on the measured rows.");
  cmd->add_option("--target", o->target, "Target median relative error, in (0, 1), e.g. 1e-3")->required();
  cmd->add_option("--families", o->families,
                  "Read-out polynomial families to advise on, comma-separated (default all: taylor, taylor-shift,\n"
                  "moment-fit, chebyshev, positive); all but taylor start at P = 3")
      ->delimiter(',');
  cmd->add_option("--max-terms", o->max_terms, "Largest P tried (the memory limit may stop a family earlier)")
      ->capture_default_str();
  cmd->add_option("--precision", o->params.precision,
                  "Precision policy of sata (fp64: truncation dominates the error; or as `satalab run`)")
      ->capture_default_str();
  cmd->add_option("--truth", o->params.truth, "Precision of the exact-attention truth: auto, fp64 or mp<bits>")
      ->capture_default_str();
  cmd->add_option("--truth-rows", o->params.truth_rows,
                  "Measure errors on this many evenly spaced query rows per head (0: every row)")
      ->capture_default_str();
  cmd->add_flag("--non-causal", o->non_causal, "Every query attends to every key");
  cmd->add_option("--chunk", o->params.chunk, "SATA causal prefill chunk size (default 64)");
  cmd->add_option("--softmax-denominator", o->params.softmax_denominator, "c in s = q.k/c (default sqrt(d_key))");
  cmd->add_option("--chebyshev-width", o->params.chebyshev_width,
                  "chebyshev: half-width of the interval in standard deviations of the query's logits (0, 64]")
      ->capture_default_str();
  cmd->add_option("--key-centring", o->params.key_centring, "none or first-chunk (see `satalab run --help`)")
      ->capture_default_str();
  auto* workload = cmd->add_option("--workload", o->params.workload, "Generated inputs: gaussian, heavy-tailed, needle")
                       ->capture_default_str();
  auto* heads = cmd->add_option("--heads", o->params.heads, "Generated inputs: number of heads")->capture_default_str();
  auto* n = cmd->add_option("--n-tokens", o->params.n_tokens, "Generated inputs: tokens per head")->capture_default_str();
  auto* dk = cmd->add_option("--d-key", o->params.d_key, "Generated inputs: head size of q and k")->capture_default_str();
  auto* dv = cmd->add_option("--d-value", o->params.d_value, "Generated inputs: head size of v (default d_key)");
  auto* scale = cmd->add_option("--scale", o->params.scale, "Generated inputs: standard deviation of q and k entries")
                    ->capture_default_str();
  auto* seed = cmd->add_option("--seed", o->params.seed, "Generated inputs: random seed")->capture_default_str();
  auto* dof = cmd->add_option("--dof", o->params.dof, "heavy-tailed: Student-t degrees of freedom")->capture_default_str();
  auto* needle = cmd->add_option("--needle-logit", o->params.needle_logit, "needle: logit of the aligned key")
                     ->capture_default_str();
  cmd->add_option("--input", o->input, "HDF5 file with datasets q, k, v of shape [heads, n_tokens, d] (as run --input)")
      ->excludes(workload)
      ->excludes(heads)
      ->excludes(n)
      ->excludes(dk)
      ->excludes(dv)
      ->excludes(scale)
      ->excludes(seed)
      ->excludes(dof)
      ->excludes(needle);
  cmd->add_option("--modifiers", o->params.modifiers,
                  "Workload modifiers joined by '+': rope, outliers, key-bias, sink (as `satalab run`)");
  cmd->add_option("--rope-theta", o->params.rope_theta, "rope: base theta")->capture_default_str();
  cmd->add_option("--outlier-channels", o->params.outlier_channels, "outliers: number of channels")
      ->capture_default_str();
  cmd->add_option("--outlier-magnitude", o->params.outlier_magnitude, "outliers: factor on those channels")
      ->capture_default_str();
  cmd->add_option("--key-bias-norm", o->params.key_bias_norm, "key-bias: norm of the shared key direction")
      ->capture_default_str();
  cmd->add_option("--sink-tokens", o->params.sink_tokens, "sink: number of leading sink tokens")->capture_default_str();
  cmd->add_option("--sink-logit", o->params.sink_logit, "sink: mean logit a sink draws")->capture_default_str();
  cmd->add_option("--sink-alignment", o->params.sink_alignment, "sink: the queries' shared component in units of --scale")
      ->capture_default_str();
  cmd->add_option("--json", o->json, "Also write the advice as JSON to this file (atomically)");
  cmd->add_flag("--force", o->overwrite, "Replace the --json file if it exists");
  cmd->add_option("--memory-limit", o->memory_limit,
                  "Refuse work needing more memory than this (bytes; suffixes KB, MB, GB accepted; default 80% of RAM)")
      ->transform(CLI::AsSizeValue(false));
  return [o, command_line]() { return advise(*o, command_line); };
}

}  // namespace satalab::cli
