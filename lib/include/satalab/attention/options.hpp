#pragma once
// Options shared by the attention kernels.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "satalab/attention/quantized_kv.hpp"
#include "satalab/attention/readout_polynomial.hpp"
#include "satalab/basis/feature_map.hpp"

namespace satalab {

enum class Mask { causal, none };

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

  // Read-out polynomials (readout_polynomial.hpp): the weight SATA and
  // Taylor-quadratic attention give a logit, Σ_p m_p(q) s^p / p! with per-query
  // multipliers of the family; taylor (m_p = 1) is the paper's T_P.
  ReadoutPolynomial polynomial;
  // Key centring of sata and taylor-quadratic (readout_polynomial.hpp): the
  // first-chunk mean of each head's keys subtracted before the state is built.
  KeyCentring key_centring = KeyCentring::none;

  static constexpr std::size_t kDefaultChunk = 64;
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
