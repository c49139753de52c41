#include "satalab/cost/cost.hpp"

#include <fmt/format.h>

#include <string_view>

#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {

SataCost sata_cost(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t taylor_terms) {
  if (d_key < 1) throw InvalidArgument(fmt::format("d_key = {} is invalid (must be >= 1)", d_key));
  if (d_value < 1) throw InvalidArgument(fmt::format("d_value = {} is invalid (must be >= 1)", d_value));
  if (taylor_terms < 1) throw InvalidArgument(fmt::format("taylor_terms P = {} is invalid (must be >= 1)", taylor_terms));
  SataCost cost;
  cost.features = feature_count(d_key, taylor_terms);  // N = C(d_k+P-1, P-1)
  cost.state_elements = checked_mul(checked_add(d_value, 1, "SATA state elements"), cost.features,
                                    "SATA state elements");
  // Σ_{p<P} (4 d_v + 2p + 4)·m_p = (4 d_v + 4)·N + 2·Σ_{p<P} p·m_p, and
  // Σ_{p<P} p·m_p = d_k·C(d_k+P-1, P-2) (p·C(d+p-1, p) = d·C(d+p-1, p-1),
  // then the hockey-stick identity). Closed form: no loop over P, which for
  // d_k = 1 could run for billions of terms before overflowing.
  const std::uint64_t per_feature =
      checked_add(checked_mul(4, d_value, "FLOPs per token"), 4, "FLOPs per token");
  cost.flops_per_token = checked_mul(per_feature, cost.features, "FLOPs per token");
  if (taylor_terms >= 2) {
    const std::uint64_t degree_sum =
        checked_mul(d_key, binomial(checked_add(d_key, taylor_terms - 1, "FLOPs per token"), taylor_terms - 2),
                    "FLOPs per token");
    cost.flops_per_token =
        checked_add(cost.flops_per_token, checked_mul(2, degree_sum, "FLOPs per token"), "FLOPs per token");
  }
  return cost;
}

long double sata_flops_closed_form(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t taylor_terms) {
  const long double dk = static_cast<long double>(d_key), dv = static_cast<long double>(d_value),
                    P = static_cast<long double>(taylor_terms);
  return (4 * dv + 2 * (P * dk + 1) / (dk + 1) + 2) * static_cast<long double>(feature_count(d_key, taylor_terms));
}

std::uint64_t kv_cache_elements(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t n_tokens) {
  return checked_mul(n_tokens, checked_add(d_key, d_value, "KV cache elements"), "KV cache elements");
}

std::uint64_t conventional_flops_per_token(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t n_tokens) {
  constexpr std::string_view what = "conventional FLOPs per token";
  const std::uint64_t per_key = checked_add(checked_add(checked_mul(2, d_key, what), checked_mul(2, d_value, what), what),
                                            3, what);
  return checked_mul(n_tokens, per_key, what);
}

}  // namespace satalab
