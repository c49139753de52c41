#pragma once
// Cost formulas of Heinsen & Kozachkov (2026), §2.6-2.7 (docs/architecture.md §2), exact in
// 64-bit integers with overflow checks.
#include <cstdint>

namespace satalab {

struct SataCost {
  std::uint64_t features = 0;         // Σ_{p<P} m_p = C(d_key+P-1, P-1)
  std::uint64_t state_elements = 0;   // (d_value+1)·C(d_key+P-1, P-1), eq. (13)
  std::uint64_t flops_per_token = 0;  // Σ_{p<P} (4 d_value + 2p + 4)·m_p, eq. (14)-(15)
};

// Throws InvalidArgument for d < 1 or P < 1, ResourceLimit on overflow.
SataCost sata_cost(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t taylor_terms);
// The closed form of eq. (15), [4 d_v + 2(P d_k + 1)/(d_k + 1) + 2]·C(d_k+P-1, P-1),
// evaluated in long double (for checking the integer sum).
long double sata_flops_closed_form(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t taylor_terms);

// KV cache of conventional attention at context n: n·(d_key + d_value) elements.
std::uint64_t kv_cache_elements(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t n_tokens);
// Conventional forward FLOPs per token at context n: n·(2 d_key + 2 d_value + 3) (paper footnote 3).
std::uint64_t conventional_flops_per_token(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t n_tokens);

}  // namespace satalab
