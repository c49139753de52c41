// compute_attention's entry into the carrier: float64 inputs are rounded into
// the policy's input format once, never through the carrier's own format.
#include <gtest/gtest.h>

#include <cmath>

#include "satalab/attention/compute.hpp"

namespace satalab {
namespace {

TEST(ComputeAttention, InputsAreRoundedIntoTheInputFormatInOneStep) {
  // v = 1 + 2^-11 + 2^-40 lies just above the fp16 midpoint between 1 and
  // 1 + 2^-10, so its nearest fp16 value is 1 + 2^-10. Through float first it
  // would become the midpoint 1 + 2^-11 exactly, which ties to even: 1.
  const double v = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  QkvArrays inputs;
  inputs.q = {1, 1, 1, {0.5}};
  inputs.k = {1, 1, 1, {0.25}};
  inputs.v = {1, 1, 1, {v}};
  for (const char* name : {"fp16-acc32", "fp16"}) {
    for (Method method : {Method::exact, Method::taylor_quadratic, Method::sata}) {
      // One token: the output is v itself (weight over weight).
      const AttentionOutput out = compute_attention(method, inputs, precision_policy(name), AttentionOptions{});
      EXPECT_EQ(out.y.data.at(0), 1.0 + std::ldexp(1.0, -10)) << name << " " << method_name(method);
    }
  }
}

}  // namespace
}  // namespace satalab
