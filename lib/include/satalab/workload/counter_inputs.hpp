#pragma once
// Inputs that need no cache: q, k and v of any (seed, head, position) drawn
// directly by a counter-based generator, so exact attention for a query at
// position 10^9 regenerates its keys instead of storing 10^9 of them
// (docs/architecture.md §1, question 4: long-context drift).
//
// Generator: Philox4x64-10 (Salmon et al., SC 2011) from Random123, the
// reference implementation by its authors (Debian's librandom123-dev; Boost
// 1.74 has no counter-based generator). Key = (seed, 0x5A7A1AB); counter =
// (position, head, tensor, block): each call gives four 64-bit words, turned
// into four N(0, 1) values by Box–Muller (Random123's boxmuller), for the
// channels 4·block … 4·block + 3 of that tensor's row. Entries of q and k are
// multiplied by `scale`, v's are N(0, 1), as gaussian_inputs draws them (but
// not the same numbers: the streams differ).
#include <cstddef>
#include <cstdint>

#include "satalab/workload/gaussian.hpp"

namespace satalab {

enum class QkvTensor : std::uint32_t { q = 0, k = 1, v = 2 };

struct CounterWorkload {
  std::size_t heads = 1, d_key = 8, d_value = 8;
  double scale = 1.0;
  std::uint64_t seed = 1;
};

// The row of `tensor` for (head, position): d_key values for q and k, d_value
// for v. The same numbers for the same arguments, whatever else was drawn.
void counter_row(const CounterWorkload& workload, QkvTensor tensor, std::size_t head, std::uint64_t position,
                 double* out);

// Positions 0 … n_tokens − 1 of every head, materialised (for tests and short
// contexts). InvalidArgument for zero sizes or a scale that is not finite and
// > 0; ResourceLimit past the memory limit.
QkvArrays counter_inputs(const CounterWorkload& workload, std::size_t n_tokens);

}  // namespace satalab
