// Sweep-file parser: TOML (toml++) -> validated keys -> normalised text and the
// expanded grid. See sweep_config.hpp for the keys and the expansion order.
#include "sweep_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <toml++/toml.h>
#include <utility>
#include <variant>

#include "satalab/attention/options.hpp"
#include "satalab/attention/quantized_kv.hpp"
#include "satalab/basis/feature_map.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/precision_policy.hpp"
#include "satalab/workload/modifiers.hpp"

namespace satalab::cli {
namespace {

namespace fs = std::filesystem;

// How a key's values are checked.
enum class Kind {
  text,             // name, description: a single string, not an axis
  method,           // method_by_name
  kv_quant,         // kv_quant_scheme
  recipe,           // kernel_recipe
  precision,        // precision_policy
  truth,            // auto | fp64 | mp<bits>
  placement,        // placement_by_name
  workload,         // gaussian | heavy-tailed | needle | fitted | file
  modifiers,        // workload modifiers joined by '+' (workload/modifiers.hpp)
  path,             // input_file
  count32,          // integer in [1, 2^32-1]
  count64,          // integer >= 1
  seed,             // integer >= 0
  positive_number,  // finite number > 0
  dof,              // finite number > 2
  theta,            // finite number > 1
  non_negative,     // finite number >= 0
  finite_number,    // finite number
  boolean,
  polynomial,       // polynomial_family_by_name
  key_centring,     // key_centring_by_name
  state_accumulation,  // state_accumulation_by_name
};

struct KeySpec {
  const char* name;
  Kind kind;
};

// Canonical order: the expansion order (first = slowest) and the order of the normalised text.
constexpr KeySpec kKeys[] = {
    {"name", Kind::text},
    {"description", Kind::text},
    {"method", Kind::method},
    {"taylor_terms", Kind::count32},
    {"kv_quant", Kind::kv_quant},
    {"d_key", Kind::count32},
    {"d_value", Kind::count32},
    {"heads", Kind::count32},
    {"heads_times_d_key", Kind::count32},
    {"n_tokens", Kind::count64},
    {"scale", Kind::positive_number},
    {"precision", Kind::precision},
    {"truth", Kind::truth},
    {"causal", Kind::boolean},
    {"chunk", Kind::count32},
    {"placement", Kind::placement},
    {"workload", Kind::workload},
    {"dof", Kind::dof},
    {"needle_logit", Kind::finite_number},
    {"input_file", Kind::path},
    {"seed", Kind::seed},
    {"softmax_denominator", Kind::positive_number},
    {"truth_rows", Kind::count64},
    {"modifiers", Kind::modifiers},
    {"rope_theta", Kind::theta},
    {"outlier_channels", Kind::count32},
    {"outlier_magnitude", Kind::positive_number},
    {"key_bias_norm", Kind::non_negative},
    {"sink_tokens", Kind::count32},
    {"sink_logit", Kind::finite_number},
    {"sink_alignment", Kind::positive_number},
    // Kernel recipes (attention/recipe.hpp).
    {"recipe", Kind::recipe},
    {"tile_rows", Kind::count32},
    {"tile_cols", Kind::count32},
    // Read-out polynomials.
    {"polynomial", Kind::polynomial},
    {"chebyshev_width", Kind::positive_number},
    {"key_centring", Kind::key_centring},
    // Long-context drift: SATA's state accumulation modes.
    {"state_accumulation", Kind::state_accumulation},
    {"state_block", Kind::count32},
};
constexpr std::size_t kKeyCount = std::size(kKeys);

const char* const kWorkloads[] = {"gaussian", "heavy-tailed", "needle", "fitted", "file"};

std::optional<std::size_t> key_index(std::string_view key) {
  for (std::size_t i = 0; i < kKeyCount; ++i) {
    if (key == kKeys[i].name) return i;
  }
  return std::nullopt;
}

std::string allowed_keys() {
  std::string s;
  for (std::size_t i = 2; i < kKeyCount; ++i) s += std::string(kKeys[i].name) + ", ";
  return s + "name, description";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// Control characters escaped (\n, \u0001), so that messages quoting user text stay on one line.
std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (u < 0x20 || u == 0x7f) out += fmt::format("\\u{:04X}", static_cast<unsigned>(u));
    else out += c;
  }
  return out;
}

[[noreturn]] void unknown_key(const std::string& where, std::string_view key) {
  std::string hint;
  std::size_t best = 3;
  for (const KeySpec& spec : kKeys) {
    const std::size_t d = edit_distance(key, spec.name);
    if (d < best) {
      best = d;
      hint = fmt::format("did you mean '{}'? ", spec.name);
    }
  }
  throw InvalidArgument(fmt::format("{}: unknown key '{}' ({}allowed: {})", where, printable(key), hint, allowed_keys()));
}

// One scalar of the config, with where it came from.
using Datum = std::variant<std::int64_t, double, bool, std::string>;
struct Scalar {
  Datum value;
  std::string where;  // "file:line" or "--set key=value"
};

struct Entry {
  std::size_t key = 0;  // index into kKeys
  bool list = false;
  std::vector<Scalar> values;
  std::string where;       // of the key
  std::size_t order = 0;   // file order (--set additions after the file's keys)
  bool from_override = false;
  std::string resolved;    // input_file: the path the points carry
};

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string toml_number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", x);  // shortest representation that round-trips
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string toml_value(const Datum& d) {
  if (const auto* i = std::get_if<std::int64_t>(&d)) return std::to_string(*i);
  if (const auto* x = std::get_if<double>(&d)) return toml_number(*x);
  if (const auto* b = std::get_if<bool>(&d)) return *b ? "true" : "false";
  return toml_string(std::get<std::string>(d));
}

// Reads one TOML node of a top-level key into an entry (types are checked later).
template <class WhereOf>
Entry read_node(std::size_t key, const toml::node& node, const std::string& key_where, const WhereOf& where_of) {
  Entry e;
  e.key = key;
  e.where = key_where;
  const char* name = kKeys[key].name;
  auto scalar = [&](const toml::node& n) -> Scalar {
    const std::string where = where_of(n);
    switch (n.type()) {
      case toml::node_type::integer: return {n.as_integer()->get(), where};
      case toml::node_type::floating_point: return {n.as_floating_point()->get(), where};
      case toml::node_type::boolean: return {n.as_boolean()->get(), where};
      case toml::node_type::string: return {n.as_string()->get(), where};
      case toml::node_type::array:
        throw InvalidArgument(fmt::format("{}: '{}' must be a value or a list of values, not a list of lists", where, name));
      case toml::node_type::table:
        throw InvalidArgument(fmt::format("{}: '{}' must be a value or a list of values, not a table", where, name));
      default:
        throw InvalidArgument(fmt::format("{}: '{}' must be a value or a list of values, not a date or time", where, name));
    }
  };
  if (const toml::array* array = node.as_array()) {
    e.list = true;
    for (const toml::node& element : *array) e.values.push_back(scalar(element));
  } else {
    e.values.push_back(scalar(node));
  }
  return e;
}

// Checks the values of an entry against its key's kind; converts integers given for numbers to doubles.
void validate(Entry& e, const std::string& source_name) {
  const KeySpec& spec = kKeys[e.key];
  const std::string name = spec.name;
  if (e.list && e.values.empty()) throw InvalidArgument(fmt::format("{}: '{}' list is empty", e.where, name));
  if (spec.kind == Kind::text && e.list) {
    throw InvalidArgument(fmt::format("{}: '{}' must be a string, not a list (it is not an axis)", e.where, name));
  }
  for (Scalar& s : e.values) {
    const std::string got = toml_value(s.value);
    const auto* integer = std::get_if<std::int64_t>(&s.value);
    const auto* str = std::get_if<std::string>(&s.value);
    auto fail = [&](const std::string& what) {
      throw InvalidArgument(fmt::format("{}: '{}' must be {}, got {}", s.where, name, what, got));
    };
    auto named = [&](auto&& check) {
      if (!str) fail("a string");
      try {
        check(*str);
      } catch (const InvalidArgument& error) {
        throw InvalidArgument(fmt::format("{}: '{}': {}", s.where, name, printable(error.what())));
      }
    };
    switch (spec.kind) {
      case Kind::text:
        if (!str) fail("a string");
        break;
      case Kind::method: named([](const std::string& v) { (void)method_by_name(v); }); break;
      case Kind::kv_quant: named([](const std::string& v) { (void)kv_quant_scheme(v); }); break;
      case Kind::recipe: named([](const std::string& v) { (void)kernel_recipe(v); }); break;
      case Kind::polynomial: named([](const std::string& v) { (void)polynomial_family_by_name(v); }); break;
      case Kind::key_centring: named([](const std::string& v) { (void)key_centring_by_name(v); }); break;
      case Kind::state_accumulation:
        named([](const std::string& v) { (void)state_accumulation_by_name(v); });
        break;
      case Kind::precision: named([](const std::string& v) { (void)precision_policy(v); }); break;
      case Kind::placement: named([](const std::string& v) { (void)placement_by_name(v); }); break;
      case Kind::truth:
        if (!str) fail(R"("auto", "fp64" or "mp<bits>" (e.g. "mp256"))");
        if (*str != "auto") {
          const bool mp = str->size() > 2 && str->compare(0, 2, "mp") == 0 &&
                          str->find_first_not_of("0123456789", 2) == std::string::npos;
          if (*str != "fp64" && !mp) fail(R"("auto", "fp64" or "mp<bits>" (e.g. "mp256"))");
          named([](const std::string& v) { (void)precision_policy(v); });  // range of bits
        }
        break;
      case Kind::workload: {
        if (!str || std::none_of(std::begin(kWorkloads), std::end(kWorkloads), [&](const char* w) { return *str == w; })) {
          fail(R"(one of "gaussian", "heavy-tailed", "needle", "fitted", "file")");
        }
        break;
      }
      case Kind::modifiers:
        named([](const std::string& v) { (void)parse_modifier_list(v); });
        break;
      case Kind::path:
        if (!str || str->empty()) fail("a non-empty string (a path)");
        break;
      case Kind::count32:
        if (!integer || *integer < 1 || *integer > std::numeric_limits<std::uint32_t>::max()) {
          fail(integer && *integer >= 1 ? fmt::format("an integer <= {}", std::numeric_limits<std::uint32_t>::max())
                                        : "an integer >= 1");
        }
        break;
      case Kind::count64:
        if (!integer || *integer < 1) fail("an integer >= 1");
        break;
      case Kind::seed:
        if (!integer || *integer < 0) fail("an integer >= 0");
        break;
      case Kind::positive_number:
      case Kind::dof:
      case Kind::theta:
      case Kind::non_negative:
      case Kind::finite_number: {
        const double bound = spec.kind == Kind::dof ? 2.0 : spec.kind == Kind::theta ? 1.0 : 0.0;
        const char* what = spec.kind == Kind::dof             ? "a finite number > 2"
                           : spec.kind == Kind::theta           ? "a finite number > 1"
                           : spec.kind == Kind::positive_number ? "a finite number > 0"
                           : spec.kind == Kind::non_negative    ? "a finite number >= 0"
                                                               : "a finite number";
        const auto* x = std::get_if<double>(&s.value);
        if (!x && !integer) fail(what);
        const double v = x ? *x : static_cast<double>(*integer);
        const bool in_range = spec.kind == Kind::finite_number  ? true
                              : spec.kind == Kind::non_negative ? v >= 0
                                                                : v > bound;
        if (!std::isfinite(v) || !in_range) fail(what);
        s.value = v;
        break;
      }
      case Kind::boolean:
        if (!std::get_if<bool>(&s.value)) fail("true or false");
        break;
    }
  }
  if (spec.kind == Kind::path) {
    if (e.list) {
      throw InvalidArgument(fmt::format("{}: 'input_file' must be a single path, not a list", e.where));
    }
    const fs::path written = std::get<std::string>(e.values[0].value);
    // Relative to the config file's directory; an override's relative to the working directory.
    const fs::path base = e.from_override ? fs::path() : fs::path(source_name).parent_path();
    const fs::path resolved = written.is_absolute() ? written : (base / written).lexically_normal();
    std::error_code ec;
    if (!fs::is_regular_file(resolved, ec)) {
      throw InvalidArgument(fmt::format("{}: 'input_file' {} not found{}", e.values[0].where,
                                        toml_string(written.string()),
                                        resolved == written ? "" : fmt::format(" (resolved to '{}')", printable(resolved.string()))));
    }
    e.resolved = resolved.string();
  }
}

// Keys only some methods read (sweep_config.hpp): P the Taylor methods, kv_quant exact-kvquant.
bool method_reads(std::string_view method, std::string_view key) {
  if (key == "taylor_terms") return method_is_taylor(method_by_name(method));
  if (key == "kv_quant") return method == "exact-kvquant";
  if (key == "recipe") return method == "exact";
  if (key == "polynomial" || key == "chebyshev_width" || key == "key_centring") {
    return method_is_taylor(method_by_name(method));
  }
  if (key == "state_accumulation" || key == "state_block") return method == "sata";
  return true;
}

// Keys a point reads given its method and recipe: a kernel recipe reads the
// tiles and not the precision (it sets every format itself; fp32), a point
// without a recipe the precision and not the tiles.
bool point_reads(const PointParams& p, std::string_view key) {
  if (!method_reads(p.method, key)) return false;
  const bool recipe = method_reads(p.method, "recipe") && p.recipe != "none";
  if (key == "precision") return !recipe;
  if (key == "state_block") return p.state_accumulation == "blocked";  // only blocked has blocks
  if (key != "tile_rows" && key != "tile_cols") return true;
  if (!recipe) return false;
  const RecipeSteps& steps = recipe_steps(kernel_recipe(p.recipe).kind);
  // Br sets the blocks of Q's scales; Bc the online softmax's key tiles (and K's and V's blocks).
  return key == "tile_rows" ? steps.q_storage != RecipeStorage::cast && steps.q_storage != RecipeStorage::e4m3_head
                            : !steps.materialised;
}

// Control characters escaped, so that messages quoting user text stay on one line.

// True for a value the shell likely unquoted: fp32, taylor-quadratic, data/qkv.h5.
bool bare_word(std::string_view v) {
  if (v.empty()) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' || c == '+';
  });
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

Entry parse_override(const std::string& override_text, std::size_t order) {
  const std::string where = fmt::format("--set '{}'", printable(override_text));
  const auto eq = override_text.find('=');
  if (eq == std::string::npos) {
    throw InvalidArgument(fmt::format(
        "--set '{}': expected key=value with the value in TOML syntax (e.g. taylor_terms=4, "
        "taylor_terms=[3,4], precision=\"fp32\")",
        printable(override_text)));
  }
  const std::string key(trim(std::string_view(override_text).substr(0, eq)));
  const std::string value(trim(std::string_view(override_text).substr(eq + 1)));
  if (key.empty()) throw InvalidArgument(fmt::format("{}: missing key before '='", where));
  const auto index = key_index(key);
  if (!index) unknown_key(where, key);
  if (value.empty()) throw InvalidArgument(fmt::format("{}: missing value for '{}' after '='", where, key));
  toml::table parsed;
  try {
    const std::string document = "v = " + value;
    parsed = toml::parse(document, std::string_view("--set"));
  } catch (const toml::parse_error& error) {
    if (!bare_word(value)) {
      throw InvalidArgument(fmt::format("{}: value of '{}' is not valid TOML ({}); quote strings, e.g. "
                                        "precision=\"fp32\" or precision='[\"fp32\", \"fp16\"]'",
                                        where, key, printable(error.description())));
    }
    parsed = toml::table{{"v", value}};
  }
  // A value that is a whole TOML document fragment ("4\nx = 5") is a syntax error above or an extra key here.
  if (parsed.size() != 1 || !parsed.contains("v")) {
    throw InvalidArgument(fmt::format("{}: value of '{}' must be a single TOML value", where, key));
  }
  Entry e = read_node(*index, *parsed.get("v"), where, [&](const toml::node&) { return where; });
  e.order = order;
  e.from_override = true;
  return e;
}

}  // namespace

SweepConfig parse_sweep_config(const std::string& toml_text, const std::string& source_name,
                               const std::vector<std::string>& overrides) {
  toml::table table;
  try {
    table = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& error) {
    throw InvalidArgument(fmt::format("{}:{}: TOML syntax error: {} (column {})", source_name,
                                      error.source().begin.line, printable(error.description()),
                                      error.source().begin.column));
  }
  auto where_of = [&](const toml::node& n) { return fmt::format("{}:{}", source_name, n.source().begin.line); };

  // The file's keys in file order (toml++ tables iterate alphabetically).
  std::vector<std::pair<const toml::key*, const toml::node*>> file_keys;
  for (const auto& [key, node] : table) file_keys.emplace_back(&key, &node);
  std::sort(file_keys.begin(), file_keys.end(), [](const auto& a, const auto& b) {
    const auto& sa = a.first->source().begin;
    const auto& sb = b.first->source().begin;
    return std::pair(sa.line, sa.column) < std::pair(sb.line, sb.column);
  });

  std::vector<std::optional<Entry>> entries(kKeyCount);
  std::size_t order = 0;
  for (const auto& [key, node] : file_keys) {
    const std::string key_where = fmt::format("{}:{}", source_name, key->source().begin.line);
    const auto index = key_index(key->str());
    if (!index) unknown_key(key_where, key->str());
    Entry e = read_node(*index, *node, key_where, where_of);
    e.order = order++;
    validate(e, source_name);
    entries[*index] = std::move(e);
  }
  for (const std::string& override_text : overrides) {
    Entry e = parse_override(override_text, order);
    validate(e, source_name);
    if (entries[e.key]) e.order = entries[e.key]->order;  // keeps its place in the file order
    else ++order;
    entries[e.key] = std::move(e);
  }

  auto entry = [&](const char* name) -> const std::optional<Entry>& { return entries[*key_index(name)]; };

  // Checks across keys.
  if (const auto& hxd = entry("heads_times_d_key")) {
    if (const auto& heads = entry("heads")) {
      throw InvalidArgument(fmt::format("{}: 'heads' cannot be combined with 'heads_times_d_key' (set at {}), which "
                                        "sets heads = heads_times_d_key / d_key per point",
                                        heads->where, hxd->where));
    }
    std::vector<std::int64_t> d_keys{static_cast<std::int64_t>(PointParams{}.d_key)};
    if (const auto& dk = entry("d_key")) {
      d_keys.clear();
      for (const Scalar& s : dk->values) d_keys.push_back(std::get<std::int64_t>(s.value));
    }
    for (const Scalar& s : hxd->values) {
      const std::int64_t product = std::get<std::int64_t>(s.value);
      for (const std::int64_t d : d_keys) {
        if (product % d != 0) {
          throw InvalidArgument(fmt::format("{}: 'heads_times_d_key' = {} is not divisible by d_key = {} (heads = "
                                            "heads_times_d_key / d_key must be an integer)",
                                            s.where, product, d));
        }
      }
    }
  }
  {
    const auto& workload = entry("workload");
    const auto& input_file = entry("input_file");
    bool any_file = false;
    if (workload) {
      for (const Scalar& s : workload->values) {
        const std::string& w = std::get<std::string>(s.value);
        if (w != "file" && w != "fitted") continue;
        any_file = true;
        if (!input_file) {
          throw InvalidArgument(fmt::format("{}: 'workload' = \"{}\" needs 'input_file' (the Q, K, V file to {})",
                                            s.where, w, w == "file" ? "read" : "fit"));
        }
      }
    }
    if (input_file && !any_file) {
      throw InvalidArgument(fmt::format("{}: 'input_file' is set but no point has 'workload' = \"file\" or \"fitted\"",
                                        input_file->where));
    }
  }

  SweepConfig config;

  // Axes in file order.
  std::vector<const Entry*> by_order;
  for (const auto& e : entries) {
    if (e && e->list) by_order.push_back(&*e);
  }
  std::sort(by_order.begin(), by_order.end(), [](const Entry* a, const Entry* b) { return a->order < b->order; });
  for (const Entry* e : by_order) config.axes.emplace_back(kKeys[e->key].name);

  // Size of the grid.
  std::uint64_t total = 1;
  std::string shape;
  for (const auto& e : entries) {
    if (!e || !e->list) continue;
    shape += fmt::format("{}{} {}", shape.empty() ? "" : " x ", e->values.size(), kKeys[e->key].name);
    total = total > kMaxSweepPoints ? total : total * e->values.size();  // no overflow: stops growing past the limit
  }
  if (total > kMaxSweepPoints) {
    throw InvalidArgument(fmt::format("{}: the grid has more than {} points ({}); split the sweep", source_name,
                                      kMaxSweepPoints, shape));
  }

  // Normalised text.
  for (const auto& e : entries) {
    if (!e) continue;
    config.text += fmt::format("{} = ", kKeys[e->key].name);
    if (e->list) {
      config.text += "[";
      for (std::size_t i = 0; i < e->values.size(); ++i) {
        config.text += (i ? ", " : "") + toml_value(e->values[i].value);
      }
      config.text += "]\n";
    } else {
      config.text += toml_value(e->values[0].value) + "\n";
    }
  }

  // Expansion: an odometer over the axes in canonical order, the last one fastest.
  auto apply = [&](PointParams& p, std::size_t key, const Datum& v) {
    const std::string_view name = kKeys[key].name;
    auto u32 = [&] { return static_cast<std::uint32_t>(std::get<std::int64_t>(v)); };
    auto u64 = [&] { return static_cast<std::uint64_t>(std::get<std::int64_t>(v)); };
    auto str = [&] { return std::get<std::string>(v); };
    auto num = [&] { return std::get<double>(v); };
    if (name == "method") p.method = str();
    else if (name == "taylor_terms") p.taylor_terms = u32();
    else if (name == "kv_quant") p.kv_quant = str();
    else if (name == "d_key") p.d_key = u32();
    else if (name == "d_value") p.d_value = u32();
    else if (name == "heads") p.heads = u32();
    else if (name == "heads_times_d_key") p.heads = u32();  // divided by d_key after all keys are set
    else if (name == "n_tokens") p.n_tokens = u64();
    else if (name == "scale") p.scale = num();
    else if (name == "precision") p.precision = str();
    else if (name == "truth") p.truth = str();
    else if (name == "causal") p.causal = std::get<bool>(v);
    else if (name == "chunk") p.chunk = u32();
    else if (name == "placement") p.placement = str();
    else if (name == "workload") p.workload = str();
    else if (name == "dof") p.dof = num();
    else if (name == "needle_logit") p.needle_logit = num();
    else if (name == "input_file") p.input_file = entries[key]->resolved;
    else if (name == "seed") p.seed = u64();
    else if (name == "softmax_denominator") p.softmax_denominator = num();
    else if (name == "truth_rows") p.truth_rows = u64();
    else if (name == "modifiers") p.modifiers = str() == "none" ? "" : str();
    else if (name == "rope_theta") p.rope_theta = num();
    else if (name == "outlier_channels") p.outlier_channels = u32();
    else if (name == "outlier_magnitude") p.outlier_magnitude = num();
    else if (name == "key_bias_norm") p.key_bias_norm = num();
    else if (name == "sink_tokens") p.sink_tokens = u32();
    else if (name == "sink_logit") p.sink_logit = num();
    else if (name == "sink_alignment") p.sink_alignment = num();
    else if (name == "recipe") p.recipe = str();
    else if (name == "tile_rows") p.tile_rows = u32();
    else if (name == "tile_cols") p.tile_cols = u32();
    else if (name == "polynomial") p.polynomial = str();
    else if (name == "chebyshev_width") p.chebyshev_width = num();
    else if (name == "key_centring") p.key_centring = str();
    else if (name == "state_accumulation") p.state_accumulation = str();
    else if (name == "state_block") p.state_block = u32();
    // name, description: not point parameters
  };
  const bool has_d_value = entry("d_value").has_value();
  const bool has_hxd = entry("heads_times_d_key").has_value();

  PointParams base;
  std::vector<std::size_t> axes;  // key indices of list entries, canonical order
  for (std::size_t k = 0; k < kKeyCount; ++k) {
    if (!entries[k]) continue;
    if (entries[k]->list) axes.push_back(k);
    else apply(base, k, entries[k]->values[0].value);
  }
  config.points.reserve(total);
  std::vector<std::size_t> digit(axes.size(), 0);
  for (std::uint64_t id = 0; id < total; ++id) {
    PointParams p = base;
    for (std::size_t a = 0; a < axes.size(); ++a) apply(p, axes[a], entries[axes[a]]->values[digit[a]].value);
    if (!has_d_value) p.d_value = p.d_key;
    if (has_hxd) p.heads /= p.d_key;  // divisibility checked above
    // An axis the point's method does not read lists the point once, at its first value.
    bool listed = true;
    for (std::size_t a = 0; a < axes.size(); ++a) {
      if (digit[a] != 0 && !point_reads(p, kKeys[axes[a]].name)) listed = false;
    }
    if (!method_reads(p.method, "kv_quant")) p.kv_quant = "none";  // no KV cache is quantized
    if (!method_reads(p.method, "recipe")) p.recipe = "none";
    if (p.recipe != "none") p.precision = "fp32";  // a recipe sets every format itself
    if (!point_reads(p, "tile_rows")) p.tile_rows = 0;  // tiles a point does not read are 0
    if (!point_reads(p, "tile_cols")) p.tile_cols = 0;
    // Read-out polynomials: the methods without a series read none; a family
    // other than taylor lists only its points with P >= its minimum (3).
    if (!method_reads(p.method, "polynomial")) {
      p.polynomial = base.polynomial;
      p.chebyshev_width = base.chebyshev_width;
      p.key_centring = base.key_centring;
    } else if (p.taylor_terms < polynomial_min_terms(polynomial_family_by_name(p.polynomial))) {
      listed = false;
    }
    // State accumulation: sata only; a point not in the blocked mode has no
    // blocks and lists the default state_block.
    if (!method_reads(p.method, "state_accumulation")) p.state_accumulation = PointParams{}.state_accumulation;
    if (!point_reads(p, "state_block")) p.state_block = PointParams{}.state_block;
    if (listed) {
      p.point_id = config.points.size();
      config.points.push_back(std::move(p));
    }
    for (std::size_t a = axes.size(); a-- > 0;) {
      if (++digit[a] < entries[axes[a]]->values.size()) break;
      digit[a] = 0;
    }
  }
  return config;
}

SweepConfig load_sweep_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument(fmt::format("sweep file '{}': cannot open ({})", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InvalidArgument(fmt::format("sweep file '{}': cannot read ({})", path, std::strerror(errno)));
  return parse_sweep_config(text.str(), path, overrides);
}

}  // namespace satalab::cli
