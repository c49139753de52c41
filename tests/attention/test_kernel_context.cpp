// What the kernels decide once per call: the carrier (with_carrier), the
// multiprecision precision every public entry point sets for itself, formats
// compared by their parameters, and results that do not depend on where the
// kernels' buffers land in memory.
#include <gtest/gtest.h>
#include <mpfr.h>

#include <memory>
#include <random>
#include <type_traits>
#include <vector>

#include "satalab/attention/exact_decoder.hpp"
#include "satalab/attention/sata_decoder.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/carrier.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {
namespace {

std::vector<double> gaussian(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> out(n);
  for (auto& x : out) x = normal(rng);
  return out;
}

template <class T>
std::vector<T> in_format(const std::vector<double>& x, const Format& f) {
  std::vector<T> out;
  out.reserve(x.size());
  for (double v : x) out.push_back(T(round_to(v, f)));
  return out;
}

TEST(FormatEquality, ComparesParametersNotNames) {
  Format renamed = fp32();
  renamed.name = "binary32";
  EXPECT_TRUE(renamed == fp32());
  EXPECT_FALSE(Rounder<float>::needs_rounding(renamed, Carrier::f32));
  EXPECT_TRUE(Rounder<float>::needs_rounding(fp16(), Carrier::f32));
  Format widened = fp32();
  widened.emax = 128;  // same name, another grid
  EXPECT_FALSE(widened == fp32());
  EXPECT_TRUE(Rounder<float>::needs_rounding(widened, Carrier::f32));
  // e4m3 and its saturating variant: one grid, two overflow rules.
  EXPECT_TRUE(e4m3().same_grid(e4m3_saturating()));
  EXPECT_FALSE(e4m3() == e4m3_saturating());
  EXPECT_FALSE(fp16().same_grid(bf16()));
  EXPECT_TRUE(format_by_name("mp256") == mp_format(256));
  EXPECT_FALSE(mp_format(256) == mp_format(257));
}

TEST(WithCarrier, CallsTheCarrierOfThePolicyWithItsPrecisionSet) {
  const unsigned before = mp_current_bits();
  EXPECT_TRUE(with_carrier(precision_policy("fp32"), []<class T>(CarrierTag<T>) { return std::is_same_v<T, float>; }));
  EXPECT_TRUE(with_carrier(precision_policy("bf16"), []<class T>(CarrierTag<T>) { return std::is_same_v<T, float>; }));
  EXPECT_TRUE(with_carrier(precision_policy("fp64"), []<class T>(CarrierTag<T>) { return std::is_same_v<T, double>; }));
  const unsigned inside = with_carrier(precision_policy("mp300"), []<class T>(CarrierTag<T>) {
    if constexpr (std::is_same_v<T, mp_t>) {
      const mp_t x(1);
      return static_cast<unsigned>(mpfr_get_prec(x.backend().data()));
    } else {
      return 0u;
    }
  });
  EXPECT_GE(inside, 300u);
  EXPECT_EQ(mp_current_bits(), before);
  // A callable limited to float and double refuses a multiprecision policy.
  auto native_only = []<class T>(CarrierTag<T>) requires std::is_floating_point_v<T> { return 1; };
  EXPECT_EQ(with_carrier(precision_policy("fp16-acc32"), native_only), 1);
  EXPECT_THROW(with_carrier(precision_policy("mp128"), native_only), InvalidArgument);
}

// The public multiprecision entry points (SataState, SataDecoder,
// ExactDecoder) set the precision their policy asks for themselves: called
// without any scope they give the values they give inside one, at the
// policy's precision (the default, 50 digits, is about 170 bits).
TEST(MultiprecisionEntryPoints, SetTheirOwnPrecision) {
  const PrecisionPolicy policy = precision_policy("mp400");
  const std::size_t heads = 2, dk = 4, dv = 3, n = 9;
  AttentionOptions options;
  options.taylor_terms = 3;
  options.key_block = 4;
  const std::vector<double> q = gaussian(heads * n * dk, 1), k = gaussian(heads * n * dk, 2), v = gaussian(heads * n * dv, 3);
  // The inputs as a caller hands them over: values at the policy's precision.
  std::vector<mp_t> qc, kc, vc;
  {
    MpPrecisionScope scope(policy.mp_bits);
    qc = in_format<mp_t>(q, policy.input);
    kc = in_format<mp_t>(k, policy.input);
    vc = in_format<mp_t>(v, policy.input);
  }
  auto run = [&] {
    std::vector<mp_t> out;
    SataDecoder<mp_t> sata(heads, dk, dv, policy, options);
    ExactDecoder<mp_t> exact(heads, dk, dv, n, policy, options);
    std::vector<mp_t> y(heads * dv), z(heads);
    for (std::size_t t = 0; t < n; ++t) {
      std::vector<mp_t> qt, kt, vt;
      for (std::size_t h = 0; h < heads; ++h) {
        qt.insert(qt.end(), qc.begin() + static_cast<long>((h * n + t) * dk), qc.begin() + static_cast<long>((h * n + t + 1) * dk));
        kt.insert(kt.end(), kc.begin() + static_cast<long>((h * n + t) * dk), kc.begin() + static_cast<long>((h * n + t + 1) * dk));
        vt.insert(vt.end(), vc.begin() + static_cast<long>((h * n + t) * dv), vc.begin() + static_cast<long>((h * n + t + 1) * dv));
      }
      sata.step(qt.data(), kt.data(), vt.data(), y.data(), z.data());
      out.insert(out.end(), y.begin(), y.end());
      out.insert(out.end(), z.begin(), z.end());
      exact.step(qt.data(), kt.data(), vt.data(), y.data(), z.data());
      out.insert(out.end(), y.begin(), y.end());
      out.insert(out.end(), z.begin(), z.end());
    }
    out.insert(out.end(), sata.state(0).values().begin(), sata.state(0).values().end());
    return out;
  };
  const unsigned before = mp_current_bits();
  ASSERT_LT(before, 400u);  // the test means something only below the policy's precision
  // Every call below runs outside any scope: the entry points set the precision.
  const std::vector<mp_t> bare = run();
  EXPECT_EQ(mp_current_bits(), before);
  std::vector<mp_t> scoped;
  {
    MpPrecisionScope scope(policy.mp_bits);
    scoped = run();
  }
  ASSERT_EQ(bare.size(), scoped.size());
  for (std::size_t i = 0; i < bare.size(); ++i) {
    EXPECT_GE(mpfr_get_prec(bare[i].backend().data()), 400) << i;
    EXPECT_EQ(mpfr_cmp(bare[i].backend().data(), scoped[i].backend().data()), 0) << i;
  }
}

// The blocked exact decoder sums a key block's weights with a vectorised sum
// whose peel follows the buffer's alignment: its buffers are aligned, so the
// same inputs give the same bits wherever the heap puts them.
TEST(ExactDecoder, GivesTheSameBitsWhereverItsBuffersLand) {
  for (const char* name : {"fp64", "fp32", "fp16-acc32"}) {
    const PrecisionPolicy policy = precision_policy(name);
    with_carrier(policy, [&]<class T>(CarrierTag<T>) requires std::is_floating_point_v<T> {
      const std::size_t heads = 1, dk = 16, dv = 8, n = 200;
      AttentionOptions options;
      options.key_block = 37;
      const std::vector<T> q = in_format<T>(gaussian(n * dk, 4), policy.input),
                           k = in_format<T>(gaussian(n * dk, 5), policy.input),
                           v = in_format<T>(gaussian(n * dv, 6), policy.input);
      std::vector<std::vector<T>> runs;
      for (int run = 0; run < 3; ++run) {
        ExactDecoder<T> decoder(heads, dk, dv, n, policy, options);
        std::vector<T> out, y(dv), z(1);
        std::vector<std::unique_ptr<char[]>> clutter;
        for (std::size_t t = 0; t < n; ++t) {
          // Allocations of odd sizes between the steps move the decoder's scratch around.
          clutter.push_back(std::make_unique<char[]>(static_cast<std::size_t>(8 + 24 * ((t * 7 + run * 13) % 11))));
          decoder.step(q.data() + t * dk, k.data() + t * dk, v.data() + t * dv, y.data(), z.data());
          out.insert(out.end(), y.begin(), y.end());
          out.push_back(z[0]);
        }
        runs.push_back(out);
      }
      EXPECT_EQ(runs[0], runs[1]) << name;
      EXPECT_EQ(runs[0], runs[2]) << name;
    });
  }
}

}  // namespace
}  // namespace satalab
