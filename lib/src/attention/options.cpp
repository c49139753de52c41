#include "satalab/attention/options.hpp"

#include <fmt/format.h>

#include "satalab/error.hpp"

namespace satalab {

std::vector<std::string> method_names() { return {"sata", "taylor-quadratic", "exact"}; }

Method method_by_name(std::string_view name) {
  if (name == "sata") return Method::sata;
  if (name == "taylor-quadratic") return Method::taylor_quadratic;
  if (name == "exact") return Method::exact;
  throw InvalidArgument(fmt::format("unknown method '{}' (allowed: {})", name, fmt::join(method_names(), ", ")));
}

std::string_view method_name(Method method) {
  switch (method) {
    case Method::sata: return "sata";
    case Method::taylor_quadratic: return "taylor-quadratic";
    case Method::exact: return "exact";
  }
  return "?";
}

}  // namespace satalab
