// Precision policy presets (docs/architecture.md §3): input / compute / accumulate formats,
// the carrier each preset runs in, and when a Rounder actually rounds.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "satalab/error.hpp"
#include "satalab/numeric/multiprecision.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {
namespace {

bool is_template(const std::string& name) { return name.find('<') != std::string::npos; }

std::string policy_error(const std::string& name) {
  try {
    (void)precision_policy(name);
  } catch (const InvalidArgument& e) {
    return e.what();
  } catch (...) {
    ADD_FAILURE() << "precision_policy('" << name << "') threw something other than InvalidArgument";
    return {};
  }
  ADD_FAILURE() << "precision_policy('" << name << "') did not throw";
  return {};
}

void expect_formats(const PrecisionPolicy& p, const char* input, const char* compute, const char* accumulate) {
  EXPECT_EQ(p.input.name, input) << p.name;
  EXPECT_EQ(p.compute.name, compute) << p.name;
  EXPECT_EQ(p.accumulate.name, accumulate) << p.name;
}

TEST(PrecisionPolicy, PresetsHaveTheirInputComputeAccumulateFormats) {
  expect_formats(precision_policy("fp64"), "fp64", "fp64", "fp64");
  expect_formats(precision_policy("fp32"), "fp32", "fp32", "fp32");
  expect_formats(precision_policy("bf16"), "bf16", "bf16", "bf16");
  expect_formats(precision_policy("fp16"), "fp16", "fp16", "fp16");
  expect_formats(precision_policy("fp16-acc32"), "fp16", "fp16", "fp32");
  expect_formats(precision_policy("bf16-acc32"), "bf16", "bf16", "fp32");
  expect_formats(precision_policy("e4m3-acc32"), "e4m3", "e4m3", "fp32");
  expect_formats(precision_policy("e5m2-acc32"), "e5m2", "e5m2", "fp32");
  expect_formats(precision_policy("e4m3sat-acc32"), "e4m3sat", "e4m3sat", "fp32");
  // The formats are the real ones, not just their names.
  const PrecisionPolicy p = precision_policy("fp16-acc32");
  EXPECT_EQ(p.input.precision_bits, 11);
  EXPECT_EQ(p.input.max_finite, 65504.0);
  EXPECT_EQ(p.accumulate.precision_bits, 24);
  EXPECT_EQ(precision_policy("e4m3sat-acc32").compute.overflow, OverflowRule::saturate);
}

TEST(PrecisionPolicy, Fp64PresetUsesDoubleCarrier) {
  const PrecisionPolicy p = precision_policy("fp64");
  EXPECT_EQ(p.name, "fp64");
  EXPECT_EQ(p.carrier, Carrier::f64);
  EXPECT_EQ(p.input.precision_bits, 53);
  EXPECT_EQ(p.compute.precision_bits, 53);
  EXPECT_EQ(p.accumulate.precision_bits, 53);
}

TEST(PrecisionPolicy, Mp256PresetUsesMpCarrierWith256Bits) {
  const PrecisionPolicy p = precision_policy("mp256");
  EXPECT_EQ(p.name, "mp256");
  EXPECT_EQ(p.carrier, Carrier::mp);
  EXPECT_EQ(p.mp_bits, 256u);
  for (const Format* f : {&p.input, &p.compute, &p.accumulate}) {
    EXPECT_TRUE(f->multiprecision);
    EXPECT_EQ(f->precision_bits, 256);
  }
  EXPECT_THROW((void)precision_policy("mp8"), InvalidArgument);
}

TEST(PrecisionPolicy, EveryListedNameResolvesAndItsCarrierHoldsItsFormats) {
  int resolved = 0;
  for (const std::string& name : precision_names()) {
    if (is_template(name)) continue;
    const PrecisionPolicy p = precision_policy(name);
    EXPECT_EQ(p.name, name);
    ++resolved;
    for (const Format* f : {&p.input, &p.compute, &p.accumulate}) {
      switch (p.carrier) {
        case Carrier::f32:
          // float must hold the format and, where it emulates by rounding after
          // each operation, have >= 2p+2 bits (24 >= 2·11+2 for fp16).
          EXPECT_TRUE(f->name == "fp32" || 2 * f->precision_bits + 2 <= 24) << name << " " << f->name;
          EXPECT_GE(f->emin, -126) << name << " " << f->name;
          EXPECT_LE(f->emax, 127) << name << " " << f->name;
          break;
        case Carrier::f64:
          EXPECT_TRUE(f->name == "fp64" || 2 * f->precision_bits + 2 <= 53) << name << " " << f->name;
          break;
        case Carrier::mp:
          EXPECT_TRUE(f->multiprecision);
          break;
      }
    }
  }
  EXPECT_EQ(resolved, 9);
}

TEST(PrecisionPolicy, UnknownNameThrowsInvalidArgumentListingPresets) {
  const std::string message = policy_error("fp17");
  EXPECT_NE(message.find("fp17"), std::string::npos) << message;
  EXPECT_NE(message.find("fp16-acc32"), std::string::npos) << message;
  for (const std::string bad : {"", "fp16-acc16", "mp", "mpx256", "FP32"}) {
    const std::string m = policy_error(bad);
    EXPECT_NE(m.find("'" + bad + "'"), std::string::npos) << m;
    EXPECT_NE(m.find("bf16-acc32"), std::string::npos) << m;
  }
}

TEST(PrecisionPolicyRounder, ActiveOnlyWhenTheCarrierIsNotTheFormat) {
  EXPECT_FALSE(Rounder<float>(fp32(), Carrier::f32).active());
  EXPECT_TRUE(Rounder<float>(fp16(), Carrier::f32).active());
  EXPECT_TRUE(Rounder<float>(bf16(), Carrier::f32).active());
  EXPECT_FALSE(Rounder<double>(fp64(), Carrier::f64).active());
  EXPECT_TRUE(Rounder<double>(fp32(), Carrier::f64).active());
  const Format mp = mp_format(256);
  EXPECT_FALSE(Rounder<mp_t>(mp, Carrier::mp).active());
  EXPECT_TRUE(Rounder<mp_t>(fp16(), Carrier::mp).active());
}

TEST(PrecisionPolicyRounder, RoundsIntoTheFormatWhenActiveAndPassesThroughOtherwise) {
  const float x = 1.0f + 0x1.8p-11f;  // 3/4 of an fp16 ulp above 1: rounds up to 1 + 2^-10
  EXPECT_EQ(Rounder<float>(fp16(), Carrier::f32)(x), 1.0f + 0x1p-10f);
  EXPECT_EQ(Rounder<float>(fp32(), Carrier::f32)(x), x);
  const double y = 1.0 + 0x1p-40;
  EXPECT_EQ(Rounder<double>(fp32(), Carrier::f64)(y), 1.0);
  EXPECT_EQ(Rounder<double>(fp64(), Carrier::f64)(y), y);
  // Rounders point at the policy's formats: the policy must outlive them.
  const PrecisionPolicy policy = precision_policy("fp16-acc32");
  const PolicyRounders<float> r(policy);
  EXPECT_TRUE(r.input.active());
  EXPECT_TRUE(r.compute.active());
  EXPECT_FALSE(r.accumulate.active());
  EXPECT_EQ(r.input(x), 1.0f + 0x1p-10f);
  EXPECT_EQ(r.compute(70000.0f), std::numeric_limits<float>::infinity());  // past fp16 max + ulp/2
  EXPECT_EQ(r.accumulate(x), x);
}

}  // namespace
}  // namespace satalab
