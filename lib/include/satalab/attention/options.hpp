#pragma once
// Options shared by the attention kernels.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

  // Exact and Taylor-quadratic attention only: compute just these query
  // positions (strictly increasing, < n_tokens), each still against all the
  // keys it sees; outputs then have query_rows.size() rows per head. Empty:
  // every position. (SATA needs every position and refuses a subset.)
  std::vector<std::size_t> query_rows;
  static constexpr std::size_t kDefaultChunk = 64;
  std::size_t effective_chunk() const { return chunk == 0 ? kDefaultChunk : chunk; }
};

enum class Method { exact, taylor_quadratic, sata };
Method method_by_name(std::string_view name);  // InvalidArgument lists the names
std::string_view method_name(Method method);
std::vector<std::string> method_names();

}  // namespace satalab
