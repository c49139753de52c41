// Kernel recipes (attention/recipe.hpp): the recipes as data, and the one
// engine that runs them, on the quadratic engine's blocked_rows
// (detail/quadratic_engine.hpp) with a weight rule (RecipeSoftmax) and tile
// products (RecipeProducts) that round where the recipe's steps say.
// GCC 12 reports false "may be used uninitialized" inside its own AVX-512
// intrinsics when Eigen's products are inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "satalab/attention/recipe.hpp"

#include <Eigen/Core>
#include <boost/random/mersenne_twister.hpp>
#include <boost/random/uniform_int_distribution.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "detail/quadratic_engine.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/rounding.hpp"

namespace satalab {
namespace {

constexpr std::pair<RecipeKind, std::string_view> kRecipeNames[] = {
    {RecipeKind::none, "none"},
    {RecipeKind::flash2_bf16, "flash2-bf16"},
    {RecipeKind::flash2_fp16, "flash2-fp16"},
    {RecipeKind::flash2_bf16_acc16, "flash2-bf16-acc16"},
    {RecipeKind::sdpa_math_bf16, "sdpa-math-bf16"},
    {RecipeKind::sdpa_math_fp16, "sdpa-math-fp16"},
    {RecipeKind::sdpa_math_fp8, "sdpa-math-fp8"},
    {RecipeKind::flash3_fp8, "flash3-fp8"},
    {RecipeKind::flash3_fp8_hadamard, "flash3-fp8-hadamard"},
    {RecipeKind::sage_int8, "sage-int8"},
};

const std::vector<RecipeSteps>& steps_table() {
  using S = RecipeStorage;
  using K = RecipeKind;
  static const std::vector<RecipeSteps> table = {
      // kind, name, q, k, v storage, cast, hadamard, smooth_k, materialised, score, round_scale, p, offset, out, plain
      {K::flash2_bf16, "flash2-bf16", S::cast, S::cast, S::cast, bf16(), false, false, false, fp32(), false, bf16(), 0,
       bf16(), K::sdpa_math_bf16},
      {K::flash2_fp16, "flash2-fp16", S::cast, S::cast, S::cast, fp16(), false, false, false, fp32(), false, fp16(), 0,
       fp16(), K::sdpa_math_fp16},
      {K::flash2_bf16_acc16, "flash2-bf16-acc16", S::cast, S::cast, S::cast, bf16(), false, false, false, bf16(),
       false, bf16(), 0, bf16(), K::sdpa_math_bf16, bf16()},
      {K::sdpa_math_bf16, "sdpa-math-bf16", S::cast, S::cast, S::cast, bf16(), false, false, true, bf16(), true, bf16(),
       0, bf16(), K::sdpa_math_bf16},
      {K::sdpa_math_fp16, "sdpa-math-fp16", S::cast, S::cast, S::cast, fp16(), false, false, true, fp16(), true, fp16(),
       0, fp16(), K::sdpa_math_fp16},
      {K::sdpa_math_fp8, "sdpa-math-fp8", S::e4m3_head, S::e4m3_head, S::e4m3_head, fp64(), false, false, true, fp16(),
       true, fp16(), 0, fp16(), K::sdpa_math_fp8},
      {K::flash3_fp8, "flash3-fp8", S::e4m3_block, S::e4m3_block, S::e4m3_block, fp64(), false, false, false, fp32(),
       false, e4m3(), 8, bf16(), K::sdpa_math_fp8},
      {K::flash3_fp8_hadamard, "flash3-fp8-hadamard", S::e4m3_block, S::e4m3_block, S::e4m3_block, fp64(), true, false,
       false, fp32(), false, e4m3(), 8, bf16(), K::sdpa_math_fp8},
      {K::sage_int8, "sage-int8", S::int8_block, S::int8_block, S::cast, fp16(), false, true, false, fp32(), false,
       fp16(), 0, fp16(), K::sdpa_math_fp16},
  };
  return table;
}

// One rounding into fp32 (the C++ conversion rounds to nearest even).
inline double f32(double x) { return static_cast<double>(static_cast<float>(x)); }

// x[0 .. n) rounded into `format` in place, one rounding each; `scratch` n floats.
void round_array(double* x, std::size_t n, const Format& format, std::vector<float>& scratch) {
  if (format == fp64()) return;
  if (format == fp32()) {
    for (std::size_t j = 0; j < n; ++j) x[j] = f32(x[j]);
    return;
  }
  scratch.resize(std::max(scratch.size(), n));
  round_to(x, scratch.data(), n, format);
  for (std::size_t j = 0; j < n; ++j) x[j] = static_cast<double>(scratch[j]);
}

// Q, K or V as the recipe stores it: codes (the stored values) and one scale
// per token (the scale of the token's block; empty: every scale 1).
struct Stored {
  HeadArrays codes;
  std::vector<double> scale;  // [heads * n_tokens]
  double at(std::size_t h, std::size_t i) const { return scale.empty() ? 1.0 : scale[h * codes.n_tokens + i]; }
};

// x·H·D/√d per token (float64): D random signs, H the Walsh-Hadamard matrix.
void hadamard_rotate(HeadArrays& x, const std::vector<double>& signs) {
  const std::size_t d = x.dim;
  const double norm = 1.0 / std::sqrt(static_cast<double>(d));
  for (std::size_t r = 0; r < x.heads * x.n_tokens; ++r) {
    double* row = x.data.data() + r * d;
    for (std::size_t t = 0; t < d; ++t) row[t] *= signs[t];
    for (std::size_t len = 1; len < d; len <<= 1) {
      for (std::size_t i = 0; i < d; i += 2 * len) {
        for (std::size_t j = i; j < i + len; ++j) {
          const double a = row[j], b = row[j + len];
          row[j] = a + b;
          row[j + len] = a - b;
        }
      }
    }
    for (std::size_t t = 0; t < d; ++t) row[t] *= norm;
  }
}

Stored store(HeadArrays x, RecipeStorage storage, const Format& cast, std::size_t block) {
  Stored out;
  std::vector<float> scratch;
  round_array(x.data.data(), x.data.size(), cast, scratch);
  if (storage == RecipeStorage::cast) {
    out.codes = std::move(x);
    return out;
  }
  const bool fp8 = storage != RecipeStorage::int8_block;
  const double limit = fp8 ? 448.0 : 127.0;
  const std::size_t n = x.n_tokens, d = x.dim;
  if (storage == RecipeStorage::e4m3_head) block = n;
  block = std::max<std::size_t>(1, std::min(block, n));
  out.scale.assign(x.heads * n, 1.0);
  for (std::size_t h = 0; h < x.heads; ++h) {
    for (std::size_t b0 = 0; b0 < n; b0 += block) {
      const std::size_t b1 = std::min(n, b0 + block);
      double amax = 0;
      for (std::size_t i = b0; i < b1; ++i) {
        for (std::size_t t = 0; t < d; ++t) amax = std::max(amax, std::fabs(x.row(h, i)[t]));
      }
      const double scale = amax > 0 ? f32(amax / limit) : 1.0;
      for (std::size_t i = b0; i < b1; ++i) {
        out.scale[h * n + i] = scale;
        double* row = x.row(h, i);
        for (std::size_t t = 0; t < d; ++t) {
          const double scaled = f32(row[t] / scale);  // the quantiser divides in fp32
          row[t] = fp8 ? round_to(scaled, e4m3_saturating())  // |scaled| <= 448 up to fp32 rounding
                       : std::clamp(std::round(scaled), -127.0, 127.0);  // half away from zero
        }
      }
    }
  }
  out.codes = std::move(x);
  return out;
}

struct RecipeInputs {
  Stored q, k, v;
};

RecipeInputs recipe_inputs(const QkvArrays& in, const RecipeSteps& steps, const KernelRecipe& recipe) {
  HeadArrays q = in.q, k = in.k;
  check_recipe_shape(recipe, q.dim);
  if (steps.hadamard) {
    const std::size_t d = q.dim;
    boost::random::mt19937_64 rng(recipe.seed ^ 0x4861646d61726431ULL);  // the seed, and a tag for this use
    boost::random::uniform_int_distribution<int> coin(0, 1);
    std::vector<double> signs(d);
    for (double& s : signs) s = coin(rng) ? 1.0 : -1.0;
    hadamard_rotate(q, signs);
    hadamard_rotate(k, signs);
  }
  if (steps.smooth_k) {
    // k - mean over tokens, in the cast format: the mean rounded once, the difference rounded once.
    std::vector<float> scratch;
    round_array(k.data.data(), k.data.size(), steps.qkv_cast, scratch);
    for (std::size_t h = 0; h < k.heads; ++h) {
      for (std::size_t t = 0; t < k.dim; ++t) {
        double sum = 0;
        for (std::size_t i = 0; i < k.n_tokens; ++i) sum += k.row(h, i)[t];
        const double mean = round_to(sum / static_cast<double>(k.n_tokens), steps.qkv_cast);
        for (std::size_t i = 0; i < k.n_tokens; ++i) k.row(h, i)[t] = round_to(k.row(h, i)[t] - mean, steps.qkv_cast);
      }
    }
  }
  RecipeInputs out;
  out.q = store(std::move(q), steps.q_storage, steps.qkv_cast, recipe.tile_rows);
  out.k = store(std::move(k), steps.k_storage, steps.qkv_cast, recipe.tile_cols);
  out.v = store(in.v, steps.v_storage, steps.qkv_cast, recipe.tile_cols);
  return out;
}

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;

// The softmax of a recipe on one row's block of scores (already rounded as
// the recipe stores S): online per key tile (flash) or over the whole row
// at once (materialised). Row.sum is the row's normaliser l in fp32.
struct RecipeSoftmax {
  struct Row {
    double max = -std::numeric_limits<double>::infinity();
    double sum = 0;
  };
  static constexpr bool kElementwise = false;
  std::size_t key_block;
  const RecipeSteps* steps;
  double c2;  // flash: fl32(log2(e) / c)

  template <class Rescale, class BlockMax>
  void blocked_weights(Row& row, double* s, std::size_t n, bool /*first*/, const detail::KernelContext<double>&,
                       Rescale&& rescale, BlockMax&& block_max, double* /*term*/, double* /*wide*/) const {
    if (n == 0) return;
    thread_local std::vector<float> scratch;
    const double m = block_max(s, n);
    if (steps->materialised) {
      // torch's softmax over the row in fp32: e = exp(s - max), their sum, e / sum.
      row.max = m;
      float sum = 0;
      for (std::size_t j = 0; j < n; ++j) {
        const float e = static_cast<float>(std::exp(static_cast<double>(static_cast<float>(s[j] - m))));
        s[j] = e;
        sum += e;
      }
      row.sum = sum;
      for (std::size_t j = 0; j < n; ++j) s[j] = static_cast<float>(s[j]) / sum;
      round_array(s, n, steps->p, scratch);
      return;
    }
    const float c2f = static_cast<float>(c2);
    const bool acc32 = steps->acc == fp32();
    if (m > row.max) {
      if (row.max != -std::numeric_limits<double>::infinity()) {
        const float x = static_cast<float>(row.max - m) * c2f;  // the difference of two fp32 values, in fp32
        const double f = f32(std::exp2(static_cast<double>(x)));
        rescale(f);
        row.sum = acc32 ? f32(row.sum * f) : round_to(f32(row.sum * f), steps->acc);
      }
      row.max = m;
    }
    const float mc = static_cast<float>(row.max) * c2f - static_cast<float>(steps->p_offset);
    // fp32: l takes every p in turn; a narrower accumulator takes the tile's fp32 sum once.
    float sum = acc32 ? static_cast<float>(row.sum) : 0.0f;
    for (std::size_t j = 0; j < n; ++j) {
      const float x = std::fma(static_cast<float>(s[j]), c2f, -mc);  // one rounding, as FA2's FFMA
      const float p = static_cast<float>(std::exp2(static_cast<double>(x)));
      sum += p;
      s[j] = p;
    }
    row.sum = acc32 ? sum : round_to(f32(row.sum + sum), steps->acc);
    round_array(s, n, steps->p, scratch);
  }
};

constexpr std::size_t kRecipeQueryTile = 128;

// The products of one tile of query rows × a key tile (blocked_rows): scores
// of the stored codes exact in double, then the recipe's roundings and
// scales; the accumulator in fp32 (online) or exact (materialised, rounded
// once at the end).
struct RecipeProducts {
  RecipeProducts(const RecipeSteps& steps_, const RecipeInputs& in_, std::size_t key_block, double scale_)
      : steps(steps_), in(in_), scale(scale_), scores_(kRecipeQueryTile, key_block),
        num(kRecipeQueryTile, in_.v.codes.dim), tile(kRecipeQueryTile, in_.v.codes.dim),
        gathered(kRecipeQueryTile, in_.q.codes.dim), positions_(kRecipeQueryTile) {}

  static constexpr bool kWholeBlock = false;

  void start(std::size_t h, const std::vector<std::size_t>& rows, std::size_t r0, std::size_t count, Mask mask_) {
    h_ = h;
    rows_ = count;
    mask = mask_;
    num.setZero();
    const std::size_t d = in.q.codes.dim;
    for (std::size_t a = 0; a < count; ++a) {
      positions_[a] = rows.empty() ? r0 + a : rows[r0 + a];
      std::copy(in.q.codes.row(h, positions_[a]), in.q.codes.row(h, positions_[a]) + d, gathered.row(a).data());
    }
  }
  std::size_t rows() const { return rows_; }
  std::size_t position(std::size_t a) const { return positions_[a]; }
  double max(const double* s, std::size_t n) const { return *std::max_element(s, s + n); }
  void scores(std::size_t j0, std::size_t cols) {
    const std::size_t d = in.k.codes.dim;
    const ConstRowMap qt(gathered.data(), rows_, d, Eigen::OuterStride<>(d));
    const ConstRowMap kt(in.k.codes.row(h_, j0), cols, d, Eigen::OuterStride<>(d));
    scores_.topLeftCorner(rows_, cols).noalias() = qt * kt.transpose();
    const bool scaled = !in.q.scale.empty();
    for (std::size_t a = 0; a < rows_; ++a) {
      double* s = score_row(a);
      if (scaled) {  // S = fl32(fl32(codes product) · fl32(s_q · s_k))
        const double sq = in.q.at(h_, positions_[a]);
        for (std::size_t j = 0; j < cols; ++j) s[j] = f32(f32(s[j]) * f32(sq * in.k.at(h_, j0 + j)));
      }
      round_array(s, cols, steps.score, scratch_);
      if (steps.round_scale) {
        for (std::size_t j = 0; j < cols; ++j) s[j] = f32(s[j] * scale);
        round_array(s, cols, steps.score, scratch_);
      }
    }
  }
  double* score_row(std::size_t a) { return scores_.data() + a * scores_.cols(); }
  std::size_t valid(std::size_t a, std::size_t j0, std::size_t cols) const {
    const std::size_t i = positions_[a];
    return mask == Mask::causal ? std::min(cols, i + 1 > j0 ? i + 1 - j0 : 0) : cols;
  }
  void rescale(std::size_t a, double f) {
    for (Eigen::Index t = 0; t < num.cols(); ++t) {
      num(static_cast<Eigen::Index>(a), t) = acc(f32(num(static_cast<Eigen::Index>(a), t) * f));
    }
  }
  // The accumulator's rounding (fp32: already done by f32).
  double acc(double x) const { return acc32_ ? x : round_to(x, steps.acc); }
  void add_weights(std::size_t, const double*, std::size_t) {}  // the rule keeps the row sums
  void accumulate(std::size_t j0, std::size_t cols) {
    const std::size_t dv = in.v.codes.dim;
    const ConstRowMap vt(in.v.codes.row(h_, j0), cols, dv, Eigen::OuterStride<>(dv));
    if (steps.materialised) {  // one tile of every key: exact, rounded once at the end
      num.topRows(rows_).noalias() += scores_.topLeftCorner(rows_, cols) * vt;
      return;
    }
    tile.topRows(rows_).noalias() = scores_.topLeftCorner(rows_, cols) * vt;
    const double sv = in.v.at(h_, j0);  // V blocks are key tiles: one scale per tile
    const bool scaled = !in.v.scale.empty();
    for (std::size_t a = 0; a < rows_; ++a) {
      for (std::size_t t = 0; t < dv; ++t) {
        const auto ai = static_cast<Eigen::Index>(a), ti = static_cast<Eigen::Index>(t);
        double product = f32(tile(ai, ti));
        if (scaled) product = f32(product * sv);
        num(ai, ti) = acc(f32(num(ai, ti) + product));
      }
    }
  }

  const RecipeSteps& steps;
  const RecipeInputs& in;
  double scale;  // materialised: the scale 1/c rounded into the score format
  RowMatrix scores_, num, tile, gathered;
  Mask mask = Mask::none;

 private:
  std::vector<std::size_t> positions_;
  std::vector<float> scratch_;
  std::size_t h_ = 0, rows_ = 0;
  bool acc32_ = steps.acc == fp32();
};

}  // namespace

std::vector<std::string> recipe_names() {
  std::vector<std::string> names;
  for (const auto& [kind, name] : kRecipeNames) names.emplace_back(name);
  return names;
}

std::string_view recipe_name(RecipeKind kind) {
  for (const auto& [k, name] : kRecipeNames) {
    if (k == kind) return name;
  }
  return "?";
}

KernelRecipe kernel_recipe(std::string_view name) {
  for (const auto& [kind, n] : kRecipeNames) {
    if (n == name) {
      KernelRecipe r;
      r.kind = kind;
      r.name = std::string(n);
      return r;
    }
  }
  throw InvalidArgument(fmt::format("unknown recipe '{}' (allowed: {})", name, fmt::join(recipe_names(), ", ")));
}

const RecipeSteps& recipe_steps(RecipeKind kind) {
  for (const RecipeSteps& s : steps_table()) {
    if (s.kind == kind) return s;
  }
  throw InvalidArgument("recipe 'none' has no steps (the precision policy rounds)");
}

void check_recipe_shape(const KernelRecipe& recipe, std::size_t d_key) {
  if (recipe.kind == RecipeKind::none || !recipe_steps(recipe.kind).hadamard) return;
  if (d_key == 0 || (d_key & (d_key - 1)) != 0) {
    throw InvalidArgument(fmt::format(
        "recipe '{}' needs d_key a power of two (the Walsh-Hadamard transform), got d_key {}", recipe.name, d_key));
  }
}

std::uint64_t recipe_kv_cache_bytes(const KernelRecipe& recipe, std::uint64_t heads, std::uint64_t n_tokens,
                                    std::uint64_t d_key, std::uint64_t d_value) {
  const RecipeSteps& steps = recipe_steps(recipe.kind);
  const auto part = [&](RecipeStorage storage, std::uint64_t d, std::uint64_t block) -> std::uint64_t {
    if (storage == RecipeStorage::cast) return n_tokens * d * static_cast<std::uint64_t>(storage_bits(steps.qkv_cast)) / 8;
    const std::uint64_t blocks =
        storage == RecipeStorage::e4m3_head ? 1 : (n_tokens + std::max<std::uint64_t>(block, 1) - 1) / std::max<std::uint64_t>(block, 1);
    return n_tokens * d + 4 * blocks;  // 8-bit codes and fp32 scales
  };
  std::uint64_t per_head = part(steps.k_storage, d_key, recipe.tile_cols) + part(steps.v_storage, d_value, recipe.tile_cols);
  if (steps.smooth_k) per_head += 4 * d_key;  // the key mean
  return heads * per_head;
}

AttentionResult<double> recipe_attention(const QkvArrays& inputs, const AttentionOptions& options) {
  const KernelRecipe& recipe = options.recipe;
  const RecipeSteps& steps = recipe_steps(recipe.kind);
  if (recipe.tile_rows < 1 || recipe.tile_cols < 1) {
    throw InvalidArgument(fmt::format("recipe tiles {} x {} are invalid (tile_rows and tile_cols must be >= 1)",
                                      recipe.tile_rows, recipe.tile_cols));
  }
  const RecipeInputs in = recipe_inputs(inputs, steps, recipe);
  const std::size_t heads = inputs.q.heads, n = inputs.q.n_tokens, dv = inputs.v.dim;
  const double c = options.softmax_denominator.value_or(std::sqrt(static_cast<double>(inputs.q.dim)));
  const std::vector<std::size_t>& rows = options.query_rows;
  const std::size_t R = rows.empty() ? n : rows.size();
  // The materialised path takes every key of a row as one tile.
  const std::size_t key_block = steps.materialised ? n : recipe.tile_cols;
  const RecipeSoftmax rule{key_block, &steps, f32(1.0 / (c * std::log(2.0)))};
  const double scale = steps.round_scale ? round_to(1.0 / c, steps.score) : 1.0;
  const PrecisionPolicy plain = precision_policy("fp64");
  // c = 1: blocked_rows' division of the scores is the identity; the products scale them.
  const detail::KernelContext<double> ctx(plain, inputs.q.dim, 1.0);
  AttentionResult<double> result;
  result.y = HeadTensor<double>(heads, R, dv);
  result.z.assign(heads * R, 0.0);
  const std::size_t tiles = (R + kRecipeQueryTile - 1) / kRecipeQueryTile;
  const auto items = static_cast<long>(heads * tiles);
  const double offset = std::ldexp(1.0, steps.p_offset);
#pragma omp parallel
  {
    RecipeProducts products(steps, in, key_block, scale);
    std::vector<RecipeSoftmax::Row> row_state(kRecipeQueryTile);
    std::vector<double> term(key_block), wide(key_block);
    std::vector<float> scratch;
#pragma omp for schedule(dynamic, 1)
    for (long item = 0; item < items; ++item) {
      const std::size_t h = static_cast<std::size_t>(item) / tiles;
      const std::size_t r0 = (static_cast<std::size_t>(item) % tiles) * kRecipeQueryTile;
      const std::size_t count = std::min(kRecipeQueryTile, R - r0);
      products.start(h, rows, r0, count, options.mask);
      const std::size_t end = options.mask == Mask::causal ? products.position(count - 1) + 1 : n;
      std::fill(row_state.begin(), row_state.end(), RecipeSoftmax::Row{});
      detail::blocked_rows(rule, ctx, products, end, row_state.data(), term.data(), wide.data());
      for (std::size_t a = 0; a < count; ++a) {
        double* y = result.y.row(h, r0 + a);
        const auto ai = static_cast<Eigen::Index>(a);
        if (steps.materialised) {
          const double sv = in.v.at(h, 0);  // per-head scale (or 1)
          for (std::size_t t = 0; t < dv; ++t) {
            const double acc = products.num(ai, static_cast<Eigen::Index>(t));
            y[t] = in.v.scale.empty() ? acc : f32(f32(acc) * sv);
          }
        } else {
          const double inv = f32(1.0 / row_state[a].sum);
          for (std::size_t t = 0; t < dv; ++t) y[t] = f32(products.num(ai, static_cast<Eigen::Index>(t)) * inv);
        }
        round_array(y, dv, steps.out, scratch);
        result.z[h * R + r0 + a] = row_state[a].sum / offset;
      }
    }
  }
  return result;
}

}  // namespace satalab
