#include "python/convert.hpp"

#include <sky_async/error.hpp>

#include <cerrno>
#include <string>

namespace sky_async::python {

std::vector<std::filesystem::path> to_paths(const py::list& paths) {
  std::vector<std::filesystem::path> out;
  out.reserve(paths.size());
  for (const py::handle item : paths) {
    char* data = nullptr;
    Py_ssize_t size = 0;
    if (!PyBytes_Check(item.ptr()) || PyBytes_AsStringAndSize(item.ptr(), &data, &size) != 0) {
      throw py::type_error("paths must be a list of bytes");
    }
    out.emplace_back(std::string(data, static_cast<std::size_t>(size)));
  }
  return out;
}

py::object error_item(const std::error_code& error) {
  if (error == std::errc::operation_canceled) return py::none();
  if (error.category() == error_category()) return py::make_tuple(EINVAL, error.message());
  return py::make_tuple(error.value(), py::none());
}

}  // namespace sky_async::python
