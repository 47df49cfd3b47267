// A liburing ring owned by one worker thread, with an eventfd that Asio watches.
#pragma once

#include <liburing.h>

#include <string>

#if defined(__SANITIZE_THREAD__)
#define SKY_ASYNC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SKY_ASYNC_TSAN 1
#endif
#endif
#ifdef SKY_ASYNC_TSAN
// The sanitizer runtime's hook for a close(2) it cannot intercept.
extern "C" void __sanitizer_syscall_pre_impl_close(long fd);
#endif

namespace sky_async::detail {

// Queues the close of `fd`; use it rather than io_uring_prep_close. ThreadSanitizer follows
// descriptors through the libc calls it intercepts, and the ring opens and closes them in
// the kernel, unseen: without being told of the close, it pairs our use of a descriptor
// number with another thread's later, unrelated use of the same number (reported as a
// race). Nothing but the close in other builds.
inline void prep_close(io_uring_sqe* sqe, int fd) noexcept {
#ifdef SKY_ASYNC_TSAN
  __sanitizer_syscall_pre_impl_close(fd);
#endif
  io_uring_prep_close(sqe, fd);
}

class uring {
 public:
  // Throws std::system_error when the ring or its eventfd cannot be created, or the
  // kernel lacks an operation we submit; its what() says why ("io_uring_setup: ..." for
  // seccomp's EPERM, kernel.io_uring_disabled, ENOSYS; EMFILE: no descriptor for it).
  //
  // Make it on the thread that will submit to it, and only there: the kernel ties a
  // ring to the thread that creates it, and task work it queues for that thread makes
  // the thread's blocking system calls return early (a write to a full pipe returns
  // short, and Python's print() drops the rest of its text).
  explicit uring(unsigned entries);
  ~uring();
  uring(const uring&) = delete;
  uring& operator=(const uring&) = delete;

  // A free submission entry; submits what is queued first when the queue is full.
  io_uring_sqe* next_sqe();
  // Submits queued entries; page-cache reads, cached opens and closes complete
  // inside this call, so their completions are ready right after it.
  void submit();
  bool has_unsubmitted() const noexcept;
  bool has_completions() const noexcept;
  // Whether completions write the eventfd. Off while the owner is draining anyway,
  // which saves a write per completion and a spurious wakeup per batch.
  void notify(bool enabled) noexcept;

  // Calls f(user_data, res) for every ready completion and consumes them.
  template <typename F>
  unsigned drain_completions(F&& f) {
    unsigned count = 0;
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++count;
      f(io_uring_cqe_get_data64(cqe), cqe->res);
    }
    io_uring_cq_advance(&ring_, count);
    return count;
  }

  // Readable when completions arrived while notifications were on.
  int event_fd() const noexcept { return event_fd_; }

 private:
  io_uring ring_{};
  int event_fd_ = -1;
};

}  // namespace sky_async::detail
