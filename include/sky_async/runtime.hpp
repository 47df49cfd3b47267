// The runtime: worker threads, their Asio io_contexts and the file I/O backend they use.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sky_async {

namespace detail {
class runtime_impl;
struct runtime_access;  // src/core/runtime_impl.hpp: how the library reaches impl_
}  // namespace detail

// How file I/O is performed. Chosen once per runtime.
enum class io_backend {
  io_uring,  // one liburing ring per worker thread, batched submissions
  threads,   // plain blocking syscalls on the worker threads
};

std::string_view to_string(io_backend backend) noexcept;

// Accepts "io_uring" and "threads"; anything else gives std::nullopt.
std::optional<io_backend> parse_io_backend(std::string_view name) noexcept;

struct runtime_options {
  // Worker threads. 0 picks the cgroup-aware CPU count (io_uring) or twice that,
  // at least 4 (threads, where a worker blocks on each read).
  unsigned threads = 0;
  // std::nullopt reads SKY_ASYNC_IO_BACKEND (auto|io_uring|threads, default auto):
  // auto uses io_uring when a ring can be created and supports the operations we
  // need, and threads otherwise (seccomp EPERM, io_uring_disabled, ENOSYS, or no
  // descriptor free for a ring: EMFILE). Forcing io_uring where it is unavailable makes
  // the constructor throw.
  std::optional<io_backend> backend;
};

class runtime {
 public:
  // Throws std::system_error when io_uring is forced but unavailable (its code is the
  // cause's EMFILE/ENFILE when out of descriptors, ENOSYS otherwise) or a worker thread
  // cannot start, its what() beginning "sky_async's runtime could not start: ", and
  // std::invalid_argument for an unknown SKY_ASYNC_IO_BACKEND value.
  explicit runtime(runtime_options options = {});
  // Cancels what is still running, waits for it to release its files, joins the threads.
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  io_backend backend() const noexcept;
  // Why the threads backend was chosen ("forced", or the error that ruled io_uring
  // out); empty for io_uring.
  const std::string& backend_reason() const noexcept;
  unsigned threads() const noexcept;

  // The process-wide runtime used by the functions that take none. Created on first
  // use; a child process forked after that gets a fresh one on its first use.
  static runtime& global();

 private:
  friend struct detail::runtime_access;
  std::unique_ptr<detail::runtime_impl> impl_;
};

}  // namespace sky_async
