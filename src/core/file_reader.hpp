// What reading one file means, shared by the io_uring and the thread backends so
// that both open, check and stop at EOF by the same rules.
#pragma once

#include "core/fd_budget.hpp"

#include <sky_async/hash.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>

namespace sky_async::detail {

class digest;

// 128 KiB stays in L2 while it is hashed; larger buffers only cost page faults.
inline constexpr std::size_t chunk_size = std::size_t{128} * 1024;

// O_NONBLOCK: opening a FIFO must not wait for a writer (it is then rejected by
// check_regular_file). It changes nothing for regular files.
inline constexpr int read_open_flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

// EISDIR for a directory, not_a_regular_file for FIFOs, sockets and devices.
std::error_code check_regular_file(const struct stat& st) noexcept;

// The error to report for a failed open: a socket (and a device without a driver)
// fails with ENXIO, which says less than "not a regular file".
std::error_code open_error(const char* path, int error) noexcept;

// Closes the descriptor it owns when it goes out of scope (a release, for fd_budget).
class scoped_fd {
 public:
  scoped_fd() noexcept = default;
  explicit scoped_fd(int fd) noexcept : fd_(fd) {}
  ~scoped_fd() { reset(); }
  scoped_fd(const scoped_fd&) = delete;
  scoped_fd& operator=(const scoped_fd&) = delete;
  int get() const noexcept { return fd_; }
  void reset(int fd = -1) noexcept;
  // Hands the descriptor over to the caller, who closes it.
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// Opens `name` relative to the directory `dirfd` (or AT_FDCWD) with read_open_flags into
// `fd` (one attempt: tell the fd_retry first) and fstat()s it into `st`. `path` is the
// whole path, for open_error()'s look at a refused file. Returns the errors of
// open_error() (EMFILE/ENFILE among them: ask the fd_retry whether to try again) and of
// check_regular_file().
std::error_code open_regular_file_at(int dirfd, const char* name, const char* path, scoped_fd& fd,
                                     struct stat& st);

// The same by whole path, for threads that may block: out of descriptors, it waits as
// retry_while_out_of_descriptors does (fd_budget.hpp), returning operation_canceled once
// `abandoned()`.
std::error_code open_regular_file(const char* path, const std::function<bool()>& abandoned, scoped_fd& fd,
                                  struct stat& st);

// Whether a read that returned `got` of `wanted` bytes, leaving the offset at
// `offset`, reached EOF. Files are read until a read returns 0, except that a short
// read at or past the size seen at open is EOF already: this saves the extra read
// per small file, and files under /proc (size 0) still read to their real end.
inline bool reached_eof(std::size_t got, std::size_t wanted, std::uint64_t offset,
                        std::uint64_t size) noexcept {
  return got == 0 || (got < wanted && size != 0 && offset >= size);
}

// The whole open/check/read/hash/close sequence with blocking syscalls, for the
// threads backend. Returns operation_canceled once `abandoned()` is true (asked
// before every read).
std::error_code hash_path_blocking(const char* path, hash_algorithm algorithm, digest& digest,
                                   unsigned char* buffer, const std::function<bool()>& abandoned,
                                   std::string& hex);

}  // namespace sky_async::detail
