// Long-context drift (experiment/drift.hpp, io/drift_file.hpp): the truth
// side against independent computations on the same inputs stored in a
// tensor (multiprecision Taylor-quadratic and exact attention), and a run
// stopped at a checkpoint and resumed equal to one run straight through.
#include <gtest/gtest.h>

#include <cmath>

#include "../support/satalab_test.hpp"
#include "satalab/attention/compute.hpp"
#include "satalab/error.hpp"
#include "satalab/experiment/drift.hpp"
#include "satalab/io/drift_file.hpp"

namespace satalab {
namespace {

DriftConfig tiny() {
  DriftConfig c;
  c.tokens = 3000;
  c.heads = 2;
  c.d_key = 4;
  c.d_value = 3;
  c.taylor_terms = 3;
  c.first_position = 100;
  c.positions = 4;
  c.state_block = 64;
  c.seed = 5;
  return c;
}

double rel(const std::vector<double>& a, const std::vector<double>& b) { return drift_row_error(a, b).rel; }

TEST(Drift, TruthOracleAndBaselineMatchMultiprecisionAttentionOnTheStoredInputs) {
  const CounterWorkload w{2, 4, 3, 1.0, 9};
  const std::size_t n = 9000;  // two key blocks
  const QkvArrays inputs = counter_inputs(w, n);
  AttentionOptions options;
  options.taylor_terms = 3;
  options.query_rows = {150, 8500};
  const PrecisionPolicy mp = precision_policy("mp128");
  const AttentionOutput exact = compute_attention(Method::exact, inputs, mp, options);
  const AttentionOutput taylor = compute_attention(Method::taylor_quadratic, inputs, mp, options);
  for (std::size_t h = 0; h < 2; ++h) {
    for (std::size_t r = 0; r < 2; ++r) {
      const std::uint64_t p = options.query_rows[r];
      const std::size_t row = (h * 2 + r) * 3;
      const std::vector<double> y_exact(exact.y.data.begin() + static_cast<long>(row),
                                        exact.y.data.begin() + static_cast<long>(row + 3));
      const std::vector<double> y_taylor(taylor.y.data.begin() + static_cast<long>(row),
                                         taylor.y.data.begin() + static_cast<long>(row + 3));
      const DriftTruth t64 = drift_truth(w, h, p, precision_policy("fp64"), 3);
      EXPECT_LT(rel(t64.y, y_exact), 1e-14);
      EXPECT_LT(rel(t64.taylor_y, y_taylor), 1e-13);
      EXPECT_LT(rel(t64.baseline_y, y_exact), 1e-13);
      EXPECT_EQ(t64.taylor_z_terms[0], static_cast<double>(p + 1));  // Σ_j s^0/0! = the key count
      // At fp32 the baseline carries fp32 rounding: visible, and of fp32's size.
      const DriftTruth t32 = drift_truth(w, h, p, precision_policy("fp32"), 3);
      EXPECT_EQ(t32.y, t64.y);
      EXPECT_GT(rel(t32.baseline_y, y_exact), 1e-12);
      EXPECT_LT(rel(t32.baseline_y, y_exact), 1e-4);
      EXPECT_LT(rel(t32.taylor_y, y_taylor), 1e-5);  // fp32 inputs, fp64 arithmetic
    }
  }
}

TEST(Drift, Fp64SataEqualsTheTaylorOracleAtEveryPosition) {
  DriftConfig c = tiny();
  c.precision = "fp64";
  DriftRun run(c);
  run.advance(c.tokens);
  const DriftResults& r = run.results();
  ASSERT_EQ(r.done_positions, r.positions.size());
  for (std::size_t m = 0; m < c.modes.size(); ++m) {
    for (std::size_t h = 0; h < c.heads; ++h) {
      for (std::size_t i = 0; i < r.positions.size(); ++i) {
        EXPECT_LT(rel(r.sata[m][h][i].y, r.truth[h][i].taylor_y), 1e-11) << m << " " << h << " " << i;
        for (std::size_t p = 0; p < c.taylor_terms; ++p) {
          EXPECT_NEAR(r.sata[m][h][i].z_terms[p], r.truth[h][i].taylor_z_terms[p],
                      1e-11 * (1 + std::fabs(r.truth[h][i].taylor_z_terms[p])));
        }
      }
    }
  }
}

TEST(Drift, ResumedFromACheckpointEqualsOneRunStraightThrough) {
  const DriftConfig c = tiny();
  test::TempDir dir;
  const std::string checkpoint = dir.file("run.checkpoint.h5");
  DriftRun straight(c);
  straight.advance(c.tokens);
  {
    DriftRun first(c);
    first.advance(1234);  // between truth positions
    write_drift_checkpoint(checkpoint, first, 1.5);
  }
  DriftRun resumed(c);
  EXPECT_EQ(read_drift_checkpoint(checkpoint, resumed), 1.5);
  EXPECT_EQ(resumed.tokens_done(), 1234u);
  resumed.advance(c.tokens);
  EXPECT_EQ(resumed.state_snapshots(), straight.state_snapshots());
  const DriftResults &a = straight.results(), &b = resumed.results();
  ASSERT_EQ(a.done_positions, b.done_positions);
  for (std::size_t h = 0; h < c.heads; ++h) {
    for (std::size_t i = 0; i < a.positions.size(); ++i) {
      EXPECT_EQ(a.truth[h][i].y, b.truth[h][i].y);
      EXPECT_EQ(a.truth[h][i].baseline_y, b.truth[h][i].baseline_y);
      for (std::size_t m = 0; m < c.modes.size(); ++m) {
        EXPECT_EQ(a.sata[m][h][i].y, b.sata[m][h][i].y);
        EXPECT_EQ(a.sata[m][h][i].z_terms, b.sata[m][h][i].z_terms);
      }
    }
  }
  // A checkpoint of another configuration is refused, naming the difference.
  DriftConfig other = c;
  other.seed = 6;
  DriftRun wrong(other);
  try {
    read_drift_checkpoint(checkpoint, wrong);
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("seed=5 there, seed=6 here"), std::string::npos) << e.what();
  }
}

TEST(Drift, PositionsAreLogSpacedAndTheConfigurationIsChecked) {
  DriftConfig c = tiny();
  c.tokens = 100'000'000;
  c.first_position = 1000;
  c.positions = 13;
  const auto p = drift_positions(c);
  ASSERT_EQ(p.size(), 13u);
  EXPECT_EQ(p.front(), 1000u);
  EXPECT_EQ(p.back(), 99'999'999u);
  for (std::size_t i = 1; i < p.size(); ++i) {
    EXPECT_NEAR(std::log10(static_cast<double>(p[i]) / static_cast<double>(p[i - 1])), 5.0 / 12.0, 1e-3);
  }
  c.tokens = 1000;
  EXPECT_THROW(validate_drift_config(c), InvalidArgument);
  c = tiny();
  c.precision = "mp128";
  EXPECT_THROW(validate_drift_config(c), InvalidArgument);
}

}  // namespace
}  // namespace satalab
