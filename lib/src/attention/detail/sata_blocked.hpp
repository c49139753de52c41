#pragma once
// SATA in matrix products (internal). For a chunk of C tokens the readout of
// the state, Φ(Q_c)·S, and its update, S += Φ(K_c)ᵀ·[V_c 1], are two matrix
// products over the feature dimension; here they run block by block over the
// state (Eigen's GEMM on each block), with the features of each block built
// on the fly from their parents, so no [C × features] matrix is ever stored.
//
// It applies on the blocked path (detail::KernelPath): when the carrier is float or double and the policy's accumulate
// format is the carrier itself (fp64; fp32, fp16-acc32, bf16-acc32 and the
// fp8-acc32 policies on float): then the only roundings inside the products
// are the carrier's own, and every elementwise value (inputs, features,
// coefficients, scores, T_P weights) is still rounded as the policy says.
// Sums are blocked — over the tokens of a chunk inside a GEMM, over feature
// blocks in a fixed partition — so they differ from the token-by-token scalar
// path by rounding only, and never with the number of threads.
#include <cstddef>
#include <cstdint>

#include "satalab/attention/options.hpp"
#include "satalab/attention/sata_state.hpp"

namespace satalab::detail {

// Working memory of sata_blocked beyond the state and the inputs/outputs.
std::uint64_t sata_blocked_workspace_bytes(std::size_t d_key, std::size_t d_value, std::size_t taylor_terms,
                                           std::size_t chunk, std::size_t scalar_bytes);

// n tokens continuing from `state`. Causal: chunks of `chunk` tokens,
// Taylor-quadratic inside a chunk, the state across chunks. Non-causal: every
// query sees the state of all n keys (plus the tokens already in the state).
// Writes y [n × d_value] and z [n]; leaves all n tokens in the state.
// `parallel` spreads the feature blocks over the OpenMP threads.
template <class T>
void sata_blocked(SataState<T>& state, const T* q, const T* k, const T* v, std::size_t n, std::size_t chunk,
                  Mask mask, bool parallel, T* y, T* z);

}  // namespace satalab::detail
