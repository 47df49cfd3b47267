#include "core/file_reader.hpp"

#include "core/digest.hpp"

#include <sky_async/error.hpp>

#include <cerrno>

#include <unistd.h>

namespace sky_async::detail {

std::error_code check_regular_file(const struct stat& st) noexcept {
  if (S_ISREG(st.st_mode)) return {};
  if (S_ISDIR(st.st_mode)) return std::make_error_code(std::errc::is_a_directory);
  return make_error_code(errc::not_a_regular_file);
}

std::error_code open_error(const char* path, int error) noexcept {
  struct stat st{};
  if (error == ENXIO && ::stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    return make_error_code(errc::not_a_regular_file);
  }
  return {error, std::system_category()};
}

namespace {

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

}  // namespace

void scoped_fd::reset(int fd) noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_released();
  }
  fd_ = fd;
}

std::error_code open_regular_file_at(int dirfd, const char* name, const char* path, scoped_fd& fd,
                                     struct stat& st) {
  const int raw = ::openat(dirfd, name, read_open_flags);
  if (raw < 0) return open_error(path, errno);
  fd.reset(raw);
  if (::fstat(fd.get(), &st) != 0) return last_error();
  return check_regular_file(st);
}

std::error_code open_regular_file(const char* path, const std::function<bool()>& abandoned, scoped_fd& fd,
                                  struct stat& st) {
  bool stopped = false;
  const auto ec = retry_while_out_of_descriptors(
      [&] { return open_regular_file_at(AT_FDCWD, path, path, fd, st); }, abandoned, &stopped);
  return stopped ? std::make_error_code(std::errc::operation_canceled) : ec;
}

std::error_code hash_path_blocking(const char* path, hash_algorithm algorithm, digest& digest,
                                   unsigned char* buffer, const std::function<bool()>& abandoned,
                                   std::string& hex) {
  scoped_fd fd;
  struct stat st{};
  if (auto ec = open_regular_file(path, abandoned, fd, st)) return ec;

  digest.start(algorithm);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t offset = 0;
  for (;;) {
    if (abandoned()) {
      return std::make_error_code(std::errc::operation_canceled);
    }
    const ssize_t got = ::read(fd.get(), buffer, chunk_size);
    if (got < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    digest.update(buffer, static_cast<std::size_t>(got));
    offset += static_cast<std::uint64_t>(got);
    if (reached_eof(static_cast<std::size_t>(got), chunk_size, offset, size)) break;
  }
  hex = digest.finish_hex();
  return {};
}

}  // namespace sky_async::detail
