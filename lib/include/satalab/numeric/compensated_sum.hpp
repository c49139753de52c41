#pragma once
// Neumaier's compensated sum in float64 (Kahan's summation improved for
// addends larger than the running sum): sum + compensation carries the total
// with about twice the working precision. The streaming exact attention and
// the drift command's merges across key blocks use it (docs/architecture.md,
// "Long-context drift").
#include <cmath>

namespace satalab {

struct CompensatedSum {
  double sum = 0, compensation = 0;
  void add(double x) {
    const double t = sum + x;
    compensation += std::fabs(sum) >= std::fabs(x) ? (sum - t) + x : (x - t) + sum;
    sum = t;
  }
  double value() const { return sum + compensation; }
};

}  // namespace satalab
