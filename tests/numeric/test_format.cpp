// Format lookup by name, the unit roundoff, and the multiprecision precision
// scope. (The formats' grids are checked bit pattern by bit pattern in
// test_rounding.cpp against an independent decoder.)
#include <gtest/gtest.h>
#include <mpfr.h>

#include <cmath>
#include <string>
#include <vector>

#include "satalab/error.hpp"
#include "satalab/numeric/format.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {
namespace {

bool is_template(const std::string& name) { return name.find('<') != std::string::npos; }

// The message of the InvalidArgument that format_by_name(name) throws.
std::string format_error(const std::string& name) {
  try {
    (void)format_by_name(name);
  } catch (const InvalidArgument& e) {
    return e.what();
  } catch (...) {
    ADD_FAILURE() << "format_by_name('" << name << "') threw something other than InvalidArgument";
    return {};
  }
  ADD_FAILURE() << "format_by_name('" << name << "') did not throw";
  return {};
}

TEST(FormatByName, EveryListedNameResolvesToAFormatOfThatName) {
  const std::vector<std::string> names = format_names();
  int resolved = 0;
  for (const std::string& name : names) {
    if (is_template(name)) continue;
    const Format f = format_by_name(name);
    EXPECT_EQ(f.name, name);
    EXPECT_FALSE(f.multiprecision) << name;
    ++resolved;
  }
  EXPECT_EQ(resolved, 7);  // fp64 fp32 bf16 fp16 e4m3 e4m3sat e5m2
}

TEST(FormatByName, FixedFormatsHaveTheirIeeeAndOcpParameters) {
  // Precision includes the hidden bit; max finite from (2 - 2^(1-p))·2^emax
  // except e4m3, whose top pattern is NaN (448 = 1.75·2^8).
  struct Expected {
    const char* name;
    int p, emin, emax;
    double max;
    OverflowRule overflow;
  };
  const Expected all[] = {
      {"fp64", 53, -1022, 1023, 1.7976931348623157e308, OverflowRule::infinity},
      {"fp32", 24, -126, 127, 3.4028234663852886e38, OverflowRule::infinity},
      {"bf16", 8, -126, 127, 3.3895313892515355e38, OverflowRule::infinity},
      {"fp16", 11, -14, 15, 65504.0, OverflowRule::infinity},
      {"e4m3", 4, -6, 8, 448.0, OverflowRule::nan},
      {"e4m3sat", 4, -6, 8, 448.0, OverflowRule::saturate},
      {"e5m2", 3, -14, 15, 57344.0, OverflowRule::infinity},
  };
  for (const Expected& x : all) {
    const Format f = format_by_name(x.name);
    EXPECT_EQ(f.precision_bits, x.p) << x.name;
    EXPECT_EQ(f.emin, x.emin) << x.name;
    EXPECT_EQ(f.emax, x.emax) << x.name;
    EXPECT_EQ(f.max_finite, x.max) << x.name;
    EXPECT_EQ(f.overflow, x.overflow) << x.name;
    EXPECT_TRUE(f.subnormals) << x.name;
    EXPECT_EQ(f.min_exponent(), x.emin - (x.p - 1)) << x.name;
  }
}

TEST(FormatByName, Mp256IsMultiprecisionWith256Bits) {
  const Format f = format_by_name("mp256");
  EXPECT_EQ(f.name, "mp256");
  EXPECT_EQ(f.precision_bits, 256);
  EXPECT_TRUE(f.multiprecision);
  EXPECT_EQ(format_by_name("mp24").precision_bits, 24);
  EXPECT_EQ(format_by_name("mp100000").precision_bits, 100000);
}

TEST(FormatByName, UnknownNamesThrowInvalidArgumentNamingValueAndAllowedNames) {
  for (const std::string bad : {"fp12", "", "FP16", "fp16 ", "mp", "mpx", "mp-5", "mp256x"}) {
    const std::string message = format_error(bad);
    EXPECT_NE(message.find("'" + bad + "'"), std::string::npos) << message;
    for (const std::string& name : format_names()) {
      EXPECT_NE(message.find(name), std::string::npos) << "'" << bad << "': " << message << " lacks " << name;
    }
  }
}

TEST(FormatByName, OutOfRangeMpWidthThrowsNamingValueAndAllowedRange) {
  for (const std::string bad : {"mp8", "mp23", "mp100001", "mp0"}) {
    const std::string message = format_error(bad);
    EXPECT_NE(message.find(bad), std::string::npos) << message;
    EXPECT_NE(message.find("mp24"), std::string::npos) << message;
    EXPECT_NE(message.find("mp100000"), std::string::npos) << message;
  }
  // Too many digits for an unsigned is still an InvalidArgument, not a crash.
  EXPECT_THROW((void)format_by_name("mp99999999999999999999999"), InvalidArgument);
  EXPECT_THROW((void)mp_format(8), InvalidArgument);
}

TEST(FormatUnitRoundoff, IsTwoToMinusPrecision) {
  EXPECT_EQ(fp16().unit_roundoff(), std::ldexp(1.0, -11));
  EXPECT_EQ(bf16().unit_roundoff(), std::ldexp(1.0, -8));
  EXPECT_EQ(fp32().unit_roundoff(), std::ldexp(1.0, -24));
  EXPECT_EQ(fp64().unit_roundoff(), std::ldexp(1.0, -53));
  EXPECT_EQ(fp64().unit_roundoff(), 0.5 * 2.220446049250313e-16);  // half of DBL_EPSILON
  EXPECT_EQ(e4m3().unit_roundoff(), 1.0 / 16);
  EXPECT_EQ(e5m2().unit_roundoff(), 1.0 / 8);
  EXPECT_EQ(mp_format(256).unit_roundoff(), std::ldexp(1.0, -256));
}

// ---------------------------------------------------------------------------
// Multiprecision scope

unsigned fresh_bits() {
  const mp_t x;
  return static_cast<unsigned>(mpfr_get_prec(x.backend().data()));
}

TEST(MpPrecisionScope, NewValuesGetAtLeastTheRequestedBitsAndScopeRestores) {
  const unsigned before = mp_current_bits();
  const unsigned before_fresh = fresh_bits();
  EXPECT_EQ(before, before_fresh);
  {
    MpPrecisionScope scope(256);
    EXPECT_GE(mp_current_bits(), 256u);
    EXPECT_GE(fresh_bits(), 256u);
    EXPECT_EQ(mp_current_bits(), fresh_bits());
    const mp_t from_double(0.1);
    EXPECT_GE(mpfr_get_prec(from_double.backend().data()), 256);
    // 256 bits really are there: 1 + 2^-250 is not 1.
    const mp_t one_plus = mp_t(1) + mp_t(std::ldexp(1.0, -250));
    EXPECT_TRUE(one_plus > mp_t(1));
    {
      MpPrecisionScope inner(1000);
      EXPECT_GE(fresh_bits(), 1000u);
    }
    EXPECT_GE(fresh_bits(), 256u);
    EXPECT_LT(fresh_bits(), 1000u);
  }
  EXPECT_EQ(mp_current_bits(), before);
  EXPECT_EQ(fresh_bits(), before_fresh);
}

TEST(MpPrecisionScope, GivesAtLeastRequestedBitsWithoutWaste) {
  for (unsigned bits = 24; bits <= 2048; bits += 7) {
    MpPrecisionScope scope(bits);
    const unsigned got = fresh_bits();
    EXPECT_GE(got, bits);
    EXPECT_LE(got, bits + 8) << "requested " << bits;  // one decimal digit is ~3.3 bits
    EXPECT_EQ(mp_current_bits(), got);
  }
}

TEST(StorageBits, AreTheSignExponentFieldAndStoredSignificandOfEachFormat) {
  // IEEE binary16/32/64 and bfloat16 by their standard encodings; OCP fp8 is 8 bits.
  EXPECT_EQ(storage_bits(fp64()), 64);
  EXPECT_EQ(storage_bits(fp32()), 32);
  EXPECT_EQ(storage_bits(bf16()), 16);
  EXPECT_EQ(storage_bits(fp16()), 16);
  EXPECT_EQ(storage_bits(e4m3()), 8);
  EXPECT_EQ(storage_bits(e4m3_saturating()), 8);
  EXPECT_EQ(storage_bits(e5m2()), 8);
  EXPECT_EQ(storage_bits(mp_format(256)), 256 + 32);  // significand + a 32-bit exponent field and sign
}

}  // namespace
}  // namespace satalab
