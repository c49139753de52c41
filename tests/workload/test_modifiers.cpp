// Workload modifiers and the fitted distribution (workload/modifiers.hpp), each
// checked against the closed form of the property that defines it.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "satalab/error.hpp"
#include "satalab/workload/gaussian.hpp"
#include "satalab/workload/modifiers.hpp"

namespace satalab {
namespace {

WorkloadModifier modifier(ModifierKind kind) {
  WorkloadModifier m;
  m.kind = kind;
  return m;
}

double dot(const double* a, const double* b, std::size_t d) {
  double s = 0;
  for (std::size_t t = 0; t < d; ++t) s += a[t] * b[t];
  return s;
}

TEST(WorkloadModifiers, RopeKeepsNormsAndMakesLogitsTheClosedFormOfThePositionDifference) {
  GaussianWorkload w{2, 64, 8, 8, 1.0, 5};
  const QkvArrays base = gaussian_inputs(w);
  QkvArrays in = base;
  WorkloadModifier rope = modifier(ModifierKind::rope);
  rope.rope_theta = 100.0;
  apply_modifiers(in, {rope}, 5, 1.0, std::sqrt(8.0));
  const std::size_t d = 8, n = 64;
  for (std::size_t row = 0; row < 2 * n; ++row) {
    EXPECT_NEAR(dot(&in.q.data[row * d], &in.q.data[row * d], d), dot(&base.q.data[row * d], &base.q.data[row * d], d),
                1e-12);
  }
  // q_i·k_j after rotation = Σ_t cos(φ_t)(q0 k0 + q1 k1) + sin(φ_t)(q1 k0 − q0 k1), φ_t = (j − i)·θ^(−2t/d),
  // with q, k the unrotated pairs.
  for (std::size_t h = 0; h < 2; ++h) {
    for (std::size_t i : {0u, 3u, 17u, 63u}) {
      for (std::size_t j : {0u, 5u, 40u, 63u}) {
        const double* q = &base.q.data[(h * n + i) * d];
        const double* k = &base.k.data[(h * n + j) * d];
        double expected = 0;
        for (std::size_t t = 0; t < d / 2; ++t) {
          const double phi = (static_cast<double>(j) - static_cast<double>(i)) * std::pow(100.0, -2.0 * t / d);
          expected += std::cos(phi) * (q[2 * t] * k[2 * t] + q[2 * t + 1] * k[2 * t + 1]) +
                      std::sin(phi) * (q[2 * t + 1] * k[2 * t] - q[2 * t] * k[2 * t + 1]);
        }
        EXPECT_NEAR(dot(&in.q.data[(h * n + i) * d], &in.k.data[(h * n + j) * d], d), expected, 1e-11);
      }
    }
  }
  // Same vectors at every position: the logit depends on i − j only.
  QkvArrays same = base;
  for (std::size_t i = 1; i < n; ++i) {
    std::copy_n(&base.q.data[0], d, &same.q.data[i * d]);
    std::copy_n(&base.k.data[0], d, &same.k.data[i * d]);
  }
  apply_modifiers(same, {rope}, 5, 1.0, std::sqrt(8.0));
  for (std::size_t i = 0; i + 7 < n; i += 5) {
    EXPECT_NEAR(dot(&same.q.data[(i + 7) * d], &same.k.data[i * d], d), dot(&same.q.data[7 * d], &same.k.data[0], d),
                1e-11);
  }
}

TEST(WorkloadModifiers, OutlierChannelsHaveTheRequestedVarianceAndTheOthersAreUntouched) {
  GaussianWorkload w{4, 4096, 16, 16, 0.5, 11};
  const QkvArrays base = gaussian_inputs(w);
  QkvArrays in = base;
  WorkloadModifier m = modifier(ModifierKind::outliers);
  m.outlier_channels = 3;
  m.outlier_magnitude = 6.0;
  apply_modifiers(in, {m}, 11, 0.5, 4.0);
  const std::vector<std::size_t> channels = outlier_channels(16, 3, 11, 0);
  ASSERT_EQ(channels.size(), 3u);
  const double rows = 4.0 * 4096;
  for (std::size_t ch = 0; ch < 16; ++ch) {
    const bool outlier = std::find(channels.begin(), channels.end(), ch) != channels.end();
    double sum_sq = 0;
    for (std::size_t r = 0; r < 4 * 4096; ++r) {
      sum_sq += in.k.data[r * 16 + ch] * in.k.data[r * 16 + ch];
      if (!outlier) {
        ASSERT_EQ(in.k.data[r * 16 + ch], base.k.data[r * 16 + ch]);
        ASSERT_EQ(in.q.data[r * 16 + ch], base.q.data[r * 16 + ch]);
      }
    }
    const double expected = (outlier ? 36.0 : 1.0) * 0.25;
    // The sample second moment of N(0, σ²) has relative standard error sqrt(2 / rows): allow 5 of them.
    EXPECT_NEAR(sum_sq / rows / expected, 1.0, 5 * std::sqrt(2.0 / rows)) << "channel " << ch;
  }
}

TEST(WorkloadModifiers, KeyBiasAddsOneDirectionOfTheRequestedNormToEveryKeyOfAHead) {
  GaussianWorkload w{3, 50, 8, 8, 1.0, 2};
  const QkvArrays base = gaussian_inputs(w);
  QkvArrays in = base;
  WorkloadModifier m = modifier(ModifierKind::key_bias);
  m.key_bias_norm = 2.5;
  apply_modifiers(in, {m}, 2, 1.0, std::sqrt(8.0));
  EXPECT_EQ(in.q.data, base.q.data);
  for (std::size_t h = 0; h < 3; ++h) {
    std::vector<double> first(8);
    for (std::size_t t = 0; t < 8; ++t) first[t] = in.k.data[h * 50 * 8 + t] - base.k.data[h * 50 * 8 + t];
    EXPECT_NEAR(std::sqrt(dot(first.data(), first.data(), 8)), 2.5, 1e-12);
    for (std::size_t j = 1; j < 50; ++j) {
      for (std::size_t t = 0; t < 8; ++t) {
        EXPECT_NEAR(in.k.data[(h * 50 + j) * 8 + t] - base.k.data[(h * 50 + j) * 8 + t], first[t], 1e-12);
      }
    }
  }
}

TEST(WorkloadModifiers, SinkLogitsHaveTheRequestedMeanOverQueries) {
  const std::size_t n = 8192, d = 16;
  GaussianWorkload w{2, n, d, d, 1.0, 9};
  QkvArrays in = gaussian_inputs(w);
  WorkloadModifier m = modifier(ModifierKind::sink);
  m.sink_tokens = 2;
  m.sink_logit = 12.0;
  m.sink_alignment = 4.0;
  const double c = std::sqrt(static_cast<double>(d));
  apply_modifiers(in, {m}, 9, 1.0, c);
  for (std::size_t h = 0; h < 2; ++h) {
    for (std::size_t j = 0; j < 2; ++j) {
      double sum = 0, sum_sq = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double s = dot(&in.q.data[(h * n + i) * d], &in.k.data[(h * n + j) * d], d) / c;
        sum += s;
        sum_sq += s * s;
      }
      const double mean = sum / n, sd = std::sqrt(sum_sq / n - mean * mean);
      // s = logit·(1 + N(0, 1)/alignment): standard deviation 3, standard error of the mean 3/sqrt(n).
      EXPECT_NEAR(mean, 12.0, 5 * 3.0 / std::sqrt(static_cast<double>(n)));
      EXPECT_NEAR(sd, 3.0, 0.1);
    }
  }
}

TEST(WorkloadModifiers, FittedReproducesEachHeadsMeanAndCovarianceWithinSamplingError) {
  // A source with a known, strongly correlated covariance per head.
  const std::size_t heads = 2, m = 20000, d = 4, n = 40000;
  GaussianWorkload w{heads, m, d, d, 1.0, 4};
  QkvArrays source = gaussian_inputs(w);
  const double mix[4][4] = {{2, 0, 0, 0}, {1, 1, 0, 0}, {0, -1, 0.5, 0}, {0.3, 0, 0, 3}};
  for (HeadArrays* a : {&source.q, &source.k, &source.v}) {
    for (std::size_t h = 0; h < heads; ++h) {
      for (std::size_t i = 0; i < m; ++i) {
        double* x = &a->data[(h * m + i) * d];
        double y[4] = {};
        for (std::size_t r = 0; r < d; ++r) {
          for (std::size_t t = 0; t < d; ++t) y[r] += mix[r][t] * x[t];
        }
        for (std::size_t r = 0; r < d; ++r) x[r] = y[r] + static_cast<double>(h) * 3.0 - static_cast<double>(r);
      }
    }
  }
  const QkvArrays fitted = fitted_inputs(source, n, 17);
  ASSERT_EQ(fitted.q.n_tokens, n);
  auto moments = [&](const HeadArrays& a, std::size_t h, std::size_t rows, std::vector<double>& mean,
                     std::vector<double>& cov) {
    mean.assign(d, 0);
    cov.assign(d * d, 0);
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t t = 0; t < d; ++t) mean[t] += a.data[(h * rows + i) * d + t] / rows;
    }
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t r = 0; r < d; ++r) {
        for (std::size_t t = 0; t < d; ++t) {
          cov[r * d + t] += (a.data[(h * rows + i) * d + r] - mean[r]) * (a.data[(h * rows + i) * d + t] - mean[t]) /
                            (rows - 1);
        }
      }
    }
  };
  for (auto [src, fit] : {std::pair{&source.q, &fitted.q}, {&source.k, &fitted.k}, {&source.v, &fitted.v}}) {
    for (std::size_t h = 0; h < heads; ++h) {
      std::vector<double> m_src, c_src, m_fit, c_fit;
      moments(*src, h, m, m_src, c_src);
      moments(*fit, h, n, m_fit, c_fit);
      for (std::size_t r = 0; r < d; ++r) {
        // Standard error of the fitted mean: sqrt(var / n); of a covariance entry:
        // sqrt((var_r var_t + cov_rt²) / n). Allow 5 of them (plus the source's own).
        const double se_mean = std::sqrt(c_src[r * d + r] * (1.0 / n + 1.0 / m));
        EXPECT_NEAR(m_fit[r], m_src[r], 5 * se_mean);
        for (std::size_t t = 0; t < d; ++t) {
          const double se_cov = std::sqrt((c_src[r * d + r] * c_src[t * d + t] + c_src[r * d + t] * c_src[r * d + t]) *
                                          (1.0 / n + 1.0 / m));
          EXPECT_NEAR(c_fit[r * d + t], c_src[r * d + t], 5 * se_cov) << r << "," << t;
        }
      }
    }
  }
}

TEST(WorkloadModifiers, BadParametersAreRefusedWithOneLineNamingTheValue) {
  GaussianWorkload w{1, 16, 6, 6, 1.0, 1};
  QkvArrays in = gaussian_inputs(w);
  GaussianWorkload odd{1, 16, 5, 5, 1.0, 1};
  QkvArrays odd_in = gaussian_inputs(odd);
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] { apply_modifiers(odd_in, {modifier(ModifierKind::rope)}, 1, 1.0, 2.0); }),
            "rope: d_key = 5 is invalid (must be even)");
  WorkloadModifier outliers = modifier(ModifierKind::outliers);
  outliers.outlier_channels = 7;
  EXPECT_EQ(message([&] { apply_modifiers(in, {outliers}, 1, 1.0, 2.0); }),
            "outliers: channels = 7 is invalid (must be 1 .. d_key = 6)");
  WorkloadModifier sink = modifier(ModifierKind::sink);
  sink.sink_tokens = 17;
  EXPECT_EQ(message([&] { apply_modifiers(in, {sink}, 1, 1.0, 2.0); }),
            "sink: tokens = 17 is invalid (must be 1 .. n_tokens = 16)");
  WorkloadModifier bias = modifier(ModifierKind::key_bias);
  bias.key_bias_norm = -1;
  EXPECT_EQ(message([&] { apply_modifiers(in, {bias}, 1, 1.0, 2.0); }),
            "key-bias: norm = -1 is invalid (must be finite and >= 0)");
  EXPECT_EQ(message([&] { modifier_by_name("rotary"); }),
            "workload modifier 'rotary' is unknown (allowed: rope, outliers, key-bias, sink)");
  EXPECT_EQ(message([&] { parse_modifier_list("rope+sink+rope"); }),
            "workload modifiers 'rope+sink+rope': 'rope' is listed twice");
  EXPECT_EQ(message([&] { parse_modifier_list("rope+"); }),
            "workload modifier '' is unknown (allowed: rope, outliers, key-bias, sink)");
  EXPECT_EQ(parse_modifier_list("sink+key-bias"), (std::vector<ModifierKind>{ModifierKind::sink, ModifierKind::key_bias}));
  EXPECT_TRUE(parse_modifier_list("none").empty());
  GaussianWorkload one{1, 1, 4, 4, 1.0, 1};
  EXPECT_EQ(message([&] { fitted_inputs(gaussian_inputs(one), 10, 1); }),
            "fitted: the source has 1 token(s) per head (needs >= 2 to estimate a covariance)");
}

}  // namespace
}  // namespace satalab
