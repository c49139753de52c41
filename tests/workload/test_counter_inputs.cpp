// Counter-based inputs (workload/counter_inputs.hpp): any row on demand, the
// same whatever was drawn before, with the moments of N(0, scale²).
#include <gtest/gtest.h>

#include <cmath>

#include "satalab/error.hpp"
#include "satalab/workload/counter_inputs.hpp"

namespace satalab {
namespace {

TEST(CounterInputs, ARowIsTheSameWhateverWasDrawnBeforeAndMatchesTheMaterialisedArrays) {
  const CounterWorkload w{3, 6, 5, 0.5, 42};
  const QkvArrays all = counter_inputs(w, 50);
  std::vector<double> row(6);
  // Backwards, and far beyond the materialised length first.
  counter_row(w, QkvTensor::k, 2, 1'000'000'000'000ull, row.data());
  for (std::size_t i = 50; i-- > 0;) {
    for (std::size_t h = 0; h < 3; ++h) {
      counter_row(w, QkvTensor::q, h, i, row.data());
      for (std::size_t t = 0; t < 6; ++t) ASSERT_EQ(row[t], all.q.data[(h * 50 + i) * 6 + t]);
      counter_row(w, QkvTensor::k, h, i, row.data());
      for (std::size_t t = 0; t < 6; ++t) ASSERT_EQ(row[t], all.k.data[(h * 50 + i) * 6 + t]);
      counter_row(w, QkvTensor::v, h, i, row.data());
      for (std::size_t t = 0; t < 5; ++t) ASSERT_EQ(row[t], all.v.data[(h * 50 + i) * 5 + t]);
    }
  }
}

TEST(CounterInputs, EntriesHaveTheMomentsOfTheirGaussianAndStreamsDiffer) {
  const CounterWorkload w{2, 16, 16, 2.0, 7};
  const QkvArrays a = counter_inputs(w, 8192);
  for (const auto& [array, variance] : {std::pair{&a.q, 4.0}, {&a.k, 4.0}, {&a.v, 1.0}}) {
    double sum = 0, sum_sq = 0, fourth = 0;
    for (double x : array->data) {
      sum += x;
      sum_sq += x * x;
      fourth += x * x * x * x;
    }
    const double n = static_cast<double>(array->data.size());
    // Standard errors: of the mean sqrt(var / n), of the variance var·sqrt(2 / n), of the
    // fourth moment (3 var²) about var²·sqrt(96 / n). Five of each.
    EXPECT_NEAR(sum / n, 0.0, 5 * std::sqrt(variance / n));
    EXPECT_NEAR(sum_sq / n, variance, 5 * variance * std::sqrt(2.0 / n));
    EXPECT_NEAR(fourth / n, 3 * variance * variance, 5 * variance * variance * std::sqrt(96.0 / n));
  }
  // q and k of one position are different draws, and another seed changes everything.
  EXPECT_NE(a.q.data[0], a.k.data[0] / 1.0);
  const QkvArrays b = counter_inputs(CounterWorkload{2, 16, 16, 2.0, 8}, 4);
  EXPECT_NE(a.q.data[0], b.q.data[0]);
  EXPECT_THROW(counter_inputs(CounterWorkload{0, 16, 16, 1.0, 1}, 4), InvalidArgument);
  EXPECT_THROW(counter_inputs(CounterWorkload{1, 16, 16, -1.0, 1}, 4), InvalidArgument);
}

}  // namespace
}  // namespace satalab
