// hash_files for Python.
#include "python/bridge.hpp"
#include "python/convert.hpp"

#include <sky_async/error.hpp>
#include <sky_async/hash.hpp>
#include <sky_async/runtime.hpp>

#include <cerrno>
#include <string>
#include <vector>

namespace sky_async::python {

namespace {

// The item a backend reports per file: hex str, (errno, message or None), or None
// for a file the operation never got to.
py::object to_item(const hash_result& result) {
  if (result.ok()) return py::str(result.digest);
  return error_item(result.error);
}

py::list to_items(const std::vector<hash_result>& results) {
  py::list items(results.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    items[i] = to_item(results[i]);
  }
  return items;
}

hash_algorithm to_algorithm(const std::string& name) {
  if (auto algorithm = parse_hash_algorithm(name)) return *algorithm;
  throw py::value_error("unsupported hash algorithm '" + name + "'");
}

std::shared_ptr<detail::hash_operation> make_operation(const py::list& paths, const std::string& algorithm,
                                                       std::size_t concurrency, bool stop_on_error) {
  return detail::make_hash_operation(runtime::global(), to_paths(paths), to_algorithm(algorithm),
                                     hash_options{concurrency, stop_on_error});
}

}  // namespace

void register_hash(py::module_& m) {
  m.def(
      "hash_files",
      [](const std::shared_ptr<completion_queue>& queue, const py::list& paths, const std::string& algorithm,
         std::size_t concurrency, bool stop_on_error, py::object future) {
        return start_for_loop(queue, make_operation(paths, algorithm, concurrency, stop_on_error),
                              std::move(future),
                              [](const std::vector<hash_result>& r) { return to_items(r); });
      },
      py::arg("queue"), py::arg("paths"), py::arg("algorithm"), py::arg("concurrency"),
      py::arg("stop_on_error"), py::arg("future"));
  m.def(
      "hash_files_blocking",
      [](const py::list& paths, const std::string& algorithm, std::size_t concurrency, bool stop_on_error) {
        return to_items(run_blocking(make_operation(paths, algorithm, concurrency, stop_on_error)));
      },
      py::arg("paths"), py::arg("algorithm"), py::arg("concurrency"), py::arg("stop_on_error"));
}

}  // namespace sky_async::python
