// Conversions shared by the bindings: paths in, per-item errors out.
#pragma once

#include <pybind11/pybind11.h>

#include <filesystem>
#include <system_error>
#include <vector>

namespace sky_async::python {

namespace py = pybind11;

// `paths` must be a list of bytes (the Python side encodes with os.fsencode).
std::vector<std::filesystem::path> to_paths(const py::list& paths);

// How a backend reports a failed item: (errno, message or None); None for an item the
// operation never got to (operation_canceled). Library errors (errc::not_a_regular_file)
// become EINVAL with their message.
py::object error_item(const std::error_code& error);

}  // namespace sky_async::python
