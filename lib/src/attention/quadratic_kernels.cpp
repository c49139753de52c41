// Exact softmax attention and Taylor-quadratic attention: both O(n²) over
// (query, key) pairs, sharing the score and accumulation code. Where the
// policy accumulates in the carrier's own format (float/double), they run in
// tiles of queries × keys as matrix products (blocked path); otherwise pair
// by pair with every operation rounded.
// GCC 12 reports false "may be used uninitialized" inside its own AVX-512
// intrinsics when Eigen's products are inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <Eigen/Core>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernel_common.hpp"
#include "sata_blocked.hpp"
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

// One head of exact attention. Online softmax (as in FlashAttention): per query,
// keys in blocks; a block whose max exceeds the running max m rescales the
// running sums by exp(m_old - m_new), so every exponent is <= 0.
// The query positions to compute: rows[r] for r < count (all n when rows is empty).
struct QueryRows {
  const std::vector<std::size_t>& rows;
  std::size_t n;
  std::size_t count() const { return rows.empty() ? n : rows.size(); }
  std::size_t operator[](std::size_t r) const { return rows.empty() ? r : rows[r]; }
};

// Rows are independent: the rows r_begin .. r_end of the query list.
template <class T>
void exact_head(const T* q, const T* k, const T* v, QueryRows positions, std::size_t r_begin, std::size_t r_end,
                std::size_t d_key, std::size_t d_value, Mask mask, std::size_t block, const T& c,
                const PolicyRounders<T>& round, T* y, T* z) {
  const std::size_t n = positions.n;
  std::vector<T> scores(block), num(d_value);
  for (std::size_t r = r_begin; r < r_end; ++r) {
    const std::size_t i = positions[r];
    const std::size_t end = mask == Mask::causal ? i + 1 : n;
    const T* qi = q + i * d_key;
    T running_max = T(-std::numeric_limits<double>::infinity());
    T den = T(0);
    std::fill(num.begin(), num.end(), T(0));
    for (std::size_t start = 0; start < end; start += block) {
      const std::size_t stop = std::min(end, start + block);
      T block_max = T(-std::numeric_limits<double>::infinity());
      for (std::size_t j = start; j < stop; ++j) {
        scores[j - start] = detail::scaled_score(qi, k + j * d_key, d_key, c, round);
        if (scores[j - start] > block_max) block_max = scores[j - start];
      }
      if (block_max > running_max) {
        if (start > 0) {
          const T rescale = detail::exp_in_compute(round.compute(running_max - block_max), round.compute);
          den = round.accumulate(den * rescale);
          for (auto& x : num) x = round.accumulate(x * rescale);
        }
        running_max = block_max;
      }
      for (std::size_t j = start; j < stop; ++j) {
        const T weight = detail::exp_in_compute(round.compute(scores[j - start] - running_max), round.compute);
        detail::accumulate_weighted(weight, v + j * d_value, d_value, num.data(), den, round);
      }
    }
    for (std::size_t t = 0; t < d_value; ++t) y[r * d_value + t] = round.accumulate(num[t] / den);
    z[r] = den;
  }
}

template <class T>
void taylor_quadratic_head(const T* q, const T* k, const T* v, QueryRows positions, std::size_t r_begin,
                           std::size_t r_end, std::size_t d_key, std::size_t d_value, Mask mask,
                           std::size_t taylor_terms, const T& c, const PolicyRounders<T>& round, T* y, T* z) {
  const std::size_t n = positions.n;
  std::vector<T> num(d_value);
  for (std::size_t r = r_begin; r < r_end; ++r) {
    const std::size_t i = positions[r];
    const std::size_t end = mask == Mask::causal ? i + 1 : n;
    const T* qi = q + i * d_key;
    T den = T(0);
    std::fill(num.begin(), num.end(), T(0));
    for (std::size_t j = 0; j < end; ++j) {
      const T s = detail::scaled_score(qi, k + j * d_key, d_key, c, round);
      detail::accumulate_weighted(detail::truncated_exp(s, taylor_terms, round), v + j * d_value, d_value,
                                  num.data(), den, round);
    }
    for (std::size_t t = 0; t < d_value; ++t) y[r * d_value + t] = round.accumulate(num[t] / den);
    z[r] = den;
  }
}

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

// Both quadratic methods as tiles of kQueryTile queries × key_block keys: the
// scores Q·Kᵀ and the sums W·V are matrix products, the normalisers W·1 row sums (sums in the carrier,
// which is the accumulate format here); the elementwise steps — s = q·k/c,
// the weights exp(s - m) with the online rescaling of exact attention, or
// T_P(s) — are rounded into the compute format exactly as the scalar path
// rounds them. Tiles of (head, query block) run in parallel; each row's sums
// run in the same order whatever the number of threads.
template <class T>
void quadratic_blocked(bool exact, const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                       QueryRows positions, Mask mask, std::size_t taylor_terms, std::size_t key_block, const T& c,
                       const PolicyRounders<T>& round, AttentionResult<T>& result) {
  const std::size_t n = q.n_tokens, d = q.dim, dv = v.dim, R = positions.count();
  const std::size_t Bq = kQueryTile, Bk = std::max<std::size_t>(1, key_block);
  const std::size_t tiles = (R + Bq - 1) / Bq;
  const auto items = static_cast<long>(q.heads * tiles);
#pragma omp parallel
  {
    RowMatrix<T> scores(Bq, Bk), num(Bq, dv), gathered(Bq, d);
    std::vector<T> running_max(Bq), den(Bq), term(Bk);
    std::vector<double> wide(Bk);
#pragma omp for schedule(dynamic, 1)
    for (long item = 0; item < items; ++item) {
      // Rows r0 .. r0+rows of the query list, at positions positions[r].
      const std::size_t h = static_cast<std::size_t>(item) / tiles, r0 = (static_cast<std::size_t>(item) % tiles) * Bq;
      const std::size_t rows = std::min(Bq, R - r0);
      const std::size_t end = mask == Mask::causal ? positions[r0 + rows - 1] + 1 : n;
      num.setZero();
      std::fill(den.begin(), den.end(), T(0));
      std::fill(running_max.begin(), running_max.end(), T(-std::numeric_limits<double>::infinity()));
      const T* q_rows = q.row(h, r0);
      if (!positions.rows.empty()) {
        for (std::size_t a = 0; a < rows; ++a) std::copy(q.row(h, positions[r0 + a]), q.row(h, positions[r0 + a]) + d, gathered.row(a).data());
        q_rows = gathered.data();
      }
      const ConstRowMap<T> qt(q_rows, rows, d, Eigen::OuterStride<>(d));
      for (std::size_t j0 = 0; j0 < end; j0 += Bk) {
        const std::size_t cols = std::min(Bk, end - j0);
        const ConstRowMap<T> kt(k.row(h, j0), cols, d, Eigen::OuterStride<>(d));
        scores.topLeftCorner(rows, cols).noalias() = qt * kt.transpose();
        for (std::size_t a = 0; a < rows; ++a) {
          T* s = scores.data() + a * Bk;
          // Causal: keys j <= i only (at least key 0 is in the first block).
          const std::size_t i = positions[r0 + a];
          const std::size_t valid = mask == Mask::causal ? std::min(cols, i + 1 > j0 ? i + 1 - j0 : 0) : cols;
          detail::divide_by(s, valid, c);
          round.compute.apply(s, valid);
          if (exact && valid > 0) {
            const T block_max = *std::max_element(s, s + valid);
            if (block_max > running_max[a]) {
              if (j0 > 0) {
                const T rescale = detail::exp_in_compute(round.compute(running_max[a] - block_max), round.compute);
                for (std::size_t t = 0; t < dv; ++t) num(a, t) = round.accumulate(num(a, t) * rescale);
                den[a] = round.accumulate(den[a] * rescale);
              }
              running_max[a] = block_max;
            }
            for (std::size_t j = 0; j < valid; ++j) s[j] -= running_max[a];
            round.compute.apply(s, valid);
            detail::exp_to_compute(s, valid, round.compute, wide.data());
          } else if (valid > 0) {
            detail::truncated_exp_array(s, valid, taylor_terms, round, term.data());
          }
          std::fill(s + valid, s + cols, T(0));
          den[a] += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(s, static_cast<Eigen::Index>(valid)).sum();
        }
        const ConstRowMap<T> vt(v.row(h, j0), cols, dv, Eigen::OuterStride<>(dv));
        num.topRows(rows).noalias() += scores.topLeftCorner(rows, cols) * vt;
      }
      for (std::size_t a = 0; a < rows; ++a) {
        T* y = result.y.row(h, r0 + a);
        for (std::size_t t = 0; t < dv; ++t) y[t] = round.accumulate(num(a, t) / den[a]);
        result.z[h * R + r0 + a] = den[a];
      }
    }
  }
}

template <class T>
AttentionResult<T> allocate_result(const HeadTensor<T>& q, const HeadTensor<T>& v, QueryRows positions) {
  AttentionResult<T> result;
  result.y = HeadTensor<T>(q.heads, positions.count(), v.dim);
  result.z.assign(q.heads * positions.count(), T(0));
  return result;
}

}  // namespace

template <class T>
AttentionResult<T> exact_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                   const PrecisionPolicy& policy, const AttentionOptions& options) {
  check_attention_shapes(q, k, v, options);
  const PolicyRounders<T> round(policy);
  const T c = detail::softmax_denominator<T>(options.softmax_denominator, q.dim, round);
  const std::size_t block = std::max<std::size_t>(1, options.key_block);
  const QueryRows positions{options.query_rows, q.n_tokens};
  AttentionResult<T> result = allocate_result(q, v, positions);
  if constexpr (!std::is_same_v<T, mp_t>) {
    if (detail::blocked_path_applies<T>(policy)) {
      quadratic_blocked(true, q, k, v, positions, options.mask, 0, block, c, round, result);
      return result;
    }
  }
  // Operation by operation (multiprecision, or sums rounded below the
  // carrier): parallel over (head, block of query rows); each row is computed
  // alone, so the results do not depend on the blocks or threads.
  const std::size_t R = positions.count(), tiles = (R + kScalarRowTile - 1) / kScalarRowTile;
  const auto items = static_cast<long>(q.heads * tiles);
#pragma omp parallel for schedule(dynamic, 1)
  for (long item = 0; item < items; ++item) {
    const std::size_t h = static_cast<std::size_t>(item) / tiles, r0 = (static_cast<std::size_t>(item) % tiles) * kScalarRowTile;
    exact_head(q.head(h), k.head(h), v.head(h), positions, r0, std::min(R, r0 + kScalarRowTile), q.dim, v.dim,
               options.mask, block, c, round, result.y.head(h), result.z.data() + h * R);
  }
  return result;
}

template <class T>
AttentionResult<T> taylor_quadratic_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                              const PrecisionPolicy& policy, const AttentionOptions& options) {
  check_attention_shapes(q, k, v, options);
  const PolicyRounders<T> round(policy);
  const T c = detail::softmax_denominator<T>(options.softmax_denominator, q.dim, round);
  const QueryRows positions{options.query_rows, q.n_tokens};
  AttentionResult<T> result = allocate_result(q, v, positions);
  if constexpr (!std::is_same_v<T, mp_t>) {
    if (detail::blocked_path_applies<T>(policy)) {
      quadratic_blocked(false, q, k, v, positions, options.mask, options.taylor_terms, options.key_block, c, round, result);
      return result;
    }
  }
  const std::size_t R = positions.count(), tiles = (R + kScalarRowTile - 1) / kScalarRowTile;
  const auto items = static_cast<long>(q.heads * tiles);
#pragma omp parallel for schedule(dynamic, 1)
  for (long item = 0; item < items; ++item) {
    const std::size_t h = static_cast<std::size_t>(item) / tiles, r0 = (static_cast<std::size_t>(item) % tiles) * kScalarRowTile;
    taylor_quadratic_head(q.head(h), k.head(h), v.head(h), positions, r0, std::min(R, r0 + kScalarRowTile), q.dim,
                          v.dim, options.mask, options.taylor_terms, c, round, result.y.head(h),
                          result.z.data() + h * R);
  }
  return result;
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
