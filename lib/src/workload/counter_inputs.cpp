#include "satalab/workload/counter_inputs.hpp"

#include <Random123/boxmuller.hpp>
#include <Random123/philox.h>
#include <fmt/format.h>

#include <cmath>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace {

constexpr std::uint64_t kStream = 0x5A7A1ABull;

void check(const CounterWorkload& w) {
  for (auto [name, value] : {std::pair{"heads", w.heads}, {"d_key", w.d_key}, {"d_value", w.d_value}}) {
    if (value < 1) throw InvalidArgument(fmt::format("{} = {} is invalid (must be >= 1)", name, value));
  }
  if (!std::isfinite(w.scale) || w.scale <= 0) {
    throw InvalidArgument(fmt::format("scale = {} is invalid (must be finite and > 0)", w.scale));
  }
}

}  // namespace

void counter_row(const CounterWorkload& w, QkvTensor tensor, std::size_t head, std::uint64_t position, double* out) {
  const std::size_t d = tensor == QkvTensor::v ? w.d_value : w.d_key;
  const double scale = tensor == QkvTensor::v ? 1.0 : w.scale;
  r123::Philox4x64 philox;
  const r123::Philox4x64::key_type key = {{w.seed, kStream}};
  for (std::size_t block = 0; 4 * block < d; ++block) {
    const r123::Philox4x64::ctr_type counter = {
        {position, static_cast<std::uint64_t>(head), static_cast<std::uint64_t>(tensor), block}};
    const r123::Philox4x64::ctr_type bits = philox(counter, key);
    const r123::double2 a = r123::boxmuller(bits[0], bits[1]);
    const r123::double2 b = r123::boxmuller(bits[2], bits[3]);
    const double values[4] = {a.x, a.y, b.x, b.y};
    for (std::size_t t = 0; t < 4 && 4 * block + t < d; ++t) out[4 * block + t] = scale * values[t];
  }
}

QkvArrays counter_inputs(const CounterWorkload& w, std::size_t n_tokens) {
  check(w);
  if (n_tokens < 1) throw InvalidArgument("n_tokens = 0 is invalid (must be >= 1)");
  const std::uint64_t rows = checked_mul(w.heads, n_tokens, "input size");
  check_memory(checked_mul(checked_mul(rows, 2 * w.d_key + w.d_value, "input size"), sizeof(double), "input bytes"),
               fmt::format("inputs q, k, v (heads={}, n_tokens={}, d_key={}, d_value={})", w.heads, n_tokens, w.d_key,
                           w.d_value));
  QkvArrays out;
  auto fill = [&](HeadArrays& a, std::size_t dim, QkvTensor tensor) {
    a.heads = w.heads;
    a.n_tokens = n_tokens;
    a.dim = dim;
    a.data.resize(a.size());
    for (std::size_t h = 0; h < w.heads; ++h) {
      for (std::size_t i = 0; i < n_tokens; ++i) counter_row(w, tensor, h, i, a.data.data() + (h * n_tokens + i) * dim);
    }
  };
  fill(out.q, w.d_key, QkvTensor::q);
  fill(out.k, w.d_key, QkvTensor::k);
  fill(out.v, w.d_value, QkvTensor::v);
  return out;
}

}  // namespace satalab
