#include "satalab/numeric/precision_policy.hpp"

#include <fmt/format.h>

#include "satalab/error.hpp"

namespace satalab {
namespace {

PrecisionPolicy make(std::string name, const Format& input, const Format& compute, const Format& accumulate) {
  PrecisionPolicy p{std::move(name), input, compute, accumulate, Carrier::f32, 0};
  // fp64 anywhere needs a double carrier; everything else fits float, whose 24
  // bits are >= 2p+2 for fp16 (p = 11), bf16 (8) and fp8 (4, 3), so +,-,*,/
  // done in float and rounded once into those formats are correctly rounded.
  for (const Format* f : {&input, &compute, &accumulate}) {
    if (*f == fp64()) p.carrier = Carrier::f64;
  }
  return p;
}

}  // namespace

std::vector<std::string> precision_names() {
  return {"fp64",       "fp32",       "bf16",       "fp16",          "fp16-acc32",
          "bf16-acc32", "e4m3-acc32", "e5m2-acc32", "e4m3sat-acc32", "mp<bits> (e.g. mp256)"};
}

PrecisionPolicy precision_policy(std::string_view name) {
  if (name == "fp64") return make("fp64", fp64(), fp64(), fp64());
  if (name == "fp32") return make("fp32", fp32(), fp32(), fp32());
  if (name == "bf16") return make("bf16", bf16(), bf16(), bf16());
  if (name == "fp16") return make("fp16", fp16(), fp16(), fp16());
  if (name == "fp16-acc32") return make("fp16-acc32", fp16(), fp16(), fp32());
  if (name == "bf16-acc32") return make("bf16-acc32", bf16(), bf16(), fp32());
  if (name == "e4m3-acc32") return make("e4m3-acc32", e4m3(), e4m3(), fp32());
  if (name == "e5m2-acc32") return make("e5m2-acc32", e5m2(), e5m2(), fp32());
  if (name == "e4m3sat-acc32") return make("e4m3sat-acc32", e4m3_saturating(), e4m3_saturating(), fp32());
  if (name.size() > 2 && name.substr(0, 2) == "mp" &&
      name.find_first_not_of("0123456789", 2) == std::string_view::npos) {
    const Format f = format_by_name(name);  // throws with the allowed range of bits
    return PrecisionPolicy{std::string(name), f, f, f, Carrier::mp, static_cast<unsigned>(f.precision_bits)};
  }
  throw InvalidArgument(
      fmt::format("unknown precision '{}' (allowed: {})", name, fmt::join(precision_names(), ", ")));
}

}  // namespace satalab
