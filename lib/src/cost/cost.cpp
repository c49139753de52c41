#include "satalab/cost/cost.hpp"

#include <fmt/format.h>

#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {

SataCost sata_cost(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t taylor_terms) {
  if (d_key < 1) throw InvalidArgument(fmt::format("d_key = {} is invalid (must be >= 1)", d_key));
  if (d_value < 1) throw InvalidArgument(fmt::format("d_value = {} is invalid (must be >= 1)", d_value));
  if (taylor_terms < 1) throw InvalidArgument(fmt::format("taylor_terms P = {} is invalid (must be >= 1)", taylor_terms));
  SataCost cost;
  cost.features = feature_count(d_key, taylor_terms);
  cost.state_elements = checked_mul(d_value + 1, cost.features, "SATA state elements");
  for (std::uint64_t p = 0; p < taylor_terms; ++p) {
    const std::uint64_t per_feature = checked_add(checked_mul(4, d_value, "FLOPs"), 2 * p + 4, "FLOPs");
    cost.flops_per_token = checked_add(
        cost.flops_per_token, checked_mul(per_feature, symmetric_basis_size(d_key, p), "FLOPs per token"),
        "FLOPs per token");
  }
  return cost;
}

long double sata_flops_closed_form(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t taylor_terms) {
  const long double dk = static_cast<long double>(d_key), dv = static_cast<long double>(d_value),
                    P = static_cast<long double>(taylor_terms);
  return (4 * dv + 2 * (P * dk + 1) / (dk + 1) + 2) * static_cast<long double>(feature_count(d_key, taylor_terms));
}

std::uint64_t kv_cache_elements(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t n_tokens) {
  return checked_mul(n_tokens, d_key + d_value, "KV cache elements");
}

std::uint64_t conventional_flops_per_token(std::uint64_t d_key, std::uint64_t d_value, std::uint64_t n_tokens) {
  return checked_mul(n_tokens, 2 * d_key + 2 * d_value + 3, "conventional FLOPs per token");
}

}  // namespace satalab
