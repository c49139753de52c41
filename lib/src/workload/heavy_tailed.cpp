#include "satalab/workload/heavy_tailed.hpp"

#include <fmt/format.h>

#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>
#include <boost/random/student_t_distribution.hpp>
#include <cmath>
#include <utility>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {

QkvArrays heavy_tailed_inputs(const GaussianWorkload& w, double dof) {
  // The same checks, messages and memory accounting as gaussian_inputs.
  for (auto [name, value] : {std::pair{"heads", w.heads}, {"n_tokens", w.n_tokens}, {"d_key", w.d_key},
                             {"d_value", w.d_value}}) {
    if (value < 1) throw InvalidArgument(fmt::format("{} = {} is invalid (must be >= 1)", name, value));
  }
  if (!std::isfinite(w.scale) || w.scale <= 0) {
    throw InvalidArgument(fmt::format("scale = {} is invalid (must be finite and > 0)", w.scale));
  }
  if (!std::isfinite(dof) || dof <= 2) {
    throw InvalidArgument(fmt::format(
        "dof = {} is invalid (Student-t degrees of freedom must be finite and > 2, where the variance is finite)",
        dof));
  }
  const std::uint64_t rows = checked_mul(w.heads, w.n_tokens, "input size");
  const std::uint64_t elements =
      checked_add(checked_mul(rows, 2 * w.d_key, "input size"), checked_mul(rows, w.d_value, "input size"), "input size");
  check_memory(checked_mul(elements, sizeof(double), "input bytes"),
               fmt::format("heavy-tailed inputs q, k, v (heads={}, n_tokens={}, d_key={}, d_value={})", w.heads,
                           w.n_tokens, w.d_key, w.d_value));

  boost::random::mt19937_64 rng(w.seed);
  boost::random::student_t_distribution<double> student_t(dof);
  boost::random::normal_distribution<double> normal(0.0, 1.0);
  // Var(t_dof) = dof / (dof - 2): this factor makes the standard deviation `scale`.
  const double qk_scale = w.scale * std::sqrt((dof - 2.0) / dof);
  auto shape = [&](HeadArrays& a, std::size_t dim) {
    a.heads = w.heads;
    a.n_tokens = w.n_tokens;
    a.dim = dim;
    a.data.resize(a.size());
  };
  QkvArrays out;
  shape(out.q, w.d_key);
  for (auto& x : out.q.data) x = qk_scale * student_t(rng);
  shape(out.k, w.d_key);
  for (auto& x : out.k.data) x = qk_scale * student_t(rng);
  shape(out.v, w.d_value);
  for (auto& x : out.v.data) x = normal(rng);
  return out;
}

}  // namespace satalab
