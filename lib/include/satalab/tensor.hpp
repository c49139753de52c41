#pragma once
// The one tensor type of io, workloads and attention: a row-major
// [heads, n_tokens, dim] array in a scalar T (the carrier in the kernels,
// double at the library's edges). HeadArrays is the float64 one.
#include <cstddef>
#include <utility>
#include <vector>

namespace satalab {

template <class T>
struct HeadTensor {
  std::size_t heads = 0, n_tokens = 0, dim = 0;
  std::vector<T> data;

  HeadTensor() = default;
  HeadTensor(std::size_t h, std::size_t n, std::size_t d) : heads(h), n_tokens(n), dim(d), data(h * n * d) {}
  HeadTensor(std::size_t h, std::size_t n, std::size_t d, std::vector<T> values)
      : heads(h), n_tokens(n), dim(d), data(std::move(values)) {}
  std::size_t size() const { return heads * n_tokens * dim; }
  T* head(std::size_t h) { return data.data() + h * n_tokens * dim; }
  const T* head(std::size_t h) const { return data.data() + h * n_tokens * dim; }
  T* row(std::size_t h, std::size_t i) { return head(h) + i * dim; }
  const T* row(std::size_t h, std::size_t i) const { return head(h) + i * dim; }
};

// A row-major [heads, n_tokens, dim] array of float64.
using HeadArrays = HeadTensor<double>;

struct QkvArrays {
  HeadArrays q, k, v;
};

}  // namespace satalab
