// scan_tree for Python.
#include "python/bridge.hpp"
#include "python/convert.hpp"

#include "scan/scan_engine.hpp"

#include <pybind11/stl.h>

#include <sky_async/runtime.hpp>
#include <sky_async/scan.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

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
  out["vanished"] = scan.vanished;
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

// `excluded`: relative paths as bytes (scan_options::excluded), converted with the GIL held.
std::shared_ptr<detail::scan_operation> make_operation(const py::bytes& root, bool follow_symlinks,
                                                       std::uint64_t max_file_size, std::size_t largest,
                                                       bool collect_files, std::size_t max_problems,
                                                       std::vector<std::string> excluded) {
  return detail::make_scan_operation(runtime::global(), std::string(root),
                                     scan_options{follow_symlinks, max_file_size, largest, collect_files,
                                                  max_problems, std::move(excluded)});
}

// What set_scan_entry_actions does to a path, on the worker (which never takes the GIL).
enum class entry_action { remove, file, symlink };

struct action_on {
  entry_action action{};
  std::string target;
};

void act(entry_action action, const std::string& path) {
  std::error_code ignored;  // a test that asks for the impossible sees it in the scan's result
  std::filesystem::remove_all(path, ignored);
  if (action == entry_action::file) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  } else if (action == entry_action::symlink) {
    [[maybe_unused]] const int rc = ::symlink(".", path.c_str());
  }
}

void set_entry_actions(const py::object& actions) {
  if (actions.is_none()) {
    detail::set_scan_entry_hook({});
    return;
  }
  struct pending {
    std::mutex mutex;
    std::map<std::string, action_on> actions;  // by the listed path; each done once, then dropped
  };
  auto state = std::make_shared<pending>();
  for (const auto& [key, value] : actions.cast<py::dict>()) {
    const auto [name, target] = value.cast<std::pair<std::string, std::string>>();
    const entry_action action = name == "remove"    ? entry_action::remove
                                : name == "file"    ? entry_action::file
                                : name == "symlink" ? entry_action::symlink
                                                    : throw py::value_error("unknown entry action: " + name);
    state->actions.emplace(key.cast<std::string>(), action_on{action, target});
  }
  detail::set_scan_entry_hook([state](const std::string& path) {
    action_on todo;
    {
      std::lock_guard lock(state->mutex);
      const auto found = state->actions.find(path);
      if (found == state->actions.end()) return;
      todo = std::move(found->second);
      state->actions.erase(found);
    }
    act(todo.action, todo.target);
  });
}

}  // namespace

void register_scan(py::module_& m) {
  m.def(
      "scan_tree",
      [](const std::shared_ptr<completion_queue>& queue, const py::bytes& root, bool follow_symlinks,
         std::uint64_t max_file_size, std::size_t largest, bool collect_files, std::size_t max_problems,
         std::vector<std::string> excluded, py::object future) {
        return start_for_loop(queue,
                              make_operation(root, follow_symlinks, max_file_size, largest, collect_files,
                                             max_problems, std::move(excluded)),
                              std::move(future), [collect_files](const tree_scan& scan) {
                                return to_item(scan, collect_files);
                              });
      },
      py::arg("queue"), py::arg("root"), py::arg("follow_symlinks"), py::arg("max_file_size"),
      py::arg("largest"), py::arg("collect_files"), py::arg("max_problems"), py::arg("excluded"),
      py::arg("future"));
  m.def(
      "scan_tree_blocking",
      [](const py::bytes& root, bool follow_symlinks, std::uint64_t max_file_size, std::size_t largest,
         bool collect_files, std::size_t max_problems, std::vector<std::string> excluded) {
        return to_item(run_blocking(make_operation(root, follow_symlinks, max_file_size, largest,
                                                   collect_files, max_problems, std::move(excluded))),
                       collect_files);
      },
      py::arg("root"), py::arg("follow_symlinks"), py::arg("max_file_size"), py::arg("largest"),
      py::arg("collect_files"), py::arg("max_problems"), py::arg("excluded"));
  m.def("set_scan_entry_actions", &set_entry_actions, py::arg("actions"),
        "For sky_async's tests: {listed: (action, target)} with bytes paths as a scan builds them, or"
        " None. A scan started afterwards that lists `listed` does `action` to `target` once, before it"
        " stats or opens `listed`: 'remove' (with all below it), 'file' or 'symlink' (replace it by an"
        " empty file, or by a symlink to '.'). A tree changing under the scan, deterministically.");
}

}  // namespace sky_async::python
