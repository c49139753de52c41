#pragma once
// A row-major [heads, n_tokens, dim] array in the carrier scalar T.
#include <cstddef>
#include <vector>

namespace satalab {

template <class T>
struct HeadTensor {
  std::size_t heads = 0, n_tokens = 0, dim = 0;
  std::vector<T> data;

  HeadTensor() = default;
  HeadTensor(std::size_t h, std::size_t n, std::size_t d) : heads(h), n_tokens(n), dim(d), data(h * n * d) {}
  T* head(std::size_t h) { return data.data() + h * n_tokens * dim; }
  const T* head(std::size_t h) const { return data.data() + h * n_tokens * dim; }
  T* row(std::size_t h, std::size_t i) { return head(h) + i * dim; }
  const T* row(std::size_t h, std::size_t i) const { return head(h) + i * dim; }
};

}  // namespace satalab
