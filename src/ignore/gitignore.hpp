// What `git ls-files --others --ignored --exclude-standard --directory` prints, worked out
// without running git: the native engine of sky_async._upload.gitignore's listing (the
// Python module stays the pure-Python fallback; both give the same results). Python
// resolves the repository, the config and the excludes files' locations; this reads the
// index, walks the tree with each directory's .gitignore and lists what git lists.
// docs/gitignore.md describes the rules.
#pragma once

#include "ignore/patterns.hpp"

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace sky_async::ignore {

// A file that could not be read where git would fail too (the index), with its errno.
class file_error : public std::runtime_error {
 public:
  file_error(int code, const std::string& path);
  int code() const { return code_; }
  const std::string& path() const { return path_; }

 private:
  int code_;
  std::string path_;
};

// The paths .git/index tracks.
struct index_paths {
  std::unordered_set<std::string> files;        // every entry: files, links, submodules
  std::unordered_set<std::string> gitlinks;     // submodules (mode 160000)
  std::unordered_set<std::string> directories;  // every directory above a tracked path
};

// The index at `path` (versions 2, 3 and 4; `hash_size` 20 for SHA-1, 32 for SHA-256):
// empty when it does not exist, std::invalid_argument when it is not an index,
// file_error when it cannot be read.
index_paths read_index(const std::string& path, std::size_t hash_size);
// The same over the index's bytes, `path` naming it in errors (fuzz/ignore_fuzzer.cpp).
index_paths parse_index(std::string_view data, const std::string& path, std::size_t hash_size);
// Only the index's submodules (gitlinks), in the index's order, without building the sets
// of read_index: what SkyPilot's `git submodule foreach` starts from. Errors as read_index.
std::vector<std::string> read_gitlinks(const std::string& path, std::size_t hash_size);

struct listing_request {
  std::string top;         // the work tree's top, an absolute path without symbolic links
  std::string prefix;      // the directory listed, from the top ("" for the top itself)
  std::string index_path;  // the git directory's index
  std::size_t hash_size = 20;
  // info/exclude, then core.excludesFile: the weakest rules, strongest first (a file
  // that cannot be read has none).
  std::vector<std::string> exclude_files;
};

// The listing git prints in `prefix`, sorted by bytes: paths relative to it, directories
// with a trailing '/', "./" when git lists `prefix` itself. nullopt where git itself fails
// (run below a directory its rules exclude, git 2.39 stops with an internal error).
//
// The walk keeps its own stack (one frame a directory, holding its entries, no open
// descriptor), so no depth of tree overflows the C++ stack or the descriptor limit.
std::optional<std::vector<std::string>> list_ignored(const listing_request& request);

}  // namespace sky_async::ignore
