// SkyPilot's string helpers for Python (sky_async.compat and the package's functions).
// std::invalid_argument arrives in Python as ValueError.
#include "python/bridge.hpp"

#include <sky_async/strings.hpp>

#include <string>
#include <string_view>

namespace sky_async::python {

void register_strings(py::module_& m) {
  m.def("base36_encode", [](std::string_view hex) { return base36_encode(hex); }, py::arg("hex_str"));
  m.def(
      "format_float", [](double num, int precision) { return format_float(num, precision); }, py::arg("num"),
      py::arg("precision"));
  m.def(
      "truncate_long_string",
      [](std::string_view s, long long max_length, bool truncate_middle) {
        return truncate_long_string(s, max_length, truncate_middle);
      },
      py::arg("s"), py::arg("max_length"), py::arg("truncate_middle"));
}

}  // namespace sky_async::python
