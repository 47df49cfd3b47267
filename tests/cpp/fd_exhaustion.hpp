// Helpers for the cases about running out of descriptors: taking every descriptor the
// process may still open, and watching how many descriptors under a directory are open.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace sky_async_test {

// UBSan (built together with ASan by scripts/sanitize) checks a vptr by first testing
// that the memory is readable through a pipe(); with no descriptor free the pipe fails
// and it reports a valid object (std::system_category()) as one with an invalid vptr.
#if defined(__SANITIZE_ADDRESS__)
#define SKY_ASYNC_SKIP_WHERE_THE_SANITIZER_NEEDS_DESCRIPTORS() \
  GTEST_SKIP() << "UBSan's vptr check needs a free descriptor (a pipe) to test memory"
#else
#define SKY_ASYNC_SKIP_WHERE_THE_SANITIZER_NEEDS_DESCRIPTORS() static_cast<void>(0)
#endif

// For its scope: the soft RLIMIT_NOFILE lowered to `limit` (so that filling the table
// is quick), every descriptor under it taken (opens of /dev/null), then `leave_free`
// of them given back. Restores both at the end.
class descriptors_taken {
 public:
  explicit descriptors_taken(std::size_t leave_free = 0, rlim_t limit = 256) {
    if (::getrlimit(RLIMIT_NOFILE, &old_) != 0) throw std::system_error(errno, std::generic_category());
    int highest = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      highest = std::max(highest, std::stoi(entry.path().filename().string()));
    }
    struct rlimit lowered = old_;
    lowered.rlim_cur = std::min(old_.rlim_max, std::max<rlim_t>(limit, static_cast<rlim_t>(highest) + 16));
    if (::setrlimit(RLIMIT_NOFILE, &lowered) != 0) throw std::system_error(errno, std::generic_category());
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno != EMFILE) throw std::system_error(errno, std::generic_category(), "open /dev/null");
        break;
      }
      taken_.push_back(fd);
    }
    for (std::size_t i = 0; i < leave_free && !taken_.empty(); ++i) give_back_one();
  }
  ~descriptors_taken() {
    while (!taken_.empty()) give_back_one();
    ::setrlimit(RLIMIT_NOFILE, &old_);
  }
  descriptors_taken(const descriptors_taken&) = delete;
  descriptors_taken& operator=(const descriptors_taken&) = delete;

  void give_back_one() {
    ::close(taken_.back());
    taken_.pop_back();
  }

 private:
  struct rlimit old_{};
  std::vector<int> taken_;
};

// For its scope, a thread counting again and again this process's descriptors that
// point at `directory` or below it (files, and directories opened to open files
// relative to them); peak() is the most it saw at once.
class descriptor_peak {
 public:
  explicit descriptor_peak(const std::filesystem::path& directory)
      : root_(std::filesystem::canonical(directory).string()), thread_([this] {
          while (!done_.load()) {
            const std::size_t now = count();
            if (now > peak_.load()) peak_.store(now);
          }
        }) {}
  ~descriptor_peak() { stop(); }
  descriptor_peak(const descriptor_peak&) = delete;
  descriptor_peak& operator=(const descriptor_peak&) = delete;

  std::size_t stop() {
    done_.store(true);
    if (thread_.joinable()) thread_.join();
    return peak_.load();
  }

 private:
  std::size_t count() const {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
      std::error_code gone;  // closed meanwhile
      const std::string target = std::filesystem::read_symlink(entry.path(), gone).string();
      if (!gone && (target == root_ || target.starts_with(root_ + "/"))) ++n;
    }
    return n;
  }

  std::string root_;
  std::atomic<bool> done_{false};
  std::atomic<std::size_t> peak_{0};
  std::thread thread_;
};

}  // namespace sky_async_test
