#pragma once
// The quadratic engine (internal; docs/architecture.md, Kernels): attention of
// query rows to a run of keys, Σ_j w(s_ij) v_j and Σ_j w(s_ij), with the
// weight w given by a rule. It serves exact attention (OnlineSoftmax),
// Taylor-quadratic attention (TruncatedSeries), the exact decoder (one query
// row) and SATA's part inside a chunk (TruncatedSeries added to the state's
// readout). Two paths, chosen by the kernel context:
//  - scalar_row: operation by operation, every product and sum rounded as
//    the policy says, keys in token order;
//  - blocked_rows: a key block at a time, the scores and the sums as matrix
//    products (the Products policy says which: a tile of queries by GEMM, one
//    query by matrix-vector products), the elementwise steps (s = q·k / c,
//    the weights) rounded into the compute format as the scalar path rounds
//    them.
// A rule provides Row (its per-row state), key_block, and the weights of one
// key block of scores, in place, on each path (scalar_weights,
// blocked_weights), calling rescale(f) when the row's running sums must be
// multiplied by f before the block's weights are added.
#include <algorithm>
#include <cstddef>
#include <limits>

#include "kernel_ops.hpp"
#include "satalab/attention/detail/kernel_context.hpp"

namespace satalab::detail {

// Softmax, max-subtracted with an online rescaling (as in FlashAttention):
// w = exp(s - m), m the running max of the row's scores so far; a key block
// whose max exceeds m first rescales the row's sums by exp(m_old - m_new), so
// every exponent is <= 0. Blocks of key_block keys.
template <class T>
struct OnlineSoftmax {
  struct Row {
    T max = T(-std::numeric_limits<double>::infinity());
  };
  static constexpr bool kElementwise = false;
  std::size_t key_block;

  template <class Rescale>
  void new_max(Row& row, const T& block_max, bool first, const KernelContext<T>& ctx, Rescale&& rescale) const {
    if (block_max > row.max) {
      if (!first) rescale(exp_in_compute(ctx.round.compute(row.max - block_max), ctx.round.compute));
      row.max = block_max;
    }
  }

  template <class Rescale>
  void scalar_weights(Row& row, T* s, std::size_t n, bool first, const KernelContext<T>& ctx, Rescale&& rescale) const {
    T block_max = T(-std::numeric_limits<double>::infinity());
    for (std::size_t j = 0; j < n; ++j) {
      if (s[j] > block_max) block_max = s[j];
    }
    new_max(row, block_max, first, ctx, rescale);
    for (std::size_t j = 0; j < n; ++j) s[j] = exp_in_compute(ctx.round.compute(s[j] - row.max), ctx.round.compute);
  }

  // `block_max(s, n)`: the largest score (the products' own reduction);
  // `wide`: n doubles of scratch (exp_to_compute).
  template <class Rescale, class BlockMax>
  void blocked_weights(Row& row, T* s, std::size_t n, bool first, const KernelContext<T>& ctx, Rescale&& rescale,
                       BlockMax&& block_max, T* /*term*/, double* wide) const {
    if (n == 0) return;
    new_max(row, block_max(s, n), first, ctx, rescale);
    for (std::size_t j = 0; j < n; ++j) s[j] -= row.max;
    ctx.round.compute.apply(s, n);
    exp_to_compute(s, n, ctx.round.compute, wide);
  }
};

// The truncated exponential w = T_P(s) = Σ_{p<P} s^p / p! (Horner's rule,
// truncated_exp): no state across blocks, never a rescale.
template <class T>
struct TruncatedSeries {
  struct Row {};
  static constexpr bool kElementwise = true;  // each weight from its own score only
  std::size_t key_block;
  std::size_t taylor_terms;

  template <class Rescale>
  void scalar_weights(Row&, T* s, std::size_t n, bool, const KernelContext<T>& ctx, Rescale&&) const {
    for (std::size_t j = 0; j < n; ++j) s[j] = truncated_exp(s[j], taylor_terms, ctx.round);
  }

  // `term`: n values of scratch (truncated_exp_array).
  template <class Rescale, class BlockMax>
  void blocked_weights(Row&, T* s, std::size_t n, bool, const KernelContext<T>& ctx, Rescale&&, BlockMax&&, T* term,
                       double* /*wide*/) const {
    if (n > 0) truncated_exp_array(s, n, taylor_terms, ctx.round, term);
  }
};

// A read-out polynomial's weight w(s) = Σ_{p<P} m_p s^p / p! with the
// multipliers of the row's query (readout_polynomial.hpp; polynomial_weight):
// row.m where the caller set it (blocked_rows), else the rule's m (one rule
// per row on the scalar path). Never a rescale.
template <class T>
struct PolynomialSeries {
  struct Row {
    const T* m = nullptr;
  };
  static constexpr bool kElementwise = false;  // the multipliers differ from row to row
  std::size_t key_block;
  std::size_t taylor_terms;
  const T* m = nullptr;

  template <class Rescale>
  void scalar_weights(Row& row, T* s, std::size_t n, bool, const KernelContext<T>& ctx, Rescale&&) const {
    const T* mult = row.m != nullptr ? row.m : m;
    for (std::size_t j = 0; j < n; ++j) s[j] = polynomial_weight(s[j], mult, taylor_terms, ctx.round);
  }

  template <class Rescale, class BlockMax>
  void blocked_weights(Row& row, T* s, std::size_t n, bool first, const KernelContext<T>& ctx, Rescale&& rescale,
                       BlockMax&&, T*, double*) const {
    scalar_weights(row, s, n, first, ctx, rescale);
  }
};

// One query row q against keys [begin, end), operation by operation, added to
// num [d_value] and den (which may already hold sums: SATA's chunk continues
// its state's readout). `scores`: rule.key_block values of scratch.
template <class Rule, class T>
void scalar_row(const Rule& rule, const KernelContext<T>& ctx, const T* q, const T* keys, const T* values,
                std::size_t begin, std::size_t end, std::size_t d_key, std::size_t d_value, T* scores, T* num,
                T& den) {
  const PolicyRounders<T>& round = ctx.round;
  typename Rule::Row row;
  const std::size_t block = std::max<std::size_t>(1, rule.key_block);
  for (std::size_t start = begin; start < end; start += block) {
    const std::size_t count = std::min(end, start + block) - start;
    for (std::size_t j = 0; j < count; ++j) {
      scores[j] = scaled_score(q, keys + (start + j) * d_key, d_key, ctx.c, round);
    }
    rule.scalar_weights(row, scores, count, start == begin, ctx, [&](const T& f) {
      den = round.accumulate(den * f);
      for (std::size_t t = 0; t < d_value; ++t) num[t] = round.accumulate(num[t] * f);
    });
    for (std::size_t j = 0; j < count; ++j) {
      accumulate_weighted(scores[j], values + (start + j) * d_value, d_value, num, den, round);
    }
  }
}

// The output row y = num / den (rounded into the accumulate format) and z = den.
template <class T>
void finish_row(const KernelContext<T>& ctx, const T* num, const T& den, std::size_t d_value, T* y, T* z) {
  for (std::size_t t = 0; t < d_value; ++t) y[t] = ctx.round.accumulate(num[t] / den);
  *z = den;
}

// Query rows against keys [0, end) on the blocked path, a key block of
// rule.key_block keys at a time. The Products policy holds the rows' running
// sums and does the products:
//   rows()                    query rows in the tile
//   scores(j0, cols)          the raw products q·k of every row with keys j0 .. j0+cols
//   score_row(a)              row a's cols scores (contiguous)
//   valid(a, j0, cols)        how many of them row a attends to (a prefix; the mask)
//   max(s, n)                 the largest of n scores (its own reduction)
//   rescale(a, f)             row a's sums times f
//   add_weights(a, w, valid)  row a's weights, after they are computed (den as a row sum)
//   accumulate(j0, cols)      the sums += weights · values
//   kWholeBlock               rows' scores contiguous (row a at score_row(0) + a·cols):
//                             an elementwise rule then runs once over the whole
//                             block, masked keys included (zeroed after), in
//                             fewer, longer vector calls
// `rows` holds the rule's state of every row; `term` and `wide`: scratch of
// key_block values (rows·key_block for a whole block).
template <class Rule, class Products, class T>
void blocked_rows(const Rule& rule, const KernelContext<T>& ctx, Products& products, std::size_t end,
                  typename Rule::Row* rows, T* term, double* wide) {
  const std::size_t block = std::max<std::size_t>(1, rule.key_block);
  auto block_max = [&](const T* s, std::size_t n) { return products.max(s, n); };
  for (std::size_t j0 = 0; j0 < end; j0 += block) {
    const std::size_t cols = std::min(block, end - j0);
    products.scores(j0, cols);
    if constexpr (Rule::kElementwise && Products::kWholeBlock) {
      T* s = products.score_row(0);
      const std::size_t size = products.rows() * cols;
      divide_by(s, size, ctx.c);
      ctx.round.compute.apply(s, size);
      rule.blocked_weights(rows[0], s, size, j0 == 0, ctx, [](const T&) {}, block_max, term, wide);
    }
    for (std::size_t a = 0; a < products.rows(); ++a) {
      T* s = products.score_row(a);
      const std::size_t valid = products.valid(a, j0, cols);
      if constexpr (!(Rule::kElementwise && Products::kWholeBlock)) {
        divide_by(s, valid, ctx.c);
        ctx.round.compute.apply(s, valid);
        rule.blocked_weights(rows[a], s, valid, j0 == 0, ctx, [&](const T& f) { products.rescale(a, f); },
                             block_max, term, wide);
      }
      std::fill(s + valid, s + cols, T(0));
      products.add_weights(a, s, valid);
    }
    products.accumulate(j0, cols);
  }
}

}  // namespace satalab::detail
