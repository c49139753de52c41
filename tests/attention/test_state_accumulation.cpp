// SATA's state accumulation modes (AttentionOptions::state_accumulation):
// each against an independent computation — closed forms of the degree-0
// normaliser z_0 = n in bf16, and the state against the exact sums of its
// own rounded products (double, compensated) within each mode's error bound.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "satalab/attention/sata_state.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/rounding.hpp"

namespace satalab {
namespace {

struct Tokens {
  std::vector<float> q, k, v;
};

// n tokens of d_key / d_value entries, rounded into `policy`'s input format.
Tokens tokens(std::size_t n, std::size_t dk, std::size_t dv, const PrecisionPolicy& policy, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Tokens t;
  auto fill = [&](std::vector<float>& x, std::size_t count) {
    x.resize(count);
    for (float& e : x) e = static_cast<float>(round_to(normal(rng), policy.input));
  };
  fill(t.q, n * dk);
  fill(t.k, n * dk);
  fill(t.v, n * dv);
  return t;
}

std::unique_ptr<SataState<float>> make_state(std::size_t dk, std::size_t dv, std::size_t P,
                                             const PrecisionPolicy& policy, StateAccumulation mode,
                                             std::size_t block = 1024) {
  AttentionOptions options;
  options.taylor_terms = P;
  options.state_accumulation = mode;
  options.state_block = block;
  return std::make_unique<SataState<float>>(std::make_shared<const SymmetricBasis>(dk, P), dv, policy, options);
}

// z_0 (row 0, last column: the degree-0 key coefficient is 1) after n tokens.
double z0_after(std::size_t n, const PrecisionPolicy& policy, StateAccumulation mode, std::size_t block) {
  const std::size_t dk = 2, dv = 2;
  auto state = make_state(dk, dv, 2, policy, mode, block);
  const Tokens t = tokens(n, dk, dv, policy, 7);
  std::vector<float> y(dv);
  float z = 0;
  for (std::size_t j = 0; j < n; ++j) state->step(&t.q[j * dk], &t.k[j * dk], &t.v[j * dv], y.data(), &z);
  return static_cast<double>(state->values()[dv]);
}

TEST(StateAccumulation, Bf16DegreeZeroNormaliserFollowsEachModesClosedForm) {
  // bf16 holds the integers up to 2^8 = 256 exactly: plain adds 1 to 256 and
  // rounds back to 256 (ties to even). Compensated keeps the lost ones in its
  // compensation, itself bf16, which saturates at 256 too: s + c = 512.
  // Blocked sums 16 tokens (exact) and adds multiples of 16 (exact to 4096).
  // fp64 counts in double and rounds n once into bf16.
  const PrecisionPolicy bf16 = precision_policy("bf16");
  for (const std::size_t n : {200u, 400u, 1000u}) {
    const double exact = static_cast<double>(n);
    EXPECT_EQ(z0_after(n, bf16, StateAccumulation::plain, 1), std::min(exact, 256.0)) << n;
    EXPECT_EQ(z0_after(n, bf16, StateAccumulation::compensated, 1), std::min(exact, 512.0)) << n;
    EXPECT_EQ(z0_after(n, bf16, StateAccumulation::blocked, 16), round_to(exact, bf16.accumulate)) << n;
    EXPECT_EQ(z0_after(n, bf16, StateAccumulation::fp64, 1), round_to(exact, bf16.accumulate)) << n;
  }
}

TEST(StateAccumulation, BlockedWithBlocksOfOneTokenIsPlainBitForBit) {
  // closed + (0 + p) rounds as plain's S + p does: the same numbers by another code path.
  for (const char* name : {"fp32", "bf16", "fp16-acc32"}) {
    const PrecisionPolicy policy = precision_policy(name);
    const std::size_t dk = 4, dv = 3, P = 3, n = 700;
    auto plain = make_state(dk, dv, P, policy, StateAccumulation::plain);
    auto blocked = make_state(dk, dv, P, policy, StateAccumulation::blocked, 1);
    const Tokens t = tokens(n, dk, dv, policy, 3);
    std::vector<float> y1(dv), y2(dv);
    float z1 = 0, z2 = 0;
    for (std::size_t j = 0; j < n; ++j) {
      plain->step(&t.q[j * dk], &t.k[j * dk], &t.v[j * dv], y1.data(), &z1);
      blocked->step(&t.q[j * dk], &t.k[j * dk], &t.v[j * dv], y2.data(), &z2);
      ASSERT_EQ(y1, y2) << name << " token " << j;
      ASSERT_EQ(z1, z2) << name << " token " << j;
    }
    EXPECT_EQ(plain->values(), blocked->values()) << name;
  }
}

TEST(StateAccumulation, Fp32ModesMatchTheExactSumOfTheirRoundedProductsWithinTheirBounds) {
  const PrecisionPolicy fp32 = precision_policy("fp32");
  const std::size_t dk = 3, dv = 2, P = 3, n = 20'000, B = 64;
  const Tokens t = tokens(n, dk, dv, fp32, 11);
  const std::vector<StateAccumulation> modes = {StateAccumulation::plain, StateAccumulation::compensated,
                                                StateAccumulation::blocked, StateAccumulation::fp64};
  std::vector<std::unique_ptr<SataState<float>>> states;
  for (auto m : modes) states.push_back(make_state(dk, dv, P, fp32, m, B));
  // The products the state adds: a plain state holding one token holds them exactly (0 + p = p).
  auto single = make_state(dk, dv, P, fp32, StateAccumulation::plain);
  const std::size_t size = single->state_elements();
  std::vector<double> sum(size, 0.0), comp(size, 0.0), magnitude(size, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    auto one = single->empty_sibling();
    one->append(&t.k[j * dk], &t.v[j * dv]);
    for (std::size_t i = 0; i < size; ++i) {
      const double p = static_cast<double>(one->values()[i]);
      const double s = sum[i] + p;  // Neumaier in double: exact to ~1e-16 relative here
      comp[i] += std::fabs(sum[i]) >= std::fabs(p) ? (sum[i] - s) + p : (p - s) + sum[i];
      sum[i] = s;
      magnitude[i] += std::fabs(p);
    }
    for (auto& s : states) s->append(&t.k[j * dk], &t.v[j * dv]);
  }
  const double u = std::ldexp(1.0, -24);
  const double N = static_cast<double>(n);
  // Bounds (Higham, Accuracy and Stability, ch. 4): recursive (N−1)u·Σ|p|;
  // Neumaier u|S| + 2u²N·Σ|p| plus the final rounding of s + c; two-level
  // blocks (B + N/B)u·Σ|p|; double sums rounded once: u|S| + N·2^-53·Σ|p|.
  double worst_plain = 0;
  for (std::size_t i = 0; i < size; ++i) {
    const double exact = sum[i] + comp[i];
    const double err[4] = {std::fabs(states[0]->values()[i] - exact), std::fabs(states[1]->values()[i] - exact),
                           std::fabs(states[2]->values()[i] - exact), std::fabs(states[3]->values()[i] - exact)};
    EXPECT_LE(err[0], (N - 1) * u * magnitude[i]) << i;
    EXPECT_LE(err[1], 2 * u * std::fabs(exact) + 2 * u * u * N * magnitude[i]) << i;
    EXPECT_LE(err[2], (static_cast<double>(B) + N / static_cast<double>(B)) * u * magnitude[i]) << i;
    EXPECT_LE(err[3], u * std::fabs(exact) + N * std::ldexp(1.0, -53) * magnitude[i]) << i;
    worst_plain = std::max(worst_plain, err[0] / std::max(u * std::fabs(exact), 1e-300));
  }
  // The comparison can see a difference: plain is off by many of its own ulps somewhere.
  EXPECT_GT(worst_plain, 4.0);
}

TEST(StateAccumulation, SnapshotRestoresEveryModeToTheSameContinuation) {
  const PrecisionPolicy fp32 = precision_policy("fp32");
  const std::size_t dk = 3, dv = 2, P = 3, n = 300;
  const Tokens t = tokens(n, dk, dv, fp32, 5);
  for (auto mode : {StateAccumulation::plain, StateAccumulation::compensated, StateAccumulation::blocked,
                    StateAccumulation::fp64}) {
    auto a = make_state(dk, dv, P, fp32, mode, 32);
    auto b = make_state(dk, dv, P, fp32, mode, 32);
    std::vector<float> y(dv);
    float z = 0;
    for (std::size_t j = 0; j < 150; ++j) a->step(&t.q[j * dk], &t.k[j * dk], &t.v[j * dv], y.data(), &z);
    b->restore(a->tokens(), a->snapshot());
    for (std::size_t j = 150; j < n; ++j) {
      a->step(&t.q[j * dk], &t.k[j * dk], &t.v[j * dv], y.data(), &z);
      b->step(&t.q[j * dk], &t.k[j * dk], &t.v[j * dv], y.data(), &z);
    }
    EXPECT_EQ(a->snapshot(), b->snapshot()) << state_accumulation_name(mode);
    EXPECT_THROW(b->restore(1, std::vector<double>(3, 0.0)), InvalidArgument);
  }
  EXPECT_THROW(state_accumulation_by_name("kahan"), InvalidArgument);
}

}  // namespace
}  // namespace satalab
