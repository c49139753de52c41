// Long-context drift (experiment/drift.hpp; docs/architecture.md §10).
#include "satalab/experiment/drift.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "satalab/attention/sata_state.hpp"
#include "satalab/attention/streaming_exact.hpp"
#include "satalab/basis/feature_map.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/compensated_sum.hpp"
#include "satalab/numeric/rounding.hpp"

namespace satalab {
namespace {

using Compensated = CompensatedSum;  // numeric/compensated_sum.hpp

// x rounded once into the policy's input format, in carrier T.
template <class T>
void to_input(const double* in, T* out, std::size_t n, const PrecisionPolicy& policy) {
  round_to(in, out, n, policy.input);
}

// The Taylor oracle's sums (double) and the baseline's online softmax (T) of one key block.
template <class T>
struct BlockPart {
  std::vector<double> z_terms, num_terms;  // [P], [P × d_value]
  T max_score = T(0);
  std::vector<T> num;  // d_value
  T den = T(0);
};

template <class T>
BlockPart<T> block_part(const CounterWorkload& w, std::size_t head, const double* q_in, const T* q_policy,
                        std::uint64_t begin, std::uint64_t end, std::size_t P, const PrecisionPolicy& policy,
                        const PolicyRounders<T>& round, T c_policy) {
  const std::size_t dk = w.d_key, dv = w.d_value;
  BlockPart<T> out;
  out.z_terms.assign(P, 0.0);
  out.num_terms.assign(P * dv, 0.0);
  out.num.assign(dv, T(0));
  std::vector<double> k(dk), v(dv);
  std::vector<T> kp(dk), vp(dv);
  const double c = std::sqrt(static_cast<double>(dk));
  const auto compute_exp = [&](T x) {
    return static_cast<T>(round_to(std::exp(static_cast<double>(x)), policy.compute));
  };
  bool first = true;
  for (std::uint64_t j = begin; j < end; ++j) {
    counter_row(w, QkvTensor::k, head, j, k.data());
    counter_row(w, QkvTensor::v, head, j, v.data());
    to_input(k.data(), kp.data(), dk, policy);
    to_input(v.data(), vp.data(), dv, policy);
    // The oracle, fp64 on the policy's inputs: T_P(s) term by term.
    double dot = 0;
    for (std::size_t t = 0; t < dk; ++t) dot += q_in[t] * static_cast<double>(kp[t]);
    const double s = dot / c;
    double power = 1;
    for (std::size_t p = 0; p < P; ++p) {
      out.z_terms[p] += power;
      for (std::size_t t = 0; t < dv; ++t) out.num_terms[p * dv + t] += power * static_cast<double>(vp[t]);
      power *= s / static_cast<double>(p + 1);
    }
    // The baseline at the policy: products rounded into the accumulate
    // format, sums in it, s and the weights in the compute format.
    T acc_dot = T(0);
    for (std::size_t t = 0; t < dk; ++t) acc_dot = round.accumulate(acc_dot + round.accumulate(q_policy[t] * kp[t]));
    const T sp = round.compute(acc_dot / c_policy);
    if (first || sp > out.max_score) {
      if (!first) {
        const T f = compute_exp(round.compute(out.max_score - sp));
        for (std::size_t t = 0; t < dv; ++t) out.num[t] = round.accumulate(out.num[t] * f);
        out.den = round.accumulate(out.den * f);
      }
      out.max_score = sp;
      first = false;
    }
    const T weight = compute_exp(round.compute(sp - out.max_score));
    for (std::size_t t = 0; t < dv; ++t) out.num[t] = round.accumulate(out.num[t] + round.accumulate(weight * vp[t]));
    out.den = round.accumulate(out.den + weight);
  }
  return out;
}

template <class T>
DriftTruth truth_at(const CounterWorkload& w, std::size_t head, std::uint64_t position, const PrecisionPolicy& policy,
                    std::size_t P) {
  const std::size_t dk = w.d_key, dv = w.d_value;
  DriftTruth out;
  const StreamingRow exact = streaming_exact_row(w, head, position, std::sqrt(static_cast<double>(dk)));
  out.y = exact.y;
  out.z = exact.z;
  out.max_score = exact.max_score;

  const PolicyRounders<T> round(policy);
  std::vector<double> q(dk), q_in(dk);
  std::vector<T> qp(dk);
  counter_row(w, QkvTensor::q, head, position, q.data());
  to_input(q.data(), qp.data(), dk, policy);
  for (std::size_t t = 0; t < dk; ++t) q_in[t] = static_cast<double>(qp[t]);
  const T c_policy = static_cast<T>(round_to(std::sqrt(static_cast<double>(dk)), policy.compute));

  const std::uint64_t n_keys = position + 1;
  const std::uint64_t blocks = (n_keys + kStreamingKeyBlock - 1) / kStreamingKeyBlock;
  std::vector<BlockPart<T>> parts(static_cast<std::size_t>(blocks));
  const auto count = static_cast<long long>(blocks);
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
  for (long long b = 0; b < count; ++b) {
    const std::uint64_t begin = static_cast<std::uint64_t>(b) * kStreamingKeyBlock;
    parts[static_cast<std::size_t>(b)] = block_part<T>(w, head, q_in.data(), qp.data(), begin,
                                                       std::min(n_keys, begin + kStreamingKeyBlock), P, policy,
                                                       round, c_policy);
  }
  // The oracle: blocks merged in order, compensated.
  std::vector<Compensated> z_terms(P), num_terms(P * dv);
  for (const auto& part : parts) {
    for (std::size_t p = 0; p < P; ++p) z_terms[p].add(part.z_terms[p]);
    for (std::size_t i = 0; i < P * dv; ++i) num_terms[i].add(part.num_terms[i]);
  }
  out.taylor_z_terms.resize(P);
  Compensated den;
  for (std::size_t p = 0; p < P; ++p) {
    out.taylor_z_terms[p] = z_terms[p].value();
    den.add(out.taylor_z_terms[p]);
  }
  out.taylor_y.resize(dv);
  for (std::size_t t = 0; t < dv; ++t) {
    Compensated num;
    for (std::size_t p = 0; p < P; ++p) num.add(num_terms[p * dv + t].value());
    out.taylor_y[t] = num.value() / den.value();
  }
  // The baseline: blocks merged in order in the accumulate format.
  T m = parts.front().max_score;
  for (const auto& part : parts) m = std::max(m, part.max_score);
  std::vector<T> num(dv, T(0));
  T d = T(0);
  for (const auto& part : parts) {
    const T f = static_cast<T>(
        round_to(std::exp(static_cast<double>(round.compute(part.max_score - m))), policy.compute));
    for (std::size_t t = 0; t < dv; ++t) num[t] = round.accumulate(num[t] + round.accumulate(part.num[t] * f));
    d = round.accumulate(d + round.accumulate(part.den * f));
  }
  out.baseline_y.resize(dv);
  for (std::size_t t = 0; t < dv; ++t) out.baseline_y[t] = static_cast<double>(round.accumulate(num[t] / d));
  out.baseline_z = static_cast<double>(d);
  return out;
}

CounterWorkload workload_of(const DriftConfig& c) {
  CounterWorkload w;
  w.heads = c.heads;
  w.d_key = c.d_key;
  w.d_value = c.d_value;
  w.scale = c.scale;
  w.seed = c.seed;
  return w;
}

}  // namespace

void validate_drift_config(const DriftConfig& c) {
  if (c.heads < 1 || c.d_key < 1 || c.d_value < 1) {
    throw InvalidArgument(fmt::format("heads = {}, d_key = {}, d_value = {} (all must be >= 1)", c.heads, c.d_key,
                                      c.d_value));
  }
  if (c.taylor_terms < 1 || c.taylor_terms > SymmetricBasis::kMaxTaylorTerms) {
    throw InvalidArgument(fmt::format("taylor_terms P = {} is invalid (allowed: 1 .. {})", c.taylor_terms,
                                      SymmetricBasis::kMaxTaylorTerms));
  }
  const PrecisionPolicy policy = precision_policy(c.precision);
  if (policy.carrier == Carrier::mp) {
    throw InvalidArgument(fmt::format("precision '{}' is invalid for drift (allowed: a float or double carrier, "
                                      "e.g. fp32, fp16-acc32, bf16, fp16, fp64)",
                                      c.precision));
  }
  if (c.workload != "gaussian") {
    throw InvalidArgument(fmt::format("workload '{}' is invalid for drift (allowed: gaussian)", c.workload));
  }
  if (!(std::isfinite(c.scale) && c.scale > 0)) {
    throw InvalidArgument(fmt::format("scale = {} is invalid (must be finite and > 0)", c.scale));
  }
  if (c.modes.empty()) throw InvalidArgument("modes is empty (allowed: plain, compensated, blocked, fp64)");
  if (std::set<StateAccumulation>(c.modes.begin(), c.modes.end()).size() != c.modes.size()) {
    throw InvalidArgument("modes lists a mode twice (each of plain, compensated, blocked, fp64 at most once)");
  }
  if (c.state_block < 1) throw InvalidArgument(fmt::format("state_block = {} is invalid (must be >= 1)", c.state_block));
  if (c.positions < 2) throw InvalidArgument(fmt::format("positions = {} is invalid (must be >= 2)", c.positions));
  if (c.first_position < 1) throw InvalidArgument("first truth position 0 is invalid (must be >= 1)");
  if (c.tokens <= c.first_position + 1) {
    throw InvalidArgument(fmt::format("tokens N = {} is invalid (must be > {}: above the first truth position {})",
                                      c.tokens, c.first_position + 1, c.first_position));
  }
}

std::vector<std::uint64_t> drift_positions(const DriftConfig& c) {
  validate_drift_config(c);
  const double first = static_cast<double>(c.first_position), last = static_cast<double>(c.tokens - 1);
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < c.positions; ++i) {
    const double f = static_cast<double>(i) / static_cast<double>(c.positions - 1);
    auto p = static_cast<std::uint64_t>(std::llround(first * std::pow(last / first, f)));
    p = std::clamp<std::uint64_t>(p, c.first_position, c.tokens - 1);
    if (out.empty() || p > out.back()) out.push_back(p);
  }
  return out;
}

std::string drift_config_text(const DriftConfig& c) {
  std::string modes;
  for (auto m : c.modes) {
    if (!modes.empty()) modes += ",";
    modes += state_accumulation_name(m);
  }
  return fmt::format(
      "tokens={}\nheads={}\nd_key={}\nd_value={}\ntaylor_terms={}\nprecision={}\nmodes={}\nstate_block={}\n"
      "workload={}\nscale={}\nseed={}\nfirst_position={}\npositions={}\n",
      c.tokens, c.heads, c.d_key, c.d_value, c.taylor_terms, c.precision, modes, c.state_block, c.workload, c.scale,
      c.seed, c.first_position, c.positions);
}

DriftTruth drift_truth(const CounterWorkload& w, std::size_t head, std::uint64_t position,
                       const PrecisionPolicy& policy, std::size_t taylor_terms) {
  switch (policy.carrier) {
    case Carrier::f32: return truth_at<float>(w, head, position, policy, taylor_terms);
    case Carrier::f64: return truth_at<double>(w, head, position, policy, taylor_terms);
    default: break;
  }
  throw InvalidArgument(fmt::format("precision '{}' is invalid for drift (allowed: a float or double carrier)",
                                    policy.name));
}

struct DriftRun::Impl {
  DriftConfig config;
  PrecisionPolicy policy;
  CounterWorkload workload;
  DriftResults results;
  std::uint64_t tokens_done = 0;
  std::shared_ptr<const SymmetricBasis> basis;
  // [mode][head], one carrier used
  std::vector<std::vector<std::unique_ptr<SataState<float>>>> f32;
  std::vector<std::vector<std::unique_ptr<SataState<double>>>> f64;

  template <class T>
  std::vector<std::vector<std::unique_ptr<SataState<T>>>>& states() {
    if constexpr (std::is_same_v<T, float>) {
      return f32;
    } else {
      return f64;
    }
  }

  template <class T>
  void make_states() {
    auto& s = states<T>();
    s.resize(config.modes.size());
    for (std::size_t m = 0; m < config.modes.size(); ++m) {
      AttentionOptions options;
      options.taylor_terms = config.taylor_terms;
      options.state_accumulation = config.modes[m];
      options.state_block = config.state_block;
      s[m].push_back(std::make_unique<SataState<T>>(basis, config.d_value, policy, options));
      for (std::size_t h = 1; h < config.heads; ++h) s[m].push_back(s[m].front()->empty_sibling());
    }
  }

  // SATA's output and the state's z column per degree, read in fp64.
  template <class T>
  DriftSata record(const SataState<T>& state, const T* q, const T* y, T z) const {
    const std::size_t dk = config.d_key, dv = config.d_value, P = config.taylor_terms;
    DriftSata out;
    out.y.assign(y, y + dv);
    out.z = static_cast<double>(z);
    const auto& coefficients = state.coefficients();
    std::vector<double> qd(dk), features(basis->total_size());
    for (std::size_t t = 0; t < dk; ++t) {
      qd[t] = static_cast<double>(q[t]) *
              (coefficients.prescale_inputs ? static_cast<double>(coefficients.input_scale) : 1.0);
    }
    const Rounder<double> exact(precision_policy("fp64").accumulate, Carrier::f64);
    monomial_features(*basis, qd.data(), features.data(), exact);
    out.z_terms.assign(P, 0.0);
    const auto& values = state.values();
    for (std::size_t p = 0; p < P; ++p) {
      double sum = 0;
      for (std::size_t r = basis->offset(p); r < basis->offset(p + 1); ++r) {
        const double a = coefficients.query_is_one ? 1.0 : static_cast<double>(coefficients.query[r]);
        sum += a * features[r] * static_cast<double>(values[r * (dv + 1) + dv]);
      }
      out.z_terms[p] = sum;
    }
    return out;
  }

  template <class T>
  void decode(std::uint64_t from, std::uint64_t to, bool record_last) {
    auto& s = states<T>();
    const std::size_t dk = config.d_key, dv = config.d_value, modes = config.modes.size();
    const auto heads = static_cast<long>(config.heads);
    const std::size_t position_index = results.done_positions;
    // Each head on one thread, in token order: the numbers do not depend on the thread count.
#pragma omp parallel for schedule(static, 1)
    for (long hh = 0; hh < heads; ++hh) {
      const auto h = static_cast<std::size_t>(hh);
      std::vector<double> q(dk), k(dk), v(dv);
      std::vector<T> qp(dk), kp(dk), vp(dv), y(dv);
      T z = T(0);
      for (std::uint64_t t = from; t < to; ++t) {
        counter_row(workload, QkvTensor::q, h, t, q.data());
        counter_row(workload, QkvTensor::k, h, t, k.data());
        counter_row(workload, QkvTensor::v, h, t, v.data());
        to_input(q.data(), qp.data(), dk, policy);
        to_input(k.data(), kp.data(), dk, policy);
        to_input(v.data(), vp.data(), dv, policy);
        for (std::size_t m = 0; m < modes; ++m) {
          s[m][h]->step(qp.data(), kp.data(), vp.data(), y.data(), &z);
          if (record_last && t + 1 == to) results.sata[m][h][position_index] = record(*s[m][h], qp.data(), y.data(), z);
        }
      }
    }
  }
};

DriftRun::DriftRun(const DriftConfig& config) : impl_(std::make_unique<Impl>()) {
  validate_drift_config(config);
  Impl& d = *impl_;
  d.config = config;
  d.policy = precision_policy(config.precision);
  d.workload = workload_of(config);
  d.basis = std::make_shared<const SymmetricBasis>(config.d_key, config.taylor_terms);
  d.results.positions = drift_positions(config);
  const std::size_t n = d.results.positions.size();
  d.results.truth.assign(config.heads, std::vector<DriftTruth>(n));
  d.results.sata.assign(config.modes.size(),
                        std::vector<std::vector<DriftSata>>(config.heads, std::vector<DriftSata>(n)));
  if (d.policy.carrier == Carrier::f32) {
    d.make_states<float>();
  } else {
    d.make_states<double>();
  }
}

DriftRun::~DriftRun() = default;

std::uint64_t DriftRun::tokens_done() const { return impl_->tokens_done; }
const DriftConfig& DriftRun::config() const { return impl_->config; }
const DriftResults& DriftRun::results() const { return impl_->results; }

void DriftRun::advance(std::uint64_t until) {
  Impl& d = *impl_;
  until = std::min(until, d.config.tokens);
  while (d.tokens_done < until) {
    const auto& positions = d.results.positions;
    const std::size_t next = d.results.done_positions;
    // Stop right after the step of the next truth position, if it comes first.
    std::uint64_t to = until;
    bool at_position = false;
    if (next < positions.size() && positions[next] < until) {
      to = positions[next] + 1;
      at_position = true;
    }
    if (d.policy.carrier == Carrier::f32) {
      d.decode<float>(d.tokens_done, to, at_position);
    } else {
      d.decode<double>(d.tokens_done, to, at_position);
    }
    d.tokens_done = to;
    if (at_position) {
      for (std::size_t h = 0; h < d.config.heads; ++h) {
        d.results.truth[h][next] = drift_truth(d.workload, h, positions[next], d.policy, d.config.taylor_terms);
      }
      ++d.results.done_positions;
    }
  }
}

std::vector<std::vector<double>> DriftRun::state_snapshots() const {
  const Impl& d = *impl_;
  std::vector<std::vector<double>> out;
  for (std::size_t m = 0; m < d.config.modes.size(); ++m) {
    for (std::size_t h = 0; h < d.config.heads; ++h) {
      out.push_back(d.policy.carrier == Carrier::f32 ? d.f32[m][h]->snapshot() : d.f64[m][h]->snapshot());
    }
  }
  return out;
}

void DriftRun::restore(std::uint64_t tokens_done, const std::vector<std::vector<double>>& snapshots,
                       const DriftResults& results) {
  Impl& d = *impl_;
  if (snapshots.size() != d.config.modes.size() * d.config.heads) {
    throw InvalidArgument(fmt::format("drift checkpoint holds {} states (expected {} modes x {} heads)",
                                      snapshots.size(), d.config.modes.size(), d.config.heads));
  }
  if (tokens_done > d.config.tokens || results.positions != d.results.positions ||
      results.truth.size() != d.results.truth.size() || results.sata.size() != d.results.sata.size()) {
    throw InvalidArgument("drift checkpoint does not match the configuration (positions or sizes differ)");
  }
  std::size_t i = 0;
  for (std::size_t m = 0; m < d.config.modes.size(); ++m) {
    for (std::size_t h = 0; h < d.config.heads; ++h, ++i) {
      if (d.policy.carrier == Carrier::f32) {
        d.f32[m][h]->restore(tokens_done, snapshots[i]);
      } else {
        d.f64[m][h]->restore(tokens_done, snapshots[i]);
      }
    }
  }
  d.tokens_done = tokens_done;
  d.results = results;
}

}  // namespace satalab

namespace satalab {

RowError drift_row_error(const std::vector<double>& y, const std::vector<double>& ref) {
  RowError e;
  if (y.empty() || y.size() != ref.size()) {
    e.abs = e.rel = std::numeric_limits<double>::quiet_NaN();
    return e;
  }
  double diff2 = 0, ref2 = 0;
  for (std::size_t t = 0; t < y.size(); ++t) {
    const double d = y[t] - ref[t];
    e.abs = std::max(e.abs, std::fabs(d));
    diff2 += d * d;
    ref2 += ref[t] * ref[t];
  }
  e.rel = std::sqrt(diff2) / std::sqrt(ref2);
  return e;
}

}  // namespace satalab
