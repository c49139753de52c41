// Streaming exact attention over regenerated keys (attention/streaming_exact.hpp):
// the same bits as over the stored inputs, and the multiprecision truth to fp64 accuracy.
#include <gtest/gtest.h>

#include <cmath>

#include "satalab/attention/compute.hpp"
#include "satalab/attention/streaming_exact.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {
namespace {

TEST(StreamingExact, RegeneratedKeysGiveTheBitsOfTheStoredInputsUpToPosition1e5) {
  const CounterWorkload w{1, 8, 8, 1.0, 3};
  const std::size_t n = 100'000;
  const QkvArrays stored = counter_inputs(w, n);
  const double c = std::sqrt(8.0);
  for (const std::uint64_t i : {0ull, 1ull, 8191ull, 8192ull, 50'000ull, 99'999ull}) {
    const StreamingRow regenerated = streaming_exact_row(w, 0, i, c);
    const StreamingRow from_tensor = streaming_exact_row(&stored.q.data[i * 8], stored.k.data.data(),
                                                         stored.v.data.data(), i + 1, 8, 8, c);
    ASSERT_EQ(regenerated.y, from_tensor.y) << "position " << i;
    ASSERT_EQ(regenerated.z, from_tensor.z) << "position " << i;
  }
}

TEST(StreamingExact, MatchesTheMultiprecisionTruthToFp64Accuracy) {
  const CounterWorkload w{2, 8, 8, 1.5, 11};
  const std::size_t n = 20'000;  // three key blocks
  const QkvArrays inputs = counter_inputs(w, n);
  AttentionOptions options;
  options.query_rows = {0, 777, 8192, 19'999};
  const AttentionOutput truth = compute_attention(Method::exact, inputs, precision_policy("mp160"), options);
  const double c = std::sqrt(8.0);
  for (std::size_t h = 0; h < 2; ++h) {
    for (std::size_t r = 0; r < options.query_rows.size(); ++r) {
      const StreamingRow row = streaming_exact_row(w, h, options.query_rows[r], c);
      double err = 0, norm = 0;
      for (std::size_t t = 0; t < 8; ++t) {
        const double expected = truth.y.data[(h * options.query_rows.size() + r) * 8 + t];
        err = std::max(err, std::fabs(row.y[t] - expected));
        norm = std::max(norm, std::fabs(expected));
      }
      EXPECT_LT(err, 1e-14 * norm) << "head " << h << ", position " << options.query_rows[r];
    }
  }
}

}  // namespace
}  // namespace satalab
