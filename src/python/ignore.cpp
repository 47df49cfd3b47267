// git's ignore listing for Python: the native engine of sky_async._upload.gitignore's
// ignored_paths and of GitIgnore.gitlinks (sky_async._upload.native calls them).
//
// Synchronous: it runs on the caller's thread, with the GIL released while it reads the
// index and walks the tree. A listing takes milliseconds, and its callers
// (GitIgnore.ignored_paths, SkyPilot's get_excluded_files_from_gitignore) are blocking
// functions themselves, so it does not go through the runtime's workers.
#include "python/bridge.hpp"

#include "ignore/gitignore.hpp"

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sky_async::python {

namespace {

py::str decode_path(const std::string& path) {
  // os.fsdecode: a name that is not UTF-8 keeps its bytes as surrogates.
  return py::reinterpret_steal<py::str>(
      PyUnicode_DecodeFSDefaultAndSize(path.data(), static_cast<Py_ssize_t>(path.size())));
}

// An index or a .gitignore that cannot be read: the OSError of its errno, with its path.
[[noreturn]] void raise_os_error(const ignore::file_error& e) {
  const py::str filename = decode_path(e.path());
  errno = e.code();
  PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, filename.ptr());
  throw py::error_already_set();
}

// The listing (see ignore::list_ignored), or None where git itself fails. Paths come in as
// bytes (os.fsencode), exclude_files a list of them. A bad index is ValueError; an index that cannot be read
// is the OSError of its errno, with its path.
py::object gitignore_listing(const py::bytes& top, const py::bytes& prefix, const py::bytes& index,
                             std::size_t hash_size, const py::list& exclude_files) {
  ignore::listing_request request;
  request.top = std::string(top);
  request.prefix = std::string(prefix);
  request.index_path = std::string(index);
  request.hash_size = hash_size;
  for (const py::handle path : exclude_files) request.exclude_files.emplace_back(py::cast<py::bytes>(path));
  std::optional<std::vector<std::string>> listed;
  try {
    listed = without_gil([&] { return ignore::list_ignored(request); });
  } catch (const ignore::file_error& e) {
    raise_os_error(e);
  }
  if (!listed) return py::none();
  py::list out(listed->size());
  for (std::size_t k = 0; k < listed->size(); ++k) out[k] = decode_path((*listed)[k]);
  return std::move(out);
}

// The index's submodules as bytes, in the index's order (see ignore::read_gitlinks).
py::list gitignore_gitlinks(const py::bytes& index, std::size_t hash_size) {
  std::vector<std::string> gitlinks;
  const std::string index_path(index);
  try {
    gitlinks = without_gil([&] { return ignore::read_gitlinks(index_path, hash_size); });
  } catch (const ignore::file_error& e) {
    raise_os_error(e);
  }
  py::list out(gitlinks.size());
  for (std::size_t k = 0; k < gitlinks.size(); ++k) out[k] = py::bytes(gitlinks[k]);
  return out;
}

}  // namespace

void register_ignore(py::module_& m) {
  m.def("gitignore_listing", &gitignore_listing, py::arg("top"), py::arg("prefix"), py::arg("index"),
        py::arg("hash_size"), py::arg("exclude_files"),
        "What git ls-files --others --ignored --exclude-standard --directory prints in prefix "
        "(None where git fails).");
  m.def("gitignore_gitlinks", &gitignore_gitlinks, py::arg("index"), py::arg("hash_size"),
        "The index's submodules (gitlinks), as bytes, in the index's order.");
}

}  // namespace sky_async::python
