// Exact softmax attention and Taylor-quadratic attention: both O(n²) over
// (query, key) pairs, one engine with two weight rules
// (detail/quadratic_engine.hpp). Where the policy accumulates in the
// carrier's own format (float/double), in tiles of queries × keys as matrix
// products (blocked path); otherwise pair by pair with every operation rounded.
// GCC 12 reports false "may be used uninitialized" inside its own AVX-512
// intrinsics when Eigen's products are inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <Eigen/Core>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "detail/quadratic_engine.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {

template <class T>
void check_attention_shapes(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                            const AttentionOptions& options) {
  if (q.heads == 0 || q.n_tokens == 0 || q.dim == 0 || v.dim == 0) {
    throw InvalidArgument(fmt::format("empty input: q is [{}, {}, {}], v is [{}, {}, {}] (all sizes must be >= 1)",
                                      q.heads, q.n_tokens, q.dim, v.heads, v.n_tokens, v.dim));
  }
  if (k.heads != q.heads || v.heads != q.heads || k.n_tokens != q.n_tokens || v.n_tokens != q.n_tokens) {
    throw InvalidArgument(fmt::format("shapes disagree: q [{}, {}, {}], k [{}, {}, {}], v [{}, {}, {}] (heads and "
                                      "n_tokens must be equal)",
                                      q.heads, q.n_tokens, q.dim, k.heads, k.n_tokens, k.dim, v.heads, v.n_tokens,
                                      v.dim));
  }
  if (k.dim != q.dim) {
    throw InvalidArgument(fmt::format("d_key of q ({}) and k ({}) differ", q.dim, k.dim));
  }
  if (options.taylor_terms < 1) {
    throw InvalidArgument(fmt::format("taylor_terms P = {} is invalid (must be >= 1)", options.taylor_terms));
  }
  for (std::size_t r = 0; r < options.query_rows.size(); ++r) {
    const std::size_t i = options.query_rows[r];
    if (i >= q.n_tokens || (r > 0 && i <= options.query_rows[r - 1])) {
      throw InvalidArgument(fmt::format("query row {} (entry {}) is invalid: query rows must be strictly increasing "
                                        "positions below n_tokens = {}",
                                        i, r, q.n_tokens));
    }
  }
}

namespace {

// The query positions to compute: rows[r] for r < count (all n when rows is empty).
struct QueryRows {
  const std::vector<std::size_t>& rows;
  std::size_t n;
  std::size_t count() const { return rows.empty() ? n : rows.size(); }
  std::size_t operator[](std::size_t r) const { return rows.empty() ? r : rows[r]; }
};

// Query rows per work item of the operation-by-operation path.
constexpr std::size_t kScalarRowTile = 16;

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstRowMap = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// Queries per tile of the blocked path. Each key block is packed for the
// matrix products once per query tile, so larger tiles pack less (64 queries:
// a fifth of exact fp64 attention's time at d = 64 went to packing).
constexpr std::size_t kQueryTile = 128;

// The products of the blocked path for a tile of up to kQueryTile queries ×
// key_block keys of one head (blocked_rows): the scores Q·Kᵀ and the sums
// W·V are matrix products, the normalisers W·1 row sums (sums in the carrier,
// which is the accumulate format here). Causal: row a attends keys j <= its
// position (at least key 0 is in the first block).
template <class T>
struct TileProducts {
  TileProducts(std::size_t key_block, std::size_t d, std::size_t dv)
      : scores_(kQueryTile, key_block), num(kQueryTile, dv), gathered(kQueryTile, d), den(kQueryTile) {}

  // Starts the tile of query rows r0 .. r0+count of head h.
  void start(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v, std::size_t h,
             const QueryRows& positions, std::size_t r0, std::size_t count, Mask mask_) {
    k_ = &k;
    v_ = &v;
    h_ = h;
    positions_ = &positions;
    r0_ = r0;
    rows_ = count;
    mask = mask_;
    num.setZero();
    std::fill(den.begin(), den.end(), T(0));
    const std::size_t d = q.dim;
    const T* q_rows = q.row(h, r0);
    if (!positions.rows.empty()) {
      for (std::size_t a = 0; a < count; ++a) {
        std::copy(q.row(h, positions[r0 + a]), q.row(h, positions[r0 + a]) + d, gathered.row(a).data());
      }
      q_rows = gathered.data();
    }
    q_ = q_rows;
  }

  static constexpr bool kWholeBlock = false;
  std::size_t rows() const { return rows_; }
  T max(const T* s, std::size_t n) const { return *std::max_element(s, s + n); }
  void scores(std::size_t j0, std::size_t cols) {
    const std::size_t d = k_->dim;
    const ConstRowMap<T> qt(q_, rows_, d, Eigen::OuterStride<>(d));
    const ConstRowMap<T> kt(k_->row(h_, j0), cols, d, Eigen::OuterStride<>(d));
    scores_.topLeftCorner(rows_, cols).noalias() = qt * kt.transpose();
  }
  T* score_row(std::size_t a) { return scores_.data() + a * scores_.cols(); }
  std::size_t valid(std::size_t a, std::size_t j0, std::size_t cols) const {
    const std::size_t i = (*positions_)[r0_ + a];
    return mask == Mask::causal ? std::min(cols, i + 1 > j0 ? i + 1 - j0 : 0) : cols;
  }
  void rescale(std::size_t a, const T& f) {
    for (Eigen::Index t = 0; t < num.cols(); ++t) num(static_cast<Eigen::Index>(a), t) *= f;
    den[a] *= f;
  }
  void add_weights(std::size_t a, const T* w, std::size_t valid) {
    den[a] += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(w, static_cast<Eigen::Index>(valid)).sum();
  }
  void accumulate(std::size_t j0, std::size_t cols) {
    const std::size_t dv = v_->dim;
    const ConstRowMap<T> vt(v_->row(h_, j0), cols, dv, Eigen::OuterStride<>(dv));
    num.topRows(rows_).noalias() += scores_.topLeftCorner(rows_, cols) * vt;
  }

  RowMatrix<T> scores_, num, gathered;
  std::vector<T> den;
  Mask mask = Mask::none;

 private:
  const HeadTensor<T>* k_ = nullptr;
  const HeadTensor<T>* v_ = nullptr;
  const QueryRows* positions_ = nullptr;
  const T* q_ = nullptr;
  std::size_t h_ = 0, r0_ = 0, rows_ = 0;
};

// Read-out polynomials (the Taylor-quadratic oracle of SATA with a read-out
// polynomial): the multipliers of query q against keys [0, end), from its
// logit moments computed directly from the scores s_j = q·k_j / c (rounded
// as the policy rounds every score), independently of any state.
template <class T>
void oracle_multipliers(const ReadoutPolynomial& polynomial, std::size_t P, const detail::KernelContext<T>& ctx,
                        const T* q, const T* keys, std::size_t end, std::size_t d, T* m) {
  LogitMoments<T> moments;
  for (std::size_t j = 0; j < end; ++j) {
    const T s = detail::scaled_score(q, keys + j * d, d, ctx.c, ctx.round);
    moments.sum += s;
    moments.sum_sq += s * s;
  }
  moments.count = T(static_cast<double>(end));
  readout_multipliers(polynomial, P, moments, ctx.round.compute, m);
}

template <class Rule, class T>
constexpr bool kPolynomialRule = std::is_same_v<Rule, detail::PolynomialSeries<T>>;

// P of a polynomial rule, 0 for the others.
template <class Rule>
std::size_t rule_terms(const Rule& rule) {
  if constexpr (requires { rule.taylor_terms; }) {
    return rule.taylor_terms;
  } else {
    return 0;
  }
}

template <class T>
AttentionResult<T> allocate_result(const HeadTensor<T>& q, const HeadTensor<T>& v, QueryRows positions) {
  AttentionResult<T> result;
  result.y = HeadTensor<T>(q.heads, positions.count(), v.dim);
  result.z.assign(q.heads * positions.count(), T(0));
  return result;
}

// Both quadratic methods: the rule gives the weights (the engine,
// quadratic_engine.hpp). Blocked path: tiles of (head, kQueryTile queries) in
// parallel. Operation by operation (multiprecision, or sums rounded below the
// carrier): (head, kScalarRowTile queries) in parallel, each row computed
// alone. Either way each row's sums run in the same order whatever the
// number of threads.
template <class Rule, class T>
AttentionResult<T> quadratic_attention(const Rule& rule, const HeadTensor<T>& q, const HeadTensor<T>& k,
                                       const HeadTensor<T>& v, const PrecisionPolicy& policy,
                                       const AttentionOptions& options) {
  check_attention_shapes(q, k, v, options);
  const detail::CarrierPrecisionScope scope(policy);
  const detail::KernelContext<T> ctx(policy, q.dim, options.softmax_denominator);
  const QueryRows positions{options.query_rows, q.n_tokens};
  AttentionResult<T> result = allocate_result(q, v, positions);
  const std::size_t n = q.n_tokens, d = q.dim, dv = v.dim, R = positions.count();
  const std::size_t block = std::max<std::size_t>(1, rule.key_block);
  const std::size_t row_tile = ctx.blocked() ? kQueryTile : kScalarRowTile;
  const std::size_t tiles = (R + row_tile - 1) / row_tile;
  const auto items = static_cast<long>(q.heads * tiles);
  if constexpr (!std::is_same_v<T, mp_t>) {
    if (ctx.blocked()) {
#pragma omp parallel
      {
        TileProducts<T> products(block, d, dv);
        std::vector<typename Rule::Row> rows(kQueryTile);
        std::vector<T> term(block);
        std::vector<double> wide(block);
        std::vector<T> mult(kPolynomialRule<Rule, T> ? kQueryTile * rule_terms(rule) : 0);
#pragma omp for schedule(dynamic, 1)
        for (long item = 0; item < items; ++item) {
          const std::size_t h = static_cast<std::size_t>(item) / tiles;
          const std::size_t r0 = (static_cast<std::size_t>(item) % tiles) * kQueryTile;
          const std::size_t count = std::min(kQueryTile, R - r0);
          const std::size_t end = options.mask == Mask::causal ? positions[r0 + count - 1] + 1 : n;
          products.start(q, k, v, h, positions, r0, count, options.mask);
          std::fill(rows.begin(), rows.end(), typename Rule::Row{});
          if constexpr (kPolynomialRule<Rule, T>) {
            const std::size_t P = rule.taylor_terms;
            for (std::size_t a = 0; a < count; ++a) {
              const std::size_t i = positions[r0 + a];
              oracle_multipliers(options.polynomial, P, ctx, q.row(h, i), k.head(h),
                                 options.mask == Mask::causal ? i + 1 : n, d, mult.data() + a * P);
              rows[a].m = mult.data() + a * P;
            }
          }
          detail::blocked_rows(rule, ctx, products, end, rows.data(), term.data(), wide.data());
          for (std::size_t a = 0; a < count; ++a) {
            detail::finish_row(ctx, products.num.row(static_cast<Eigen::Index>(a)).data(), products.den[a], dv,
                               result.y.row(h, r0 + a), &result.z[h * R + r0 + a]);
          }
        }
      }
      return result;
    }
  }
#pragma omp parallel
  {
    std::vector<T> scores(block), num(dv);
    std::vector<T> mult(kPolynomialRule<Rule, T> ? rule_terms(rule) : 0);
#pragma omp for schedule(dynamic, 1)
    for (long item = 0; item < items; ++item) {
      const std::size_t h = static_cast<std::size_t>(item) / tiles;
      const std::size_t r0 = (static_cast<std::size_t>(item) % tiles) * kScalarRowTile;
      for (std::size_t r = r0; r < std::min(R, r0 + kScalarRowTile); ++r) {
        const std::size_t i = positions[r];
        std::fill(num.begin(), num.end(), T(0));
        T den = T(0);
        const std::size_t end = options.mask == Mask::causal ? i + 1 : n;
        if constexpr (kPolynomialRule<Rule, T>) {
          oracle_multipliers(options.polynomial, rule.taylor_terms, ctx, q.row(h, i), k.head(h), end, d, mult.data());
          const detail::PolynomialSeries<T> row_rule{rule.key_block, rule.taylor_terms, mult.data()};
          detail::scalar_row(row_rule, ctx, q.row(h, i), k.head(h), v.head(h), 0, end, d, dv, scores.data(),
                             num.data(), den);
        } else {
          detail::scalar_row(rule, ctx, q.row(h, i), k.head(h), v.head(h), 0, end, d, dv, scores.data(), num.data(),
                             den);
        }
        detail::finish_row(ctx, num.data(), den, dv, result.y.row(h, r), &result.z[h * R + r]);
      }
    }
  }
  return result;
}

}  // namespace

template <class T>
AttentionResult<T> exact_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                   const PrecisionPolicy& policy, const AttentionOptions& options) {
  return quadratic_attention(detail::OnlineSoftmax<T>{options.key_block}, q, k, v, policy, options);
}

template <class T>
AttentionResult<T> taylor_quadratic_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                              const PrecisionPolicy& policy, const AttentionOptions& options) {
  if (options.key_centring == KeyCentring::first_chunk) {
    // The keys SATA's state is built from (sata_attention), centred the same way.
    check_attention_shapes(q, k, v, options);
    const detail::CarrierPrecisionScope scope(policy);
    AttentionOptions rest = options;
    rest.key_centring = KeyCentring::none;
    const PolicyRounders<T> round(policy);
    return taylor_quadratic_attention(q, centred_keys(k, options.effective_chunk(), round.input), v, policy, rest);
  }
  if (!options.polynomial.is_taylor()) {
    validate_readout_polynomial(options.polynomial, options.taylor_terms);
    return quadratic_attention(detail::PolynomialSeries<T>{options.key_block, options.taylor_terms, nullptr}, q, k, v,
                               policy, options);
  }
  return quadratic_attention(detail::TruncatedSeries<T>{options.key_block, options.taylor_terms}, q, k, v, policy,
                             options);
}

#define SATALAB_INSTANTIATE_QUADRATIC(T)                                                                     \
  template void check_attention_shapes(const HeadTensor<T>&, const HeadTensor<T>&, const HeadTensor<T>&,    \
                                       const AttentionOptions&);                                            \
  template AttentionResult<T> exact_attention(const HeadTensor<T>&, const HeadTensor<T>&, const HeadTensor<T>&, \
                                              const PrecisionPolicy&, const AttentionOptions&);             \
  template AttentionResult<T> taylor_quadratic_attention(const HeadTensor<T>&, const HeadTensor<T>&,        \
                                                         const HeadTensor<T>&, const PrecisionPolicy&,      \
                                                         const AttentionOptions&);
SATALAB_INSTANTIATE_QUADRATIC(float)
SATALAB_INSTANTIATE_QUADRATIC(double)
SATALAB_INSTANTIATE_QUADRATIC(mp_t)
#undef SATALAB_INSTANTIATE_QUADRATIC

}  // namespace satalab
