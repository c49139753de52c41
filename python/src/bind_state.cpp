// satalab.SataState: SATA's decode state, driven from Python.
#include <fmt/format.h>

#include <memory>
#include <mutex>

#include "common.hpp"
#include "satalab/attention/runtime_sata_state.hpp"
#include "satalab/error.hpp"
#include "satalab/io/sata_state_file.hpp"

namespace satalab::python {
namespace {

using namespace pybind11::literals;

// Tokens per piece between checks for Ctrl-C (prefill: rounded to whole chunks,
// so the numbers do not depend on it).
constexpr std::size_t kTokensPerPiece = 4096;

// The Python object: a RuntimeSataState and a lock, so two Python threads
// (each with the GIL released) never touch one state at once.
class PySataState {
 public:
  PySataState(long long d_key, long long d_value, long long taylor_terms,
              const std::string& precision, const std::optional<double>& softmax_scale,
              const std::string& placement, const std::optional<long long>& chunk,
              const std::string& polynomial, double chebyshev_width)
      : state_(make(d_key, d_value, taylor_terms, precision, softmax_scale, placement, chunk, polynomial,
                    chebyshev_width)) {}
  explicit PySataState(RuntimeSataState&& state)
      : state_(std::make_unique<RuntimeSataState>(std::move(state))) {}

  void append(const py::handle& k, const py::handle& v) {
    const Tokens keys = tokens(k, "k", state_->d_key(), "d_key");
    const Tokens values = tokens(v, "v", state_->d_value(), "d_value");
    same_count(keys, values, "k", "v");
    py::gil_scoped_release release;
    const auto lock = locks();
    for (std::size_t first = 0; first < keys.n; first += kTokensPerPiece) {
      const std::size_t n = std::min(kTokensPerPiece, keys.n - first);
      state_->append(keys.row(first), values.row(first), n);
      check_signals();
    }
  }

  py::tuple query(const py::handle& q) const {
    const Tokens queries = tokens(q, "q", state_->d_key(), "d_key");
    std::vector<double> y(queries.n * state_->d_value()), z(queries.n);
    {
      py::gil_scoped_release release;
      const auto lock = locks();
      for (std::size_t first = 0; first < queries.n; first += kTokensPerPiece) {
        const std::size_t n = std::min(kTokensPerPiece, queries.n - first);
        state_->query(queries.row(first), n, y.data() + first * state_->d_value(),
                      z.data() + first);
        check_signals();
      }
    }
    return outputs(std::move(y), std::move(z), queries);
  }

  py::tuple prefill(const py::handle& q, const py::handle& k, const py::handle& v) {
    const Tokens queries = tokens(q, "q", state_->d_key(), "d_key");
    const Tokens keys = tokens(k, "k", state_->d_key(), "d_key");
    const Tokens values = tokens(v, "v", state_->d_value(), "d_value");
    same_count(queries, keys, "q", "k");
    same_count(queries, values, "q", "v");
    std::vector<double> y(queries.n * state_->d_value()), z(queries.n);
    {
      py::gil_scoped_release release;
      const auto lock = locks();
      const std::size_t chunk = state_->options().effective_chunk();
      const std::size_t piece = std::max<std::size_t>(1, kTokensPerPiece / chunk) * chunk;
      for (std::size_t first = 0; first < queries.n; first += piece) {
        const std::size_t n = std::min(piece, queries.n - first);
        state_->prefill(queries.row(first), keys.row(first), values.row(first), n,
                        y.data() + first * state_->d_value(), z.data() + first);
        check_signals();
      }
    }
    return outputs(std::move(y), std::move(z), queries);
  }

  py::array_t<double> values() const {
    std::vector<double> v;
    {
      py::gil_scoped_release release;
      const auto lock = locks();
      v = state_->values();
    }
    return numpy_array(std::move(v), {state_->features(), state_->d_value() + 1});
  }

  void save(const std::filesystem::path& path, bool overwrite) const {
    py::gil_scoped_release release;
    const auto lock = locks();
    write_sata_state(path.string(), *state_, overwrite);
  }

  static std::unique_ptr<PySataState> load(const std::filesystem::path& path) {
    py::gil_scoped_release release;
    // The precision is known only after reading: take the mp lock for any file.
    const std::lock_guard<std::mutex> lock(mp_mutex());
    return std::make_unique<PySataState>(read_sata_state(path.string()));
  }

  const RuntimeSataState& state() const { return *state_; }
  std::optional<double> softmax_scale() const {
    const auto& c = state_->options().softmax_denominator;
    return c ? std::optional<double>(1.0 / *c) : std::nullopt;
  }

  std::string repr() const {
    return fmt::format(
        "SataState(d_key={}, d_value={}, taylor_terms={}, precision='{}', tokens={}, "
        "state_elements={}, nbytes={})",
        state_->d_key(), state_->d_value(), state_->taylor_terms(), state_->policy().name,
        state_->tokens(), state_->state_elements(), state_->state_bytes());
  }

 private:
  // Rows of tokens: [n, d] or one token [d].
  struct Tokens {
    std::vector<double> values;
    std::size_t n = 0, d = 0;
    bool single = false;
    const double* row(std::size_t i) const { return values.data() + i * d; }
  };

  static Tokens tokens(const py::handle& object, const char* name, std::size_t expected_d,
                       const char* what) {
    Float64Array a = float64_array(object, name);
    check_finite(a, name);
    Tokens t;
    if (a.shape.size() == 1) {
      t.single = true;
      t.n = 1;
      t.d = a.shape[0];
    } else if (a.shape.size() == 2) {
      t.n = a.shape[0];
      t.d = a.shape[1];
    } else {
      throw InvalidArgument(
          fmt::format("{} has rank {} (shape {}) but must be rank 1 [d] (one token) or rank 2 "
                      "[n_tokens, d]",
                      name, a.shape.size(), shape_text(a.shape)));
    }
    if (t.d != expected_d) {
      throw InvalidArgument(fmt::format("{} has shape {} but the state has {} = {}", name,
                                        shape_text(a.shape), what, expected_d));
    }
    t.values = std::move(a.values);
    return t;
  }

  static void same_count(const Tokens& a, const Tokens& b, const char* a_name, const char* b_name) {
    if (a.n != b.n || a.single != b.single) {
      throw InvalidArgument(fmt::format("{} has {} token(s){} and {} has {}{} (they must agree)",
                                        a_name, a.n, a.single ? " (rank 1)" : "", b_name, b.n,
                                        b.single ? " (rank 1)" : ""));
    }
  }

  py::tuple outputs(std::vector<double>&& y, std::vector<double>&& z, const Tokens& queries) const {
    if (queries.single)
      return py::make_tuple(numpy_array(std::move(y), {state_->d_value()}), py::float_(z[0]));
    return py::make_tuple(numpy_array(std::move(y), {queries.n, state_->d_value()}),
                          numpy_array(std::move(z), {queries.n}));
  }

  std::pair<std::unique_lock<std::mutex>, std::unique_lock<std::mutex>> locks() const {
    std::unique_lock<std::mutex> own(mutex_);
    return {std::move(own), mp_lock(state_->policy())};
  }

  static std::unique_ptr<RuntimeSataState> make(long long d_key, long long d_value,
                                                long long taylor_terms,
                                                const std::string& precision,
                                                const std::optional<double>& softmax_scale,
                                                const std::string& placement,
                                                const std::optional<long long>& chunk,
                                                const std::string& polynomial, double chebyshev_width) {
    const std::size_t dk = count_argument(d_key, "d_key"), dv = count_argument(d_value, "d_value");
    AttentionOptions options = attention_options(taylor_terms, true, chunk, softmax_scale, placement);
    options.polynomial.family = polynomial_family_by_name(polynomial);
    options.polynomial.chebyshev_width = chebyshev_width;
    validate_readout_polynomial(options.polynomial, options.taylor_terms);
    const PrecisionPolicy policy = precision_policy(precision);
    py::gil_scoped_release release;
    const auto lock = mp_lock(policy);
    return std::make_unique<RuntimeSataState>(dk, dv, policy, options);
  }

  std::unique_ptr<RuntimeSataState> state_;
  mutable std::mutex mutex_;
};

constexpr const char* kClassDoc =
    R"(SataState(d_key, d_value, taylor_terms=4, precision="fp32", softmax_scale=None, coefficient_placement="paper", chunk=None, polynomial="taylor", chebyshev_width=2.0)

SATA's recurrent state for one head (Heinsen & Kozachkov 2026, App. A2): for
every feature of the symmetric basis of degrees 0..P-1 the sums
S = sum_j a(k_j) Phi(k_j) v_j^T and z = sum_j a(k_j) Phi(k_j), one
[features x (d_value+1)] block at the precision policy. Appending a token and
reading out a query cost O(features * d_value), independent of the number of
tokens seen: the decode loop, driven from Python.

  d_key, d_value  head sizes of keys/queries and values (>= 1)
  taylor_terms    P, degrees 0..P-1 (1 .. 21)
  precision       precision policy (see satalab.precisions())
  softmax_scale   s = softmax_scale * (q.k); None = 1/sqrt(d_key)
  coefficient_placement  see satalab.placements()
  chunk           prefill chunk in tokens (None = 64)
  polynomial, chebyshev_width  the read-out polynomial, as for
                  satalab.attention (the moments of a query's logits come from
                  the state's degree-1 and degree-2 normalisers)

The state's size is checked against satalab.memory_limit() first (ValueError
with the number of bytes when it would not fit).

Two ways to feed it:
  append(k, v) then query(q)  the decode step: y_i from the state holding
      tokens 0..i (all through the state);
  prefill(q, k, v)  causal attention continuing from the state, as
      satalab.attention(method="sata", causal=True) computes it (the current
      chunk's tokens through the Taylor polynomial directly, earlier ones
      through the state); fed token by token with chunk=1, or in pieces of
      whole chunks, it gives exactly the numbers of one attention() call.
The two agree up to rounding.)";

}  // namespace

void bind_state(py::module_& m) {
  py::class_<PySataState>(m, "SataState", kClassDoc)
      .def(py::init<long long, long long, long long, const std::string&,
                    const std::optional<double>&, const std::string&,
                    const std::optional<long long>&, const std::string&, double>(),
           "d_key"_a, "d_value"_a, "taylor_terms"_a = 4, "precision"_a = "fp32",
           "softmax_scale"_a = py::none(), "coefficient_placement"_a = "paper",
           "chunk"_a = py::none(), "polynomial"_a = "taylor", "chebyshev_width"_a = 2.0)
      .def("append", &PySataState::append,
           "append(k, v)\n\nAdds tokens to the state: k [d_key] and v [d_value] for one token, or "
           "k [n, d_key] and "
           "v [n, d_value] for n tokens (float16/32/64, finite; rounded once into the policy's "
           "input format).",
           "k"_a, "v"_a)
      .def("query", &PySataState::query,
           "query(q) -> (y, z)\n\nAttention outputs for queries against the tokens appended so "
           "far: q [d_key] gives "
           "y [d_value] and the normaliser z (a float); q [m, d_key] gives y [m, d_value] and z "
           "[m]. The state is "
           "not changed.",
           "q"_a)
      .def("prefill", &PySataState::prefill,
           "prefill(q, k, v) -> (y, z)\n\nCausal SATA of n new tokens continuing from the state "
           "(q, k [n, d_key], "
           "v [n, d_value], or one token as [d]): chunks of `chunk` tokens, the Taylor polynomial "
           "inside a chunk, "
           "the state across chunks; returns y [n, d_value], z [n] and leaves the n tokens in the "
           "state. One "
           "prefill of a whole sequence equals satalab.attention(..., method='sata', causal=True) "
           "bit for bit.",
           "q"_a, "k"_a, "v"_a)
      .def("values", &PySataState::values,
           "values() -> float64 array [features, d_value+1]\n\nThe state's sums (z in the last "
           "column), rounded to "
           "float64 (exact for float32/float64 carriers).")
      .def("save", &PySataState::save,
           "save(path, overwrite=False)\n\nWrites the state to an HDF5 file (exactly, also for "
           "mp<bits>; layout in "
           "lib/include/satalab/io/sata_state_file.hpp). An existing file is refused unless "
           "overwrite=True.",
           "path"_a, "overwrite"_a = false)
      .def_static("load", &PySataState::load,
                  "SataState.load(path) -> SataState\n\nReads a state written by save(): same "
                  "parameters, tokens "
                  "and sums, so decoding continues with the same numbers.",
                  "path"_a)
      .def_property_readonly(
          "d_key", [](const PySataState& s) { return s.state().d_key(); },
          "Head size of keys and queries.")
      .def_property_readonly(
          "d_value", [](const PySataState& s) { return s.state().d_value(); },
          "Head size of values.")
      .def_property_readonly(
          "taylor_terms", [](const PySataState& s) { return s.state().taylor_terms(); },
          "P, the number of Taylor terms (degrees 0..P-1).")
      .def_property_readonly(
          "precision", [](const PySataState& s) { return s.state().policy().name; },
          "The precision policy's name.")
      .def_property_readonly("softmax_scale", &PySataState::softmax_scale,
                             "The factor on q.k (None: 1/sqrt(d_key)).")
      .def_property_readonly(
          "coefficient_placement",
          [](const PySataState& s) {
            return std::string(placement_name(s.state().options().placement));
          },
          "Where the feature coefficients go (see satalab.placements()).")
      .def_property_readonly(
          "chunk", [](const PySataState& s) { return s.state().options().effective_chunk(); },
          "prefill's chunk in tokens.")
      .def_property_readonly(
          "tokens", [](const PySataState& s) { return s.state().tokens(); },
          "Tokens in the state so far.")
      .def_property_readonly(
          "features", [](const PySataState& s) { return s.state().features(); },
          "Basis functions of degrees 0..P-1: C(d_key+P-1, P-1).")
      .def_property_readonly(
          "state_elements", [](const PySataState& s) { return s.state().state_elements(); },
          "Numbers in the state: (d_value+1) * features (paper eq. 13).")
      .def_property_readonly(
          "nbytes", [](const PySataState& s) { return s.state().state_bytes(); },
          "Bytes the state occupies in its carrier (float32, float64 or MPFR with its limbs).")
      .def("__repr__", &PySataState::repr);
}

}  // namespace satalab::python
