// scan_tree for Python.
#include "bridge.hpp"
#include "convert.hpp"

#include <sky_async/runtime.hpp>
#include <sky_async/scan.hpp>

#include <cstdint>
#include <string>

namespace sky_async::python {

namespace {

// What a backend reports: a dict of the raw result (paths as bytes; each problem as
// (kind, path, errno or None, size)), or (errno, None) when the root cannot be scanned.
py::object to_item(const tree_scan& scan, bool collect_files) {
  if (scan.error) return error_item(scan.error);
  py::dict out;
  out["files"] = scan.files;
  out["directories"] = scan.directories;
  out["symlinks"] = scan.symlinks;
  out["special_files"] = scan.special_files;
  out["bytes"] = scan.bytes;
  py::list problems(scan.problems.size());
  for (std::size_t i = 0; i < scan.problems.size(); ++i) {
    const scan_problem& problem = scan.problems[i];
    problems[i] = py::make_tuple(
        std::string(to_string(problem.kind)), py::bytes(problem.path),
        problem.error ? py::object(py::int_(problem.error.value())) : py::object(py::none()), problem.size);
  }
  out["problems"] = std::move(problems);
  py::dict counts;
  for (std::size_t k = 0; k < scan_problem_kind_count; ++k) {
    counts[py::str(std::string(to_string(static_cast<scan_problem_kind>(k))))] = scan.problem_counts[k];
  }
  out["problem_counts"] = std::move(counts);
  py::list largest(scan.largest.size());
  for (std::size_t i = 0; i < scan.largest.size(); ++i) {
    largest[i] = py::make_tuple(py::bytes(scan.largest[i].path), scan.largest[i].size);
  }
  out["largest"] = std::move(largest);
  if (collect_files) {
    py::list paths(scan.file_paths.size());
    for (std::size_t i = 0; i < scan.file_paths.size(); ++i) paths[i] = py::bytes(scan.file_paths[i]);
    out["file_paths"] = std::move(paths);
  } else {
    out["file_paths"] = py::none();
  }
  return out;
}

std::shared_ptr<detail::scan_operation> make_operation(const py::bytes& root, bool follow_symlinks,
                                                       std::uint64_t max_file_size, std::size_t largest,
                                                       bool collect_files, std::size_t max_problems) {
  return detail::make_scan_operation(
      runtime::global(), std::string(root),
      scan_options{follow_symlinks, max_file_size, largest, collect_files, max_problems});
}

}  // namespace

void register_scan(py::module_& m) {
  m.def(
      "scan_tree",
      [](const std::shared_ptr<completion_queue>& queue, const py::bytes& root, bool follow_symlinks,
         std::uint64_t max_file_size, std::size_t largest, bool collect_files, std::size_t max_problems,
         py::object future) {
        return start_for_loop(
            queue, make_operation(root, follow_symlinks, max_file_size, largest, collect_files, max_problems),
            std::move(future),
            [collect_files](const tree_scan& scan) { return to_item(scan, collect_files); });
      },
      py::arg("queue"), py::arg("root"), py::arg("follow_symlinks"), py::arg("max_file_size"),
      py::arg("largest"), py::arg("collect_files"), py::arg("max_problems"), py::arg("future"));
  m.def(
      "scan_tree_blocking",
      [](const py::bytes& root, bool follow_symlinks, std::uint64_t max_file_size, std::size_t largest,
         bool collect_files, std::size_t max_problems) {
        return to_item(run_blocking(make_operation(root, follow_symlinks, max_file_size, largest,
                                                   collect_files, max_problems)),
                       collect_files);
      },
      py::arg("root"), py::arg("follow_symlinks"), py::arg("max_file_size"), py::arg("largest"),
      py::arg("collect_files"), py::arg("max_problems"));
}

}  // namespace sky_async::python
