// SkyPilot's sizing helpers and port probe for Python. The listing and probing ones come
// as operations for an event loop and as direct blocking calls: the work is a short,
// bounded run of syscalls, cheaper than a round trip to a worker, so the blocking form
// runs it in the calling thread with the GIL released.
#include "python/bridge.hpp"
#include "python/convert.hpp"

#include "system/system_info.hpp"

#include <sky_async/runtime.hpp>
#include <sky_async/system.hpp>

#include <pybind11/stl.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sky_async::python {

namespace {

// A failed listing: (errno, None, index of the source) so that Python can name the path.
py::object max_workers_error(const std::error_code& error, const std::filesystem::path& path,
                             const std::vector<std::filesystem::path>& sources) {
  std::size_t index = 0;
  while (index < sources.size() && sources[index] != path) ++index;
  return py::make_tuple(error.value(), py::none(), index);
}

template <typename T>
py::object to_item(const system_result<T>& result) {
  if (result.ok()) return py::int_(result.value);
  return error_item(result.error);
}

}  // namespace

void register_system(py::module_& m) {
  // pybind11 fixes the signature: the exception_ptr is passed by value.
  // NOLINTNEXTLINE(performance-unnecessary-value-param)
  py::register_local_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const detail::cgroup_zero_period& e) {
      PyErr_SetString(PyExc_ZeroDivisionError, e.what());
    }
  });

  m.def(
      "get_cpu_count",
      [](bool skypilot_rules) {
        return detail::cpu_count(detail::default_cgroup_root, skypilot_rules
                                                                  ? detail::cgroup_rules::skypilot
                                                                  : detail::cgroup_rules::sky_async);
      },
      py::arg("skypilot_rules") = false);
  m.def("get_mem_size_gb", &get_mem_size_gb);
  m.def(
      "get_parallel_threads",
      [](const std::optional<std::string>& cloud) {
        return cloud ? get_parallel_threads(std::string_view(*cloud)) : get_parallel_threads();
      },
      py::arg("cloud").none(true));

  m.def(
      "estimate_fd_for_directory",
      [](const std::shared_ptr<completion_queue>& queue, const py::bytes& path, py::object future) {
        auto op = detail::make_fd_estimate_operation(runtime::global(), std::string(path));
        return start_for_loop(queue, std::move(op), std::move(future),
                              [](const system_result<long long>& r) { return to_item(r); });
      },
      py::arg("queue"), py::arg("path"), py::arg("future"));
  m.def(
      "estimate_fd_for_directory_blocking",
      [](const py::bytes& path) -> py::object {
        const std::filesystem::path native(static_cast<std::string>(path));
        std::error_code error;
        const long long value = without_gil([&]() -> long long {
          try {
            return estimate_fd_for_directory(native);
          } catch (const std::filesystem::filesystem_error& e) {
            error = e.code();
            return 0;
          }
        });
        if (error) return error_item(error);
        return py::int_(value);
      },
      py::arg("path"));

  m.def(
      "max_workers_for_file_mounts",
      [](const std::shared_ptr<completion_queue>& queue, const py::list& sources,
         const std::optional<std::string>& cloud, py::object future) {
        auto paths = to_paths(sources);
        auto op = detail::make_max_workers_operation(runtime::global(), paths, cloud);
        return start_for_loop(queue, std::move(op), std::move(future),
                              [paths = std::move(paths)](const system_result<int>& r) -> py::object {
                                if (r.ok()) return py::int_(r.value);
                                return max_workers_error(r.error, r.path, paths);
                              });
      },
      py::arg("queue"), py::arg("sources"), py::arg("cloud").none(true), py::arg("future"));
  m.def(
      "max_workers_for_file_mounts_blocking",
      [](const py::list& sources, const std::optional<std::string>& cloud) -> py::object {
        const auto paths = to_paths(sources);
        std::optional<std::filesystem::filesystem_error> failure;
        const int workers = without_gil([&] {
          try {
            return cloud ? get_max_workers_for_file_mounts(paths, std::string_view(*cloud))
                         : get_max_workers_for_file_mounts(paths);
          } catch (const std::filesystem::filesystem_error& e) {
            failure.emplace(e);
            return 0;
          }
        });
        if (failure) return max_workers_error(failure->code(), failure->path1(), paths);
        return py::int_(workers);
      },
      py::arg("sources"), py::arg("cloud").none(true));

  m.def(
      "find_free_port",
      [](const std::shared_ptr<completion_queue>& queue, int start_port, py::object future) {
        return start_for_loop(queue, detail::make_free_port_operation(runtime::global(), start_port),
                              std::move(future), [](const system_result<int>& r) { return to_item(r); });
      },
      py::arg("queue"), py::arg("start_port"), py::arg("future"));
  m.def(
      "find_free_port_blocking",
      [](int start_port) -> py::object {
        std::error_code error;
        const int port = without_gil([&] {
          try {
            return find_free_port(start_port);
          } catch (const std::system_error& e) {
            error = e.code();
            return 0;
          }
        });
        if (error) return error_item(error);
        return py::int_(port);
      },
      py::arg("start_port"));
}

}  // namespace sky_async::python
