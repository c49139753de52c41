#include "detail/sata_blocked.hpp"

// GCC 12 reports false "may be used uninitialized" inside its own AVX-512
// intrinsics when Eigen's products are inlined here (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <Eigen/Core>
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "detail/features.hpp"
#include "detail/quadratic_engine.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab::detail {
namespace {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using RowMap = Eigen::Map<RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using ConstRowMap = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// Fixed number of partitions of the feature blocks: each keeps its own partial
// readout, summed in partition order, so results do not depend on threads.
constexpr std::size_t kPartitions = 16;
// State rows per block: about 256 KiB of state, so a block stays in L2 while
// both products use it.
constexpr std::size_t kBlockBytes = 256 * 1024;
constexpr std::size_t kMinBlockRows = 16, kMaxBlockRows = 2048;

// Degrees below `top` are "low": their raw monomials are kept for the tokens
// of a chunk. Degree `top` = P-1 is built block by block from its parents.
struct Block {
  std::size_t begin, end;                // state rows
  bool top;                              // rows of degree P-1, built from parents
  std::size_t parent_begin, parent_end;  // their parents (global feature indices)
};

struct Plan {
  std::size_t low_terms = 0, low_size = 0, top_degree = 0, block_rows = 0;
  std::vector<Block> blocks;
  std::vector<std::size_t> partition;  // partition g owns blocks [partition[g], partition[g+1])
};

std::size_t block_rows_for(std::size_t width, std::size_t scalar_bytes) {
  return std::clamp<std::size_t>(kBlockBytes / (width * scalar_bytes), kMinBlockRows, kMaxBlockRows);
}

Plan make_plan(const SymmetricBasis& basis, std::size_t width, std::size_t scalar_bytes) {
  Plan plan;
  const std::size_t P = basis.taylor_terms();
  plan.low_terms = P == 1 ? 1 : P - 1;
  plan.low_size = basis.offset(plan.low_terms);
  plan.top_degree = P - 1;
  plan.block_rows = block_rows_for(width, scalar_bytes);
  const std::size_t B = plan.block_rows;
  for (std::size_t r = 0; r < plan.low_size; r += B) plan.blocks.push_back({r, std::min(plan.low_size, r + B), false, 0, 0});
  if (P >= 2) {
    const std::size_t t = plan.top_degree, d = basis.dim();
    std::size_t row = basis.offset(t), parent = basis.offset(t - 1);
    while (parent < basis.offset(t)) {
      Block block{row, row, true, parent, parent};
      while (parent < basis.offset(t) && block.end - block.begin < B) {
        block.end += d - (t == 1 ? 0 : basis.last_index(parent));
        ++parent;
      }
      block.parent_end = parent;
      row = block.end;
      plan.blocks.push_back(block);
    }
  }
  // Contiguous runs of blocks with about equal rows.
  const std::size_t G = std::min(kPartitions, plan.blocks.size());
  const std::size_t total = basis.total_size();
  plan.partition.assign(1, 0);
  std::size_t rows = 0;
  for (std::size_t b = 0; b < plan.blocks.size(); ++b) {
    rows += plan.blocks[b].end - plan.blocks[b].begin;
    const std::size_t g = plan.partition.size();  // next boundary
    if (g < G && rows * G >= g * total) plan.partition.push_back(b + 1);
  }
  if (plan.partition.back() != plan.blocks.size()) plan.partition.push_back(plan.blocks.size());
  return plan;
}

// Features (coefficients applied) of one block for `count` tokens into
// buf [(block rows) × count], token-minor: a feature's values for all tokens
// are one contiguous run, built as one vectorised product of two runs (its
// parent's monomial and one input coordinate, both also token-minor: lowT
// [low_size × count], xT [d × count]). The whole buffer is then rounded into
// the compute format at once, as the scalar path rounds each product.
template <class T>
void block_features(const SymmetricBasis& basis, const Plan& plan, const Block& block, const T* lowT, const T* xT,
                    std::size_t count, const std::vector<T>& coefficient, bool coefficient_is_one,
                    const Rounder<T>& round, T* buf) {
  const std::size_t rows = block.end - block.begin, size = count * rows;
  const T* coef = coefficient.data() + block.begin;
  if (!block.top) {
    const T* source = lowT + block.begin * count;  // already rounded monomials
    if (coefficient_is_one) {
      std::copy(source, source + size, buf);
    } else {
      for (std::size_t r = 0; r < rows; ++r) {
        const T w = coef[r];
        for (std::size_t t = 0; t < count; ++t) buf[r * count + t] = source[r * count + t] * w;
      }
      round.apply(buf, size);
    }
    return;
  }
  children_token_minor(basis, plan.top_degree, block.parent_begin, block.parent_end, lowT, xT, count, buf);
  round.apply(buf, size);
  if (!coefficient_is_one) {
    for (std::size_t r = 0; r < rows; ++r) {
      const T w = coef[r];
      for (std::size_t t = 0; t < count; ++t) buf[r * count + t] *= w;
    }
    round.apply(buf, size);
  }
}

// The products of SATA's part inside a chunk (blocked_rows with one key
// block, the chunk's own keys): the scores Q_c·K_cᵀ, row a attending keys
// j <= a, and the weights times [V_c 1] added to the rows' readout of the
// state (normalisers in the last column, so no separate row sum).
template <class T>
struct ChunkProducts {
  std::size_t d;
  const RowMatrix<T>& v1;
  RowMatrix<T>& num;
  RowMatrix<T> weights;
  const T* q = nullptr;
  const T* k = nullptr;
  std::size_t count = 0;

  void start(const T* q_, const T* k_, std::size_t count_) {
    q = q_;
    k = k_;
    count = count_;
  }
  // The whole count × count square at once (vectorised, few calls), then the
  // keys j > i set to zero: every kept weight gets the same operations.
  static constexpr bool kWholeBlock = true;
  std::size_t rows() const { return count; }
  T max(const T* s, std::size_t n) const { return *std::max_element(s, s + n); }  // not used by the series
  void scores(std::size_t, std::size_t) {
    const ConstRowMap<T> qc(q, count, d, Eigen::OuterStride<>(d));
    const ConstRowMap<T> kc(k, count, d, Eigen::OuterStride<>(d));
    weights.noalias() = qc * kc.transpose();
  }
  T* score_row(std::size_t a) { return weights.data() + a * count; }
  std::size_t valid(std::size_t a, std::size_t, std::size_t) const { return a + 1; }
  void rescale(std::size_t, const T&) {}  // the truncated series never rescales
  void add_weights(std::size_t, const T*, std::size_t) {}
  void accumulate(std::size_t, std::size_t) { num.topRows(count).noalias() += weights * v1.topRows(count); }
};

// Read-out polynomials: the query features of one block [rows × count]
// (token-minor) times their multipliers, feature r of degree p of token t by
// mult[t·P + p], then rounded into the compute format.
template <class T>
void apply_multipliers(const SymmetricBasis& basis, const Block& block, std::size_t count, const T* mult,
                       const Rounder<T>& round, T* buf) {
  const std::size_t P = basis.taylor_terms();
  std::size_t p = 0;
  while (basis.offset(p + 1) <= block.begin) ++p;
  for (std::size_t r = block.begin; r < block.end; ++r) {
    while (basis.offset(p + 1) <= r) ++p;
    T* row = buf + (r - block.begin) * count;
    for (std::size_t t = 0; t < count; ++t) row[t] *= mult[t * P + p];
  }
  round.apply(buf, (block.end - block.begin) * count);
}

}  // namespace

std::uint64_t sata_blocked_workspace_bytes(std::size_t d_key, std::size_t d_value, std::size_t taylor_terms,
                                           std::size_t chunk, std::size_t scalar_bytes) {
  const std::uint64_t low = feature_count(d_key, taylor_terms == 1 ? 1 : taylor_terms - 1);
  const std::uint64_t width = d_value + 1;
  const std::uint64_t block = block_rows_for(width, scalar_bytes) + d_key;  // a top block may overshoot by < d
  std::uint64_t elements = checked_mul(2 * chunk, low, "SATA low-degree features");  // queries and keys
  elements = checked_add(elements, kPartitions * chunk * (2 * block + width), "SATA block buffers");
  elements = checked_add(elements, chunk * (2 * width + 4 * d_key + 3 * chunk + 1), "SATA chunk buffers");
  return checked_mul(elements, scalar_bytes, "SATA workspace");
}

template <class T>
void sata_blocked(SataState<T>& state, const T* q, const T* k, const T* v, std::size_t n, std::size_t chunk,
                  Mask mask, bool parallel, T* y, T* z) {
  const SymmetricBasis& basis = state.basis();
  const FeatureCoefficients<T>& coef = state.coefficients();
  const KernelContext<T>& ctx = state.context();
  const PolicyRounders<T>& round = ctx.round;
  const std::size_t d = basis.dim(), dv = state.d_value(), W = dv + 1, P = basis.taylor_terms();
  chunk = std::max<std::size_t>(1, std::min(chunk, n));
  const Plan plan = make_plan(basis, W, sizeof(T));
  const SymmetricBasis low_basis(d, plan.low_terms);
  const std::size_t G = plan.partition.size() - 1;
  std::size_t max_rows = 0;
  for (const Block& b : plan.blocks) max_rows = std::max(max_rows, b.end - b.begin);

  std::vector<T> low_qT(chunk * plan.low_size), low_kT(chunk * plan.low_size), x_qT(chunk * d), x_kT(chunk * d);
  std::vector<T> buf_q(G * chunk * max_rows), buf_k(G * chunk * max_rows), partial(G * chunk * W);
  RowMatrix<T> v1(chunk, W), num(chunk, W);
  ChunkProducts<T> in_chunk{d, v1, num, {}};
  std::vector<typename TruncatedSeries<T>::Row> rows(chunk);
  std::vector<T> term(chunk * chunk);
  T* S = state.mutable_values().data();
  // Read-out polynomials: each query's multipliers (P per token of a chunk).
  const bool taylor = state.polynomial().is_taylor();
  const std::size_t tokens_before = state.tokens();
  std::vector<T> mult(taylor ? 0 : chunk * P);
  std::vector<typename PolynomialSeries<T>::Row> poly_rows(taylor ? 0 : chunk);
  // The multipliers of the queries [start, start+count), from the state as
  // it is (its tokens: `in_state`) and, causal, the chunk's own keys j <= i.
  auto multipliers = [&](std::size_t start, std::size_t count, std::size_t in_state, bool causal) {
    for (std::size_t t = 0; t < count; ++t) {
      const T* qi = q + (start + t) * d;
      LogitMoments<T> moments = state.state_moments(qi);
      moments.count = T(static_cast<double>(in_state));
      if (causal) {
        for (std::size_t j = start; j <= start + t; ++j) {
          const T s = scaled_score(qi, k + j * d, d, ctx.c, round);
          moments.sum += s;
          moments.sum_sq += s * s;
        }
        moments.count += T(static_cast<double>(t + 1));
      }
      readout_multipliers(state.polynomial(), P, moments, round.compute, mult.data() + t * P);
      poly_rows[t].m = mult.data() + t * P;
    }
  };

  // One pass over the state for tokens [start, start+count): the readout of
  // their queries from the state as it was, then the update with their keys.
  auto pass = [&](std::size_t start, std::size_t count, bool readout, bool update) {
    if (readout) input_monomials(low_basis, coef, q + start * d, count, round.compute, x_qT.data(), low_qT.data());
    if (update) {
      input_monomials(low_basis, coef, k + start * d, count, round.compute, x_kT.data(), low_kT.data());
      for (std::size_t t = 0; t < count; ++t) {
        for (std::size_t c = 0; c < dv; ++c) v1(t, c) = v[(start + t) * dv + c];
        v1(t, dv) = T(1);
      }
    }
    const auto partitions = static_cast<long>(G);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (long g = 0; g < partitions; ++g) {
      T* bq = buf_q.data() + g * chunk * max_rows;
      T* bk = buf_k.data() + g * chunk * max_rows;
      RowMap<T> acc(partial.data() + g * chunk * W, count, W, Eigen::OuterStride<>(W));
      if (readout) acc.setZero();
      for (std::size_t b = plan.partition[g]; b < plan.partition[g + 1]; ++b) {
        const Block& block = plan.blocks[b];
        const auto rows = static_cast<Eigen::Index>(block.end - block.begin);
        RowMap<T> Sb(S + block.begin * W, rows, W, Eigen::OuterStride<>(W));
        if (readout) {
          block_features(basis, plan, block, low_qT.data(), x_qT.data(), count, coef.query, coef.query_is_one,
                         round.compute, bq);
          if (!taylor) apply_multipliers(basis, block, count, mult.data(), round.compute, bq);
          const ConstRowMap<T> phi_t(bq, rows, count, Eigen::OuterStride<>(count));  // Φᵀ
          acc.noalias() += phi_t.transpose() * Sb;
        }
        if (update) {
          block_features(basis, plan, block, low_kT.data(), x_kT.data(), count, coef.key, coef.key_is_one,
                         round.compute, bk);
          const ConstRowMap<T> phi_t(bk, rows, count, Eigen::OuterStride<>(count));  // Φᵀ
          Sb.noalias() += phi_t * v1.topRows(count);
        }
      }
    }
    if (readout) {
      num.topRows(count).setZero();
      for (std::size_t g = 0; g < G; ++g) {
        num.topRows(count) += ConstRowMap<T>(partial.data() + g * chunk * W, count, W, Eigen::OuterStride<>(W));
      }
    }
  };

  auto write_rows = [&](std::size_t start, std::size_t count) {
    for (std::size_t t = 0; t < count; ++t) {
      const T den = num(t, dv);
      for (std::size_t c = 0; c < dv; ++c) y[(start + t) * dv + c] = round.accumulate(num(t, c) / den);
      z[start + t] = den;
    }
  };

  if (mask == Mask::none) {
    for (std::size_t start = 0; start < n; start += chunk) pass(start, std::min(chunk, n - start), false, true);
    for (std::size_t start = 0; start < n; start += chunk) {
      const std::size_t count = std::min(chunk, n - start);
      if (!taylor) multipliers(start, count, tokens_before + n, false);
      pass(start, count, true, false);
      write_rows(start, count);
    }
  } else {
    const TruncatedSeries<T> rule{chunk, P};
    for (std::size_t start = 0; start < n; start += chunk) {
      const std::size_t count = std::min(chunk, n - start);
      if (!taylor) multipliers(start, count, tokens_before + start, true);
      pass(start, count, true, true);
      // Inside the chunk: Taylor-quadratic, T_P(q_i·k_j / c) for j <= i,
      // added to the state's readout (the engine, one key block); with a
      // read-out polynomial, its weight with each row's multipliers.
      in_chunk.start(q + start * d, k + start * d, count);
      if (taylor) {
        blocked_rows(rule, ctx, in_chunk, count, rows.data(), term.data(), static_cast<double*>(nullptr));
      } else {
        const PolynomialSeries<T> series{chunk, P, nullptr};
        blocked_rows(series, ctx, in_chunk, count, poly_rows.data(), term.data(), static_cast<double*>(nullptr));
      }
      write_rows(start, count);
    }
  }
  state.add_tokens(n);
}

template void sata_blocked(SataState<float>&, const float*, const float*, const float*, std::size_t, std::size_t,
                           Mask, bool, float*, float*);
template void sata_blocked(SataState<double>&, const double*, const double*, const double*, std::size_t,
                           std::size_t, Mask, bool, double*, double*);

}  // namespace satalab::detail
