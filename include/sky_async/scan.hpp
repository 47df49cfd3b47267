// Scanning a directory tree: counts, sizes, the largest files and the problems a
// mount or an upload of the tree would hit, walked concurrently by the runtime's workers.
#pragma once

#include <sky_async/detail/async_operation.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sky_async {

// What can be wrong with an entry. The order is the tie-break of problems with the same path.
enum class scan_problem_kind {
  unreadable_directory,  // a directory that cannot be opened or listed (error set: EACCES, ...)
  unreadable_file,       // a regular file this process may not read (error: EACCES)
  broken_symlink,        // a symlink whose target does not exist (error: ENOENT or ENOTDIR)
  symlink_loop,          // a symlink that resolves to ELOOP (error set), or, with
                         // follow_symlinks, to a directory that contains it (no error):
                         // following it would never end (not followed, it is no problem)
  special_file,          // a FIFO, socket or device (or, with follow_symlinks, a link to one)
  invalid_utf8_name,     // the entry's own name is not valid UTF-8 (the root's is not checked)
  too_large,             // a regular file over scan_options::max_file_size (size set)
  stat_error,            // any other failure to stat the entry or its link target (error set)
};
inline constexpr std::size_t scan_problem_kind_count = 8;

// "unreadable_directory", ...: the names the Python API uses.
std::string_view to_string(scan_problem_kind kind) noexcept;
std::optional<scan_problem_kind> parse_scan_problem_kind(std::string_view name) noexcept;

struct scan_options {
  // Descend into symlinked directories and count symlinked files (see tree_scan). Loops
  // (a link to a directory that contains it) are reported instead of followed, and a
  // directory reached twice is scanned once.
  bool follow_symlinks = false;
  // Regular files larger than this many bytes are reported as too_large; 0: no limit.
  std::uint64_t max_file_size = 0;
  // How many of the largest regular files to keep.
  std::size_t largest = 10;
  // Whether to return the path of every regular file (memory grows with the tree).
  bool collect_files = false;
  // Problems kept in tree_scan::problems; every one is still counted in problem_counts.
  std::size_t max_problems = 1000;
  // Entries to leave out, as paths relative to the root: the names below it joined with
  // '/', raw bytes, no leading or trailing '/' ("node_modules", "src/build.log"). An entry
  // whose path is listed is skipped as if it were not there: it is not counted, not
  // reported, and a directory (or, with follow_symlinks, a symlink to one) is not descended,
  // so nothing below it is met. Paths through a followed symlink are named through the
  // link. The order does not matter; empty (the default): nothing is left out, at no cost.
  std::vector<std::string> excluded{};
};

struct scan_problem {
  scan_problem_kind kind{};
  std::string path;        // the root as given joined with the names below it; raw bytes
  std::error_code error;   // the errno, for the kinds that have one
  std::uint64_t size = 0;  // too_large: the file's size
};

struct scanned_file {
  std::string path;
  std::uint64_t size = 0;
};

// The result. Deterministic: the same tree gives the same result, whatever the
// number of workers and the order they happened to work in.
//
// - The root is what the caller named: a symlink as the root is followed, and the root
//   directory itself is not counted in `directories`. A root that is a regular file
//   gives files = 1; a special file as the root gives special_files = 1.
// - Every entry below the root is counted once by what it is (lstat): files,
//   directories, symlinks, special_files; an entry that cannot be stat'ed is counted
//   in none and reported as stat_error.
// - Without follow_symlinks a symlink is a leaf: its target is only resolved to
//   report broken_symlink and symlink_loop. With follow_symlinks a symlink is still
//   counted in `symlinks`, and its target is counted too (as a file, with its size,
//   under the link's path; as a special file; as a directory when it is descended).
// - A tree that changes while it is scanned has no problem for it: an entry listed in its
//   directory that no longer exists when the scan comes to stat or open it (ENOENT; or
//   ENOTDIR: a directory replaced by a file or a symlink, a symlinked directory whose
//   link now leads elsewhere) is counted in `vanished` and in none of the other counts.
//   What replaced it is not scanned, as no entry created in a directory after its
//   listing is. A directory removed while it is listed ends its listing there (as glibc's
//   readdir does), and a regular file removed after its stat is counted as found. The
//   root is not such an entry: a root that does not exist is the error of the scan.
struct tree_scan {
  // Set when the root itself cannot be scanned (missing, not searchable, ...); the
  // counts are then zero. The awaitable forms throw it as a filesystem_error.
  std::error_code error;

  std::uint64_t files = 0;
  std::uint64_t directories = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t special_files = 0;
  std::uint64_t bytes = 0;     // sum of st_size over the regular files counted in `files`
  std::uint64_t vanished = 0;  // entries gone between their listing and their stat or open

  // At most max_problems, sorted by (path, kind); the ones kept are the first in that
  // order, so which ones are kept does not depend on timing.
  std::vector<scan_problem> problems;
  // Every problem found, by kind (indexed by scan_problem_kind).
  std::array<std::uint64_t, scan_problem_kind_count> problem_counts{};
  // The `largest` biggest regular files, by size descending, then path ascending.
  std::vector<scanned_file> largest;
  // With collect_files: every regular file counted in `files`, sorted (bytewise).
  std::vector<std::string> file_paths;

  std::uint64_t count(scan_problem_kind kind) const noexcept {
    return problem_counts[static_cast<std::size_t>(kind)];
  }
  std::uint64_t total_problems() const noexcept {
    std::uint64_t total = 0;
    for (auto n : problem_counts) total += n;
    return total;
  }
};

using scan_signature = detail::operation_signature<tree_scan>;

namespace detail {
using scan_operation = basic_operation<tree_scan>;

std::shared_ptr<scan_operation> make_scan_operation(runtime& rt, const std::filesystem::path& root,
                                                    const scan_options& options);
}  // namespace detail

// Scans the tree at `root` on the runtime's workers. Completion signature
// void(boost::system::error_code, tree_scan): the error is operation_aborted when the
// scan was cancelled through the token's cancellation slot (every directory it opened
// is closed by then; the partial result is not meaningful). A root that cannot be
// scanned is reported in tree_scan::error, not as the completion's error.
//
// Resources: at most 2 directory descriptors per worker thread at any moment, whatever
// the depth or width of the tree; memory is the counters, the pending directories
// (one path each, depth-first per worker), the kept problems and largest files, and
// the file paths only with collect_files.
template <typename CompletionToken>
auto async_scan_tree(runtime& rt, std::filesystem::path root, scan_options options, CompletionToken&& token) {
  return detail::async_run<tree_scan>(
      [&rt, root = std::move(root), options = std::move(options)]() {
        return detail::make_scan_operation(rt, root, options);
      },
      std::forward<CompletionToken>(token));
}

// Throws std::filesystem::filesystem_error naming the root when it cannot be scanned.
boost::asio::awaitable<tree_scan> scan_tree(runtime& rt, std::filesystem::path root,
                                            scan_options options = {});
// On the process-wide runtime.
boost::asio::awaitable<tree_scan> scan_tree(std::filesystem::path root, scan_options options = {});

}  // namespace sky_async
