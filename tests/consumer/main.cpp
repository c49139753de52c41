// Uses the installed library through its public headers only: a precision
// policy by name, and SATA's decode state against the closed form of
// Taylor attention over two tokens.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "satalab/attention/runtime_sata_state.hpp"
#include "satalab/build_info.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace {

int failures = 0;

void expect_near(const char* what, double got, double want, double relative) {
  if (!(std::fabs(got - want) <= relative * std::fabs(want))) {
    std::fprintf(stderr, "consumer: %s = %.17g, want %.17g (relative tolerance %g)\n", what, got, want, relative);
    ++failures;
  }
}

// T_P(s) = sum_{p<P} s^p / p!, P = 4.
double taylor4(double s) { return 1 + s + s * s / 2 + s * s * s / 6; }

// Two tokens, one query; s = q.k (denominator 1). With keys, values and query
// exact in fp16 (small dyadic numbers), y = (w1 v1 + w2 v2) / (w1 + w2) and
// z = w1 + w2 with w = T_4(s), up to the rounding of the policy's formats.
void check_two_tokens(const char* precision, double relative) {
  satalab::AttentionOptions options;
  options.taylor_terms = 4;
  options.softmax_denominator = 1.0;
  satalab::RuntimeSataState state(2, 2, satalab::precision_policy(precision), options);
  const double k[] = {1.0, 0.0, 0.0, 1.0};   // k1 = (1, 0), k2 = (0, 1)
  const double v[] = {1.0, 2.0, 3.0, -1.0};  // v1 = (1, 2), v2 = (3, -1)
  state.append(k, v, 2);
  const double q[] = {0.5, 0.25};
  double y[2] = {0, 0}, z = 0;
  state.query(q, 1, y, &z);
  const double w1 = taylor4(0.5), w2 = taylor4(0.25);
  expect_near("z", z, w1 + w2, relative);
  expect_near("y[0]", y[0], (w1 * 1.0 + w2 * 3.0) / (w1 + w2), relative);
  expect_near("y[1]", y[1], (w1 * 2.0 - w2 * 1.0) / (w1 + w2), relative);
  if (state.tokens() != 2) {
    std::fprintf(stderr, "consumer: %s state holds %zu tokens, want 2\n", precision, state.tokens());
    ++failures;
  }
}

}  // namespace

int main() {
  const satalab::PrecisionPolicy policy = satalab::precision_policy("fp16-acc32");
  if (policy.name != "fp16-acc32" || policy.carrier != satalab::Carrier::f32) {
    std::fprintf(stderr, "consumer: precision_policy(\"fp16-acc32\") gave '%s'\n", policy.name.c_str());
    ++failures;
  }
  check_two_tokens("fp64", 1e-14);
  check_two_tokens("fp16-acc32", 3e-3);  // features rounded to fp16: a few units of 2^-11
  check_two_tokens("mp128", 1e-15);
  std::printf("consumer: %s, %s\n", failures == 0 ? "ok" : "FAILED", satalab::describe(satalab::build_info()).c_str());
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
