// SkyPilot's file-mount digest: one SHA-256 over every file of every mount, in the
// byte layout of SkyPilot's `_deterministic_cluster_yaml_hash`, with the files hashed
// concurrently on the runtime.
#pragma once

#include <sky_async/detail/async_operation.hpp>
#include <sky_async/hash.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/awaitable.hpp>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace sky_async {

struct file_mount {
  std::string destination;  // the remote path; fed as its bytes
  // The local path. A leading `~` or `~user` is expanded as Python's
  // os.path.expanduser does; relative paths are relative to the working directory
  // and are fed as given (SkyPilot feeds the walked directory paths themselves).
  std::filesystem::path source;
};

// A path below a mount that SkyPilot could not hash (or would hang on): a broken
// symlink, a FIFO, socket or device (errc::not_a_regular_file), an unreadable file or
// directory.
struct file_mount_problem {
  std::filesystem::path path;
  std::error_code error;
};

// Every problem of one call, found after the whole walk: a caller sees all of them at once.
class file_mounts_error : public std::runtime_error {
 public:
  explicit file_mounts_error(std::vector<file_mount_problem> problems);
  const std::vector<file_mount_problem>& problems() const noexcept { return problems_; }

 private:
  std::vector<file_mount_problem> problems_;
};

// What async_file_mounts_digest completes with: the digest, or every problem (sorted by
// path) and no digest.
struct file_mounts_result {
  std::string digest;
  std::vector<file_mount_problem> problems;
  bool ok() const noexcept { return problems.empty(); }
};

namespace detail {
using mounts_digest_operation = basic_operation<file_mounts_result>;

std::shared_ptr<mounts_digest_operation> make_mounts_digest_operation(runtime& rt,
                                                                      std::vector<file_mount> mounts,
                                                                      std::string prefix,
                                                                      hash_options options);
}  // namespace detail

// The lower-case hex SHA-256 of `prefix` followed by SkyPilot's file-mount stream:
// mounts in sorted (destination, source) order; per mount the destination and a
// NUL; for a regular file (symlinks followed) "file" and its raw SHA-256; for a
// directory "dir" and, for every directory of a top-down walk that lists but does not
// descend into symlinked directories, its path, its subdirectory names, its file
// names each followed by the file's raw SHA-256, with NUL separators; for anything
// else (missing, not local) nothing; then two NULs. Names sort as bytes, which is
// Python's order for UTF-8 names; names that are not UTF-8 (where SkyPilot raises
// UnicodeEncodeError) are fed as their raw bytes. As in SkyPilot 0.14.1, gcloud's
// credential caches (`credentials.db`, `access_tokens.db` and their `-journal`, `-wal`
// and `-shm` files) are named but their content is neither read nor fed.
//
// SkyPilot's YAML prefix is the raw SHA-256 of its normalised cluster YAML: pass it as
// `prefix` to reproduce the whole `_deterministic_cluster_yaml_hash`; skipping the YAML's
// own mount is the caller's choice, as it is SkyPilot's.
//
// Completes with a file_mounts_result listing every problem (where SkyPilot would abort
// on the first one, hang on a FIFO, or silently skip an unreadable directory), and no
// digest then. options.concurrency bounds the files open at once; stop_on_error is
// ignored. Completion signature: void(boost::system::error_code, file_mounts_result); the
// error is operation_aborted when cancelled through the token's cancellation slot, which
// stops the walk and the hashing; the completion comes once every file is closed.
template <typename CompletionToken>
auto async_file_mounts_digest(runtime& rt, std::vector<file_mount> mounts, std::string prefix,
                              hash_options options, CompletionToken&& token) {
  return detail::async_run<file_mounts_result>(
      [&rt, mounts = std::move(mounts), prefix = std::move(prefix), options]() mutable {
        return detail::make_mounts_digest_operation(rt, std::move(mounts), std::move(prefix), options);
      },
      std::forward<CompletionToken>(token));
}

// The coroutine form: the digest, or file_mounts_error with every problem.
boost::asio::awaitable<std::string> file_mounts_digest(runtime& rt, std::vector<file_mount> mounts,
                                                       std::string prefix = {}, hash_options options = {});

// On the process-wide runtime.
boost::asio::awaitable<std::string> file_mounts_digest(std::vector<file_mount> mounts,
                                                       std::string prefix = {}, hash_options options = {});

}  // namespace sky_async
