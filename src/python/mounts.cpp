// file_mounts_digest for Python.
#include "python/bridge.hpp"
#include "python/convert.hpp"

#include <sky_async/hash.hpp>
#include <sky_async/mounts.hpp>
#include <sky_async/runtime.hpp>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sky_async::python {

namespace {

// One path that cannot be hashed: (path bytes, errno, message or None).
py::tuple to_problem(const file_mount_problem& problem) {
  py::object error = error_item(problem.error);
  // Only a cancelled call has items it never reached, and it reports no problems; an
  // ECANCELED here would still name its path rather than vanish.
  if (error.is_none()) error = py::make_tuple(ECANCELED, py::none());
  const auto pair = error.cast<py::tuple>();
  return py::make_tuple(py::bytes(problem.path.native()), pair[0], pair[1]);
}

// What a backend reports: the hex digest, or every problem (in path order).
py::object to_item(const file_mounts_result& result) {
  if (result.ok()) return py::str(result.digest);
  py::list problems(result.problems.size());
  for (std::size_t i = 0; i < result.problems.size(); ++i) {
    problems[i] = to_problem(result.problems[i]);
  }
  return problems;
}

// `pairs` is a list of (destination, source) bytes pairs (sky_async.mounts.check_file_mounts).
std::vector<file_mount> to_mounts(const py::list& pairs) {
  std::vector<file_mount> mounts;
  mounts.reserve(pairs.size());
  for (const py::handle item : pairs) {
    const bool is_pair = py::isinstance<py::tuple>(item) && py::len(item) == 2;
    const auto pair = is_pair ? py::reinterpret_borrow<py::tuple>(item) : py::tuple();
    if (!is_pair || !py::isinstance<py::bytes>(pair[0]) || !py::isinstance<py::bytes>(pair[1])) {
      throw py::type_error("file mounts must be a list of (destination, source) bytes pairs");
    }
    mounts.push_back({pair[0].cast<std::string>(), pair[1].cast<std::string>()});
  }
  return mounts;
}

std::shared_ptr<detail::mounts_digest_operation> make_operation(const py::list& pairs,
                                                                const py::bytes& prefix,
                                                                std::size_t concurrency) {
  return detail::make_mounts_digest_operation(runtime::global(), to_mounts(pairs), std::string(prefix),
                                              hash_options{concurrency, false});
}

}  // namespace

void register_mounts(py::module_& m) {
  m.def(
      "file_mounts_digest",
      [](const std::shared_ptr<completion_queue>& queue, const py::list& pairs, const py::bytes& prefix,
         std::size_t concurrency, py::object future) {
        return start_for_loop(queue, make_operation(pairs, prefix, concurrency), std::move(future),
                              [](const file_mounts_result& r) { return to_item(r); });
      },
      py::arg("queue"), py::arg("pairs"), py::arg("prefix"), py::arg("concurrency"), py::arg("future"));
  m.def(
      "file_mounts_digest_blocking",
      [](const py::list& pairs, const py::bytes& prefix, std::size_t concurrency) {
        return to_item(run_blocking(make_operation(pairs, prefix, concurrency)));
      },
      py::arg("pairs"), py::arg("prefix"), py::arg("concurrency"));
}

}  // namespace sky_async::python
