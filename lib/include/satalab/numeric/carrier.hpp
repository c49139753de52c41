#pragma once
// The one dispatch from a precision policy to the carrier scalar its kernels
// are instantiated for (float, double, mp_t): every entry point that takes a
// runtime policy (compute_attention, RuntimeSataState, the CLI's bench) calls
// with_carrier instead of switching on Carrier itself. Includes Boost's MPFR
// header (multiprecision.hpp): for the units that dispatch.
#include <fmt/format.h>

#include <type_traits>

#include "satalab/error.hpp"
#include "satalab/numeric/multiprecision.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {

// A carrier scalar as a value, for generic lambdas: [&]<class T>(CarrierTag<T>) { ... }.
template <class T>
struct CarrierTag {
  using type = T;
};

// The Carrier of scalar type T.
template <class T>
constexpr Carrier carrier_of() {
  if constexpr (std::is_same_v<T, float>) {
    return Carrier::f32;
  } else if constexpr (std::is_same_v<T, double>) {
    return Carrier::f64;
  } else {
    static_assert(std::is_same_v<T, mp_t>, "carriers are float, double and mp_t");
    return Carrier::mp;
  }
}

// Calls f(CarrierTag<T>{}) for the policy's carrier T and returns what it
// returns (every instantiation must return the same type). For mp_t the call
// runs inside an MpPrecisionScope at policy.mp_bits, so the values f creates
// have the policy's precision. A callable that does not accept
// CarrierTag<mp_t> (a lambda constrained to float and double) makes an mp
// policy an InvalidArgument naming the policy.
template <class F>
decltype(auto) with_carrier(const PrecisionPolicy& policy, F&& f) {
  switch (policy.carrier) {
    case Carrier::f32: return f(CarrierTag<float>{});
    case Carrier::f64: return f(CarrierTag<double>{});
    case Carrier::mp: break;
  }
  if constexpr (std::is_invocable_v<F, CarrierTag<mp_t>>) {
    const MpPrecisionScope scope(policy.mp_bits);
    return f(CarrierTag<mp_t>{});
  } else {
    throw InvalidArgument(
        fmt::format("precision '{}' needs the multiprecision carrier, which this operation does not support "
                    "(allowed: policies on float or double carriers)",
                    policy.name));
  }
}

}  // namespace satalab
