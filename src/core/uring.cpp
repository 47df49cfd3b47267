#include "core/uring.hpp"

#include <cerrno>
#include <string>
#include <system_error>

#include <sys/eventfd.h>
#include <unistd.h>

namespace sky_async::detail {

namespace {

// Why the kernel cannot run what we submit, or empty: a ring without IORING_OP_OPENAT,
// READ or CLOSE (kernels before 5.6).
std::string missing_opcode(io_uring& ring) {
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe == nullptr) return "io_uring probe failed";
  std::string reason;
  for (int op : {IORING_OP_OPENAT, IORING_OP_READ, IORING_OP_CLOSE}) {
    if (!io_uring_opcode_supported(probe, op)) {
      reason = "io_uring lacks opcode " + std::to_string(op);
      break;
    }
  }
  io_uring_free_probe(probe);
  return reason;
}

}  // namespace

uring::uring(unsigned entries) {
  if (int rc = io_uring_queue_init(entries, &ring_, 0); rc < 0) {
    throw std::system_error(-rc, std::system_category(), "io_uring_setup");
  }
  if (std::string missing = missing_opcode(ring_); !missing.empty()) {
    io_uring_queue_exit(&ring_);
    throw std::system_error(ENOSYS, std::system_category(), missing);
  }
  // A child forked while the ring exists must not share its memory; it builds its own.
  io_uring_ring_dontfork(&ring_);
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) {
    const int err = errno;
    io_uring_queue_exit(&ring_);
    throw std::system_error(err, std::system_category(), "eventfd");
  }
  // Not the _async variant: it signals only completions posted by io-wq threads, and
  // recent kernels post those through task work on this thread instead, unsignalled.
  if (int rc = io_uring_register_eventfd(&ring_, event_fd_); rc < 0) {
    ::close(event_fd_);
    io_uring_queue_exit(&ring_);
    throw std::system_error(-rc, std::system_category(), "io_uring_register_eventfd");
  }
}

uring::~uring() {
  io_uring_queue_exit(&ring_);
  // The eventfd is owned by the Asio descriptor that watches it once one exists.
  if (event_fd_ >= 0) ::close(event_fd_);
}

io_uring_sqe* uring::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    submit();
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void uring::submit() {
  // -EBUSY means the completion queue must be drained first; the caller's loop
  // drains and submits again, so only interrupted calls are retried here.
  int rc;
  do {
    rc = io_uring_submit(&ring_);
  } while (rc == -EINTR);
}

bool uring::has_unsubmitted() const noexcept { return io_uring_sq_ready(&ring_) > 0; }

bool uring::has_completions() const noexcept { return io_uring_cq_ready(&ring_) > 0; }

void uring::notify(bool enabled) noexcept {
  // Kernels before 5.8 cannot switch it off; they only cost spurious wakeups.
  io_uring_cq_eventfd_toggle(&ring_, enabled);
}

}  // namespace sky_async::detail
