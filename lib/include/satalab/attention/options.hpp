#pragma once
// Options shared by the attention kernels.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "satalab/attention/quantized_kv.hpp"
#include "satalab/attention/recipe.hpp"
#include "satalab/attention/readout_polynomial.hpp"
#include "satalab/basis/feature_map.hpp"

namespace satalab {

enum class Mask { causal, none };

// How SATA's state sums its tokens (docs/architecture.md §9, SATA's state):
//  - plain: S += φ(k)·[v 1] in the accumulate format (the decoder as it was);
//  - compensated: Kahan–Neumaier in the accumulate format, a compensation
//    array next to the running sum; the read-out sees sum + compensation;
//  - blocked: a block of `state_block` tokens is summed in a scratch state,
//    which is then added to the state (pairwise: two levels); the read-out
//    sees state + the open block;
//  - fp64: the sums kept in double (each product still rounded into the
//    accumulate format), the read-out reads them rounded once into the
//    accumulate format. For an fp64 policy it is plain.
// Every mode is the one state update of SataState (append/step); plain is
// bit for bit what the decoder computed before the modes existed.
enum class StateAccumulation { plain, compensated, blocked, fp64 };
StateAccumulation state_accumulation_by_name(std::string_view name);  // InvalidArgument lists the names
std::string_view state_accumulation_name(StateAccumulation mode);
std::vector<std::string> state_accumulation_names();

struct AttentionOptions {
  std::size_t taylor_terms = 4;  // P: degrees 0..P-1 (Taylor-quadratic and SATA)
  Mask mask = Mask::causal;
  // Tokens per chunk of SATA's causal prefill: Taylor-quadratic inside a
  // chunk, the state across chunks. 0 picks kDefaultChunk.
  std::size_t chunk = 0;
  // c in s = q·k / c; unset means sqrt(d_key), computed in the carrier.
  std::optional<double> softmax_denominator;
  CoefficientPlacement placement = CoefficientPlacement::paper;
  // Keys per block of exact attention's online (max-subtracted) softmax.
  std::size_t key_block = 256;
  // Method::exact_kvquant: how the KV cache stores K and V (quantized_kv.hpp).
  KvQuantScheme kv_quant;

  // Exact and Taylor-quadratic attention only: compute just these query
  // positions (strictly increasing, < n_tokens), each still against all the
  // keys it sees; outputs then have query_rows.size() rows per head. Empty:
  // every position. (SATA needs every position and refuses a subset.)
  std::vector<std::size_t> query_rows;

  // Long-context drift (state accumulation modes): how the state sums its
  // tokens, and the tokens per block of StateAccumulation::blocked (>= 1).
  StateAccumulation state_accumulation = StateAccumulation::plain;
  std::size_t state_block = 1024;
  // Read-out polynomials (readout_polynomial.hpp): the weight SATA and
  // Taylor-quadratic attention give a logit, Σ_p m_p(q) s^p / p! with per-query
  // multipliers of the family; taylor (m_p = 1) is the paper's T_P.
  ReadoutPolynomial polynomial;
  // KV-cache schemes of issue 18: the workload's RoPE base theta, which
  // kv_quant -prerope needs to rotate the keys back (quantized_kv.hpp); unset
  // when the workload has no rope modifier.
  std::optional<double> kv_rope_theta;
  // Key centring of sata and taylor-quadratic (readout_polynomial.hpp): the
  // first-chunk mean of each head's keys subtracted before the state is built.
  KeyCentring key_centring = KeyCentring::none;

  static constexpr std::size_t kDefaultChunk = 64;

  // Kernel recipes (attention/recipe.hpp): exact attention rounded as a real
  // kernel rounds it; kind none: the precision policy's rounding.
  KernelRecipe recipe;
  std::size_t effective_chunk() const { return chunk == 0 ? kDefaultChunk : chunk; }
};

// exact_kvquant: exact attention over K and V as options.kv_quant stores them.
enum class Method { exact, taylor_quadratic, sata, exact_kvquant };
Method method_by_name(std::string_view name);  // InvalidArgument lists the names
std::string_view method_name(Method method);
std::vector<std::string> method_names();
// True for the methods that evaluate the truncated series (P applies): sata, taylor-quadratic.
bool method_is_taylor(Method method);

}  // namespace satalab
