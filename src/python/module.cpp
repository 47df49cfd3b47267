// sky_async._native: the C++ runtime for the Python package (internal; the public
// API is the sky_async package). Each feature's bindings live in their own file.
#include "python/bridge.hpp"

#include <sky_async/runtime.hpp>
#include <sky_async/version.hpp>

#include "core/runtime_impl.hpp"
#include "core/thread_storage.hpp"

#include <exception>
#include <string>
#include <system_error>

namespace py = pybind11;
using namespace sky_async;

namespace {

py::dict runtime_info() {
  runtime& rt = runtime::global();
  py::dict info;
  info["io_backend"] = std::string(to_string(rt.backend()));
  info["io_backend_reason"] =
      rt.backend_reason().empty() ? py::object(py::none()) : py::str(rt.backend_reason());
  info["threads"] = rt.threads();
  return info;
}

py::dict build_info_dict() {
  const auto built = get_build_info();
  py::dict info;
  info["version"] = built.version;
  info["boost"] = built.boost;
  info["openssl"] = built.openssl;
  info["liburing"] = built.liburing;
  return info;
}

// A std::system_error that reaches Python (the runtime, or a completion queue's eventfd,
// that could not be made: EMFILE under a tiny RLIMIT_NOFILE) is an OSError with its errno
// (and the subclass for it), not pybind11's RuntimeError.
// pybind11 fixes the signature: the exception_ptr is passed by value.
// NOLINTNEXTLINE(performance-unnecessary-value-param)
void translate_system_error(std::exception_ptr thrown) {
  try {
    if (thrown) std::rethrow_exception(thrown);
  } catch (const std::system_error& e) {
    const auto& category = e.code().category();
    if (category != std::system_category() && category != std::generic_category()) throw;
    auto error = py::reinterpret_steal<py::object>(
        PyObject_CallFunction(PyExc_OSError, "is", e.code().value(), e.what()));
    if (!error) return;  // the call set its own exception
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  }
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "sky_async's native runtime (internal; use the sky_async package)";
  // The importing thread first, as it likely calls in most (core/thread_storage.hpp).
  detail::reserve_thread_storage();
  py::register_local_exception_translator(&translate_system_error);
  m.attr("__version__") = sky_async::version;

  python::register_bridge(m);
  python::register_hash(m);
  python::register_tail(m);
  python::register_process(m);
  python::register_strings(m);
  python::register_system(m);
  python::register_scan(m);
  python::register_mounts(m);
  python::register_ignore(m);

  m.def("runtime_info", &runtime_info);
  m.def("build_info", &build_info_dict);
  m.def(
      "shutdown", [] { python::without_gil([] { detail::shutdown_global_runtime(); }); },
      "Cancel running operations, wait for their files to close and stop the worker threads.");
}
