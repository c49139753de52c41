// satalab._core: pybind11 bindings of satalab::core (docs/architecture.md §8). The package
// satalab (python/satalab/__init__.py) re-exports everything from here.
#include "common.hpp"
#include "satalab/error.hpp"
#include "satalab/version.hpp"

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  using namespace satalab::python;
  m.doc() = "satalab's C++ core (pybind11 bindings); use the package `satalab`.";
  // The library's errors are the CLI's one-line messages: input the caller can
  // fix, and work that would not fit, both as ValueError (ResourceLimitError
  // is a ValueError too, for callers that want to tell them apart).
  static py::exception<satalab::ResourceLimit> resource_limit(m, "ResourceLimitError",
                                                              PyExc_ValueError);
  resource_limit.attr("__doc__") =
      "Work or a state that would not fit: larger than satalab.memory_limit() (the message gives "
      "the bytes) or "
      "a size that overflows 64 bits. A ValueError.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const satalab::InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const satalab::ResourceLimit& e) {
      resource_limit(e.what());
    }
  });
  m.attr("__version__") = satalab::version();
  m.attr("git_commit") = satalab::git_commit();
  bind_numeric(m);
  bind_attention(m);
  bind_state(m);
  bind_results(m);
}
