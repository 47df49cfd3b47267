// sky_async._native: the C++ runtime for the Python package (internal; the public
// API is the sky_async package). Each feature's bindings live in their own file.
#include "bridge.hpp"

#include <sky_async/runtime.hpp>
#include <sky_async/version.hpp>

#include "runtime_impl.hpp"

#include <string>

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

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "sky_async's native runtime (internal; use the sky_async package)";
  m.attr("__version__") = sky_async::version;

  python::register_bridge(m);
  python::register_hash(m);
  python::register_tail(m);
  python::register_process(m);
  python::register_strings(m);
  python::register_system(m);
  python::register_scan(m);

  m.def("runtime_info", &runtime_info);
  m.def("build_info", &build_info_dict);
  m.def(
      "shutdown", [] { python::without_gil([] { detail::shutdown_global_runtime(); }); },
      "Cancel running operations, wait for their files to close and stop the worker threads.");
}
