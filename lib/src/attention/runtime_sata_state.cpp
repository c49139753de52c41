#include "satalab/attention/runtime_sata_state.hpp"

#include <fmt/format.h>
#include <cmath>
#include <variant>

#include "satalab/attention/sata_state.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/carrier.hpp"
#include "satalab/numeric/scalar_traits.hpp"

namespace satalab {
namespace {

template <class T>
using StatePtr = std::unique_ptr<SataState<T>>;
using AnyState = std::variant<StatePtr<float>, StatePtr<double>, StatePtr<mp_t>>;

// n values of `in` into the carrier, rounded once into the input format.
template <class T>
std::vector<T> to_carrier(const double* in, std::size_t n, const Rounder<T>& round_input) {
  std::vector<T> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = round_input(T(in[i]));
  return out;
}

}  // namespace

struct RuntimeSataState::Impl {
  std::size_t d_key = 0, d_value = 0;
  PrecisionPolicy policy;
  AttentionOptions options;
  std::shared_ptr<const SymmetricBasis> basis;
  AnyState state;

  // Calls f(SataState<T>&) with the carrier's precision set (new mp_t
  // values, such as the inputs converted into the carrier, take it).
  template <class F>
  decltype(auto) visit(F&& f) const {
    return std::visit(
        [&](const auto& ptr) -> decltype(auto) {
          const auto scope = ptr->context().precision_scope();
          return f(*ptr);
        },
        state);
  }

  void reset() {
    with_carrier(policy, [&]<class T>(CarrierTag<T>) {
      state = std::make_unique<SataState<T>>(basis, d_value, policy, options);
    });
  }
};

RuntimeSataState::RuntimeSataState(std::size_t d_key, std::size_t d_value,
                                   const PrecisionPolicy& policy, const AttentionOptions& options)
    : impl_(std::make_unique<Impl>()) {
  if (d_key < 1) throw InvalidArgument(fmt::format("d_key = {} is invalid (must be >= 1)", d_key));
  if (d_value < 1)
    throw InvalidArgument(fmt::format("d_value = {} is invalid (must be >= 1)", d_value));
  if (options.softmax_denominator &&
      !(std::isfinite(*options.softmax_denominator) && *options.softmax_denominator > 0)) {
    throw InvalidArgument(
        fmt::format("softmax denominator c = {} is invalid (must be finite and > 0)",
                    *options.softmax_denominator));
  }
  // Its state file and restore() hold values() only, which is all of the state for plain.
  if (options.state_accumulation != StateAccumulation::plain) {
    throw InvalidArgument(fmt::format("state accumulation '{}' is invalid for a runtime SATA state (allowed: plain)",
                                      state_accumulation_name(options.state_accumulation)));
  }
  validate_readout_polynomial(options.polynomial, options.taylor_terms);
  impl_->d_key = d_key;
  impl_->d_value = d_value;
  impl_->policy = policy;
  impl_->options = options;
  impl_->basis = std::make_shared<const SymmetricBasis>(d_key, options.taylor_terms);
  impl_->reset();
}

RuntimeSataState::~RuntimeSataState() = default;
RuntimeSataState::RuntimeSataState(RuntimeSataState&&) noexcept = default;
RuntimeSataState& RuntimeSataState::operator=(RuntimeSataState&&) noexcept = default;

void RuntimeSataState::append(const double* k, const double* v, std::size_t n) {
  impl_->visit([&](auto& state) {
    using T = std::remove_cvref_t<decltype(state.values()[0])>;
    const PolicyRounders<T> round(impl_->policy);
    const std::vector<T> kc = to_carrier(k, n * impl_->d_key, round.input);
    const std::vector<T> vc = to_carrier(v, n * impl_->d_value, round.input);
    for (std::size_t j = 0; j < n; ++j)
      state.append(kc.data() + j * impl_->d_key, vc.data() + j * impl_->d_value);
  });
}

void RuntimeSataState::query(const double* q, std::size_t m, double* y, double* z) const {
  impl_->visit([&](auto& state) {
    using T = std::remove_cvref_t<decltype(state.values()[0])>;
    const PolicyRounders<T> round(impl_->policy);
    const std::vector<T> qc = to_carrier(q, m * impl_->d_key, round.input);
    std::vector<T> row(impl_->d_value);
    T norm;
    for (std::size_t i = 0; i < m; ++i) {
      state.query(qc.data() + i * impl_->d_key, row.data(), &norm);
      for (std::size_t t = 0; t < impl_->d_value; ++t)
        y[i * impl_->d_value + t] = to_double(row[t]);
      z[i] = to_double(norm);
    }
  });
}

void RuntimeSataState::prefill(const double* q, const double* k, const double* v, std::size_t n,
                               double* y, double* z) {
  impl_->visit([&](auto& state) {
    using T = std::remove_cvref_t<decltype(state.values()[0])>;
    const PolicyRounders<T> round(impl_->policy);
    const std::vector<T> qc = to_carrier(q, n * impl_->d_key, round.input);
    const std::vector<T> kc = to_carrier(k, n * impl_->d_key, round.input);
    const std::vector<T> vc = to_carrier(v, n * impl_->d_value, round.input);
    std::vector<T> yc(n * impl_->d_value), zc(n);
    sata_causal_prefill(state, qc.data(), kc.data(), vc.data(), n, impl_->options.effective_chunk(),
                        yc.data(), zc.data());
    for (std::size_t i = 0; i < yc.size(); ++i) y[i] = to_double(yc[i]);
    for (std::size_t i = 0; i < n; ++i) z[i] = to_double(zc[i]);
  });
}

std::size_t RuntimeSataState::tokens() const {
  return impl_->visit([](const auto& state) { return state.tokens(); });
}
std::size_t RuntimeSataState::d_key() const { return impl_->d_key; }
std::size_t RuntimeSataState::d_value() const { return impl_->d_value; }
std::size_t RuntimeSataState::taylor_terms() const { return impl_->options.taylor_terms; }
std::size_t RuntimeSataState::features() const { return impl_->basis->total_size(); }
std::size_t RuntimeSataState::state_elements() const { return features() * (impl_->d_value + 1); }
std::uint64_t RuntimeSataState::state_bytes() const {
  return impl_->visit([&](const auto& state) {
    using State = std::remove_cvref_t<decltype(state)>;
    return checked_mul(state_elements(), State::bytes_per_element(impl_->policy),
                       "SATA state bytes");
  });
}
const PrecisionPolicy& RuntimeSataState::policy() const { return impl_->policy; }
const AttentionOptions& RuntimeSataState::options() const { return impl_->options; }

std::vector<double> RuntimeSataState::values() const {
  return impl_->visit([](const auto& state) {
    std::vector<double> out(state.values().size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = to_double(state.values()[i]);
    return out;
  });
}

std::vector<std::string> RuntimeSataState::values_hex() const {
  return impl_->visit([](const auto& state) {
    std::vector<std::string> out(state.values().size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = to_hex(state.values()[i]);
    return out;
  });
}

void RuntimeSataState::restore(std::size_t tokens, std::span<const std::string> values_hex) {
  if (values_hex.size() != state_elements()) {
    throw InvalidArgument(fmt::format(
        "SATA state: {} values given, but d_key={}, d_value={}, P={} needs {}", values_hex.size(),
        impl_->d_key, impl_->d_value, taylor_terms(), state_elements()));
  }
  impl_->reset();
  impl_->visit([&](auto& state) {
    auto& values = state.mutable_values();
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (!parse_exact(values_hex[i], values[i])) {
        impl_->reset();
        throw InvalidArgument(
            fmt::format("SATA state: value {} ('{}') is not a number the {} carrier holds exactly",
                        i, values_hex[i], impl_->policy.name));
      }
    }
    state.add_tokens(tokens);
  });
}

void RuntimeSataState::restore(std::size_t tokens, std::span<const double> values) {
  if (impl_->policy.carrier == Carrier::mp) {
    throw InvalidArgument(
        fmt::format("SATA state at {}: restore from exact (hexadecimal) values, not float64",
                    impl_->policy.name));
  }
  std::vector<std::string> text(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) text[i] = to_hex(values[i]);
  restore(tokens, text);
}

}  // namespace satalab
