// tail_files for Python: raw lines as bytes; the Python layer decodes them.
#include "bridge.hpp"
#include "convert.hpp"

#include <sky_async/runtime.hpp>
#include <sky_async/tail.hpp>

#include <string>
#include <vector>

namespace sky_async::python {

namespace {

// The item a backend reports per file: (list of bytes, whether the data ended with
// LF), (errno, message or None), or None for a file the operation never got to.
py::object to_item(const tail_result& result) {
  if (!result.ok()) return error_item(result.error);
  py::list lines(result.lines.size());
  for (std::size_t i = 0; i < result.lines.size(); ++i) {
    const std::string& line = result.lines[i];
    lines[i] = py::reinterpret_steal<py::object>(
        PyBytes_FromStringAndSize(line.data(), static_cast<Py_ssize_t>(line.size())));
    if (!lines[i].ptr()) throw py::error_already_set();
  }
  return py::make_tuple(std::move(lines), py::bool_(result.final_newline));
}

py::list to_items(const std::vector<tail_result>& results) {
  py::list items(results.size());
  for (std::size_t i = 0; i < results.size(); ++i) items[i] = to_item(results[i]);
  return items;
}

std::shared_ptr<detail::tail_operation> make_operation(const py::list& paths, std::size_t n,
                                                       std::size_t chunk_size, std::size_t concurrency) {
  return detail::make_tail_operation(runtime::global(), to_paths(paths), n,
                                     tail_options{.chunk_size = chunk_size, .concurrency = concurrency});
}

}  // namespace

void register_tail(py::module_& m) {
  m.def(
      "tail_files",
      [](const std::shared_ptr<completion_queue>& queue, const py::list& paths, std::size_t n,
         std::size_t chunk_size, std::size_t concurrency, py::object future) {
        return start_for_loop(queue, make_operation(paths, n, chunk_size, concurrency), std::move(future),
                              [](const std::vector<tail_result>& r) { return to_items(r); });
      },
      py::arg("queue"), py::arg("paths"), py::arg("n"), py::arg("chunk_size"), py::arg("concurrency"),
      py::arg("future"));
  m.def(
      "tail_files_blocking",
      [](const py::list& paths, std::size_t n, std::size_t chunk_size, std::size_t concurrency) {
        return to_items(run_blocking(make_operation(paths, n, chunk_size, concurrency)));
      },
      py::arg("paths"), py::arg("n"), py::arg("chunk_size"), py::arg("concurrency"));
}

}  // namespace sky_async::python
