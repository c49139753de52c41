#include "satalab/attention/options.hpp"

#include <fmt/format.h>

#include "satalab/error.hpp"

namespace satalab {

std::vector<std::string> method_names() { return {"sata", "taylor-quadratic", "exact", "exact-kvquant"}; }

Method method_by_name(std::string_view name) {
  if (name == "sata") return Method::sata;
  if (name == "taylor-quadratic") return Method::taylor_quadratic;
  if (name == "exact") return Method::exact;
  if (name == "exact-kvquant") return Method::exact_kvquant;
  throw InvalidArgument(fmt::format("unknown method '{}' (allowed: {})", name, fmt::join(method_names(), ", ")));
}

std::string_view method_name(Method method) {
  switch (method) {
    case Method::sata: return "sata";
    case Method::taylor_quadratic: return "taylor-quadratic";
    case Method::exact: return "exact";
    case Method::exact_kvquant: return "exact-kvquant";
  }
  return "?";
}

std::vector<std::string> state_accumulation_names() { return {"plain", "compensated", "blocked", "fp64"}; }

StateAccumulation state_accumulation_by_name(std::string_view name) {
  if (name == "plain") return StateAccumulation::plain;
  if (name == "compensated") return StateAccumulation::compensated;
  if (name == "blocked") return StateAccumulation::blocked;
  if (name == "fp64") return StateAccumulation::fp64;
  throw InvalidArgument(fmt::format("unknown state accumulation mode '{}' (allowed: {})", name,
                                    fmt::join(state_accumulation_names(), ", ")));
}

std::string_view state_accumulation_name(StateAccumulation mode) {
  switch (mode) {
    case StateAccumulation::plain: return "plain";
    case StateAccumulation::compensated: return "compensated";
    case StateAccumulation::blocked: return "blocked";
    case StateAccumulation::fp64: return "fp64";
  }
  return "?";
}

bool method_is_taylor(Method method) { return method == Method::sata || method == Method::taylor_quadratic; }

}  // namespace satalab
