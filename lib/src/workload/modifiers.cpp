// GCC 12 reports false "may be used uninitialized" inside its own AVX-512
// intrinsics when Eigen's products are inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "satalab/workload/modifiers.hpp"

#include <Eigen/Core>
#include <fmt/format.h>

#include <algorithm>
#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>
#include <boost/random/uniform_int_distribution.hpp>
#include <cmath>
#include <numeric>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace {

constexpr std::string_view kNames[] = {"rope", "outliers", "key-bias", "sink"};

// The generator of the modifier at `position` in the list: independent of the
// base distribution's stream (which uses `seed` itself) and of the others.
boost::random::mt19937_64 modifier_rng(std::uint64_t seed, std::size_t position) {
  return boost::random::mt19937_64(seed ^ (0x9E3779B97F4A7C15ull * (position + 1)));
}

std::vector<double> unit_direction(std::size_t d, boost::random::mt19937_64& rng) {
  boost::random::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> u(d);
  double norm = 0;
  while (norm == 0) {
    for (auto& x : u) x = normal(rng);
    norm = std::sqrt(std::inner_product(u.begin(), u.end(), u.begin(), 0.0));
  }
  for (auto& x : u) x /= norm;
  return u;
}

void require_positive(const char* modifier, const char* what, double value) {
  if (!std::isfinite(value) || value <= 0) {
    throw InvalidArgument(fmt::format("{}: {} = {} is invalid (must be finite and > 0)", modifier, what, value));
  }
}

void apply_rope(QkvArrays& in, double theta) {
  const std::size_t d = in.q.dim, n = in.q.n_tokens;
  if (d % 2 != 0) throw InvalidArgument(fmt::format("rope: d_key = {} is invalid (must be even)", d));
  if (!std::isfinite(theta) || theta <= 1) {
    throw InvalidArgument(fmt::format("rope: theta = {} is invalid (must be finite and > 1)", theta));
  }
  std::vector<double> frequency(d / 2);
  for (std::size_t t = 0; t < d / 2; ++t) frequency[t] = std::pow(theta, -2.0 * static_cast<double>(t) / static_cast<double>(d));
  for (HeadArrays* a : {&in.q, &in.k}) {
    for (std::size_t h = 0; h < a->heads; ++h) {
      for (std::size_t i = 0; i < n; ++i) {
        double* x = a->data.data() + (h * n + i) * d;
        for (std::size_t t = 0; t < d / 2; ++t) {
          const double angle = static_cast<double>(i) * frequency[t];
          const double c = std::cos(angle), s = std::sin(angle), x0 = x[2 * t], x1 = x[2 * t + 1];
          x[2 * t] = x0 * c - x1 * s;
          x[2 * t + 1] = x0 * s + x1 * c;
        }
      }
    }
  }
}

void apply_outliers(QkvArrays& in, const WorkloadModifier& m, std::uint64_t seed, std::size_t position) {
  const std::size_t d = in.q.dim;
  if (m.outlier_channels < 1 || m.outlier_channels > d) {
    throw InvalidArgument(fmt::format("outliers: channels = {} is invalid (must be 1 .. d_key = {})",
                                      m.outlier_channels, d));
  }
  require_positive("outliers", "magnitude", m.outlier_magnitude);
  const std::vector<std::size_t> channels = outlier_channels(d, m.outlier_channels, seed, position);
  for (HeadArrays* a : {&in.q, &in.k}) {
    for (std::size_t row = 0; row < a->heads * a->n_tokens; ++row) {
      for (std::size_t ch : channels) a->data[row * d + ch] *= m.outlier_magnitude;
    }
  }
}

void apply_key_bias(QkvArrays& in, double norm, std::uint64_t seed, std::size_t position) {
  if (!std::isfinite(norm) || norm < 0) {
    throw InvalidArgument(fmt::format("key-bias: norm = {} is invalid (must be finite and >= 0)", norm));
  }
  auto rng = modifier_rng(seed, position);
  const std::size_t d = in.k.dim, n = in.k.n_tokens;
  for (std::size_t h = 0; h < in.k.heads; ++h) {
    const std::vector<double> u = unit_direction(d, rng);
    for (std::size_t j = 0; j < n; ++j) {
      double* k = in.k.data.data() + (h * n + j) * d;
      for (std::size_t t = 0; t < d; ++t) k[t] += norm * u[t];
    }
  }
}

void apply_sink(QkvArrays& in, const WorkloadModifier& m, std::uint64_t seed, std::size_t position, double scale,
                double c) {
  const std::size_t d = in.k.dim, n = in.k.n_tokens;
  if (m.sink_tokens < 1 || m.sink_tokens > n) {
    throw InvalidArgument(fmt::format("sink: tokens = {} is invalid (must be 1 .. n_tokens = {})", m.sink_tokens, n));
  }
  if (!std::isfinite(m.sink_logit)) throw InvalidArgument(fmt::format("sink: logit = {} is invalid (must be finite)", m.sink_logit));
  require_positive("sink", "alignment", m.sink_alignment);
  const double a = m.sink_alignment * scale, b = m.sink_logit * c / a;
  auto rng = modifier_rng(seed, position);
  for (std::size_t h = 0; h < in.k.heads; ++h) {
    const std::vector<double> u = unit_direction(d, rng);
    for (std::size_t i = 0; i < n; ++i) {
      double* q = in.q.data.data() + (h * n + i) * d;
      for (std::size_t t = 0; t < d; ++t) q[t] += a * u[t];
    }
    for (std::size_t j = 0; j < m.sink_tokens; ++j) {
      double* k = in.k.data.data() + (h * n + j) * d;
      for (std::size_t t = 0; t < d; ++t) k[t] = b * u[t];
    }
  }
}

// The lower Cholesky factor of a symmetric positive definite matrix, in place
// (the upper triangle set to zero); false when a pivot is not positive.
// Written out rather than Eigen's LLT: the portable build routes Eigen's
// blocked Cholesky steps to BLAS routines (trsm, syrk) that satalab does not
// provide (docs/architecture.md §11); the matrices here are d_key × d_key.
bool cholesky_lower(Eigen::MatrixXd& a) {
  const Eigen::Index n = a.rows();
  for (Eigen::Index j = 0; j < n; ++j) {
    double pivot = a(j, j);
    for (Eigen::Index k = 0; k < j; ++k) pivot -= a(j, k) * a(j, k);
    if (!(pivot > 0)) return false;
    a(j, j) = std::sqrt(pivot);
    for (Eigen::Index i = j + 1; i < n; ++i) {
      double x = a(i, j);
      for (Eigen::Index k = 0; k < j; ++k) x -= a(i, k) * a(j, k);
      a(i, j) = x / a(j, j);
    }
    for (Eigen::Index i = 0; i < j; ++i) a(i, j) = 0;
  }
  return true;
}

}  // namespace

ModifierKind modifier_by_name(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kNames); ++i) {
    if (name == kNames[i]) return static_cast<ModifierKind>(i);
  }
  throw InvalidArgument(fmt::format("workload modifier '{}' is unknown (allowed: rope, outliers, key-bias, sink)", name));
}

std::string_view modifier_name(ModifierKind kind) { return kNames[static_cast<std::size_t>(kind)]; }

std::vector<std::string> modifier_names() { return {std::begin(kNames), std::end(kNames)}; }

std::vector<ModifierKind> parse_modifier_list(std::string_view text) {
  std::vector<ModifierKind> kinds;
  if (text.empty() || text == "none") return kinds;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = std::min(text.find('+', start), text.size());
    const ModifierKind kind = modifier_by_name(text.substr(start, end - start));
    if (std::find(kinds.begin(), kinds.end(), kind) != kinds.end()) {
      throw InvalidArgument(fmt::format("workload modifiers '{}': '{}' is listed twice", text, modifier_name(kind)));
    }
    kinds.push_back(kind);
    if (end == text.size()) break;
    start = end + 1;
  }
  return kinds;
}

std::vector<std::size_t> outlier_channels(std::size_t d_key, std::size_t count, std::uint64_t seed,
                                          std::size_t position) {
  auto rng = modifier_rng(seed, position);
  std::vector<std::size_t> all(d_key);
  std::iota(all.begin(), all.end(), std::size_t{0});
  // The first `count` entries of a Fisher–Yates shuffle.
  for (std::size_t i = 0; i < count && i + 1 < d_key; ++i) {
    boost::random::uniform_int_distribution<std::size_t> pick(i, d_key - 1);
    std::swap(all[i], all[pick(rng)]);
  }
  all.resize(count);
  std::sort(all.begin(), all.end());
  return all;
}

void apply_modifiers(QkvArrays& inputs, const std::vector<WorkloadModifier>& modifiers, std::uint64_t seed,
                     double scale, double softmax_denominator) {
  require_positive("workload", "scale", scale);
  require_positive("workload", "softmax_denominator", softmax_denominator);
  for (std::size_t position = 0; position < modifiers.size(); ++position) {
    const WorkloadModifier& m = modifiers[position];
    switch (m.kind) {
      case ModifierKind::rope: apply_rope(inputs, m.rope_theta); break;
      case ModifierKind::outliers: apply_outliers(inputs, m, seed, position); break;
      case ModifierKind::key_bias: apply_key_bias(inputs, m.key_bias_norm, seed, position); break;
      case ModifierKind::sink: apply_sink(inputs, m, seed, position, scale, softmax_denominator); break;
    }
  }
}

QkvArrays fitted_inputs(const QkvArrays& source, std::size_t n_tokens, std::uint64_t seed) {
  if (source.q.n_tokens < 2) {
    throw InvalidArgument(fmt::format("fitted: the source has {} token(s) per head (needs >= 2 to estimate a covariance)",
                                      source.q.n_tokens));
  }
  if (n_tokens < 1) throw InvalidArgument("fitted: n_tokens = 0 is invalid (must be >= 1)");
  const std::size_t heads = source.q.heads;
  const std::uint64_t rows = checked_mul(heads, n_tokens, "input size");
  check_memory(checked_mul(checked_mul(rows, 2 * source.q.dim + source.v.dim, "input size"), sizeof(double), "input bytes"),
               fmt::format("fitted inputs (heads={}, n_tokens={}, d_key={}, d_value={})", heads, n_tokens,
                           source.q.dim, source.v.dim));
  using Matrix = Eigen::MatrixXd;
  boost::random::mt19937_64 rng(seed);
  boost::random::normal_distribution<double> normal(0.0, 1.0);
  QkvArrays out;
  auto fit = [&](const HeadArrays& in, HeadArrays& a) {
    const std::size_t d = in.dim, m = in.n_tokens;
    a.heads = heads;
    a.n_tokens = n_tokens;
    a.dim = d;
    a.data.resize(a.size());
    for (std::size_t h = 0; h < heads; ++h) {
      const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> x(
          in.data.data() + h * m * d, static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(d));
      const Eigen::RowVectorXd mean = x.colwise().mean();
      const Matrix centred = x.rowwise() - mean;
      Matrix cov = centred.transpose() * centred / static_cast<double>(m - 1);
      Matrix L = cov;
      if (!cholesky_lower(L)) {
        cov.diagonal().array() += 1e-12 * std::max(cov.trace(), 1e-300) / static_cast<double>(d);
        L = cov;
        if (!cholesky_lower(L)) throw InvalidArgument("fitted: a covariance is not positive semi-definite");
      }
      Eigen::VectorXd z(static_cast<Eigen::Index>(d));
      for (std::size_t i = 0; i < n_tokens; ++i) {
        for (auto& e : z) e = normal(rng);
        const Eigen::VectorXd row = mean.transpose() + L * z;
        std::copy(row.data(), row.data() + d, a.data.data() + (h * n_tokens + i) * d);
      }
    }
  };
  fit(source.q, out.q);
  fit(source.k, out.k);
  fit(source.v, out.v);
  return out;
}

}  // namespace satalab
