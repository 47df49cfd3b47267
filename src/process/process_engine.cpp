#include "process/process_engine.hpp"

#include "process/proc_stat.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <sys/syscall.h>
#include <unistd.h>

namespace sky_async::detail {

namespace {

// Probes between two looks at the cancel flag, and the time a worker spends on a batch
// before letting other handlers in.
constexpr std::size_t probes_between_checks = 256;
constexpr auto slice_time = std::chrono::milliseconds(1);

// The polling fallback of wait_for_exit: 1 ms at first (a short-lived process is seen
// at once), doubling up to 50 ms (a long wait costs about 20 wakeups a second).
constexpr auto first_poll_interval = std::chrono::milliseconds(1);
constexpr auto max_poll_interval = std::chrono::milliseconds(50);

std::atomic<bool> polling_forced{false};

int open_pidfd(long long pid) noexcept {
  if (polling_forced.load(std::memory_order_relaxed)) {
    errno = ENOSYS;
    return -1;
  }
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace

void force_exit_polling(bool on) noexcept { polling_forced.store(on, std::memory_order_relaxed); }

// ---------------------------------------------------------------------------------------------
// probe_batch

probe_batch::probe_batch(runtime_impl& rt, std::vector<process_query> queries)
    : batch_operation(rt),
      queries_(std::move(queries)),
      results_(queries_.size(), process_status::no_such_process) {}

void probe_batch::start(completion done) {
  const std::size_t count = queries_.size();
  pid_max_ = pid_max();
  if (count != 0) {
    share_count_ = std::clamp<std::size_t>(count / min_pids_per_share, 1, runtime().thread_count());
  }
  if (!launch(std::move(done), share_count_, share_count_)) {
    // Nothing may start: no share will run.
    for (std::size_t s = 0; s < share_count_; ++s) piece_done();
  } else {
    for (std::size_t s = 0; s < share_count_; ++s) {
      boost::asio::post(
          worker_at(s).context(),
          [self = shared_from_this(), s, begin = s * count / share_count_] { self->run_slice(s, begin); });
    }
  }
  started();
}

void probe_batch::run_slice(std::size_t share, std::size_t next) {
  const std::size_t end = (share + 1) * queries_.size() / share_count_;
  const auto deadline = std::chrono::steady_clock::now() + slice_time;
  while (next < end) {
    if (cancelled()) break;
    const std::size_t stop = std::min(end, next + probes_between_checks);
    for (; next < stop; ++next) {
      results_[next] = probe_below(queries_[next].pid, queries_[next].start_time, pid_max_);
    }
    if (next < end && std::chrono::steady_clock::now() >= deadline) {
      boost::asio::post(worker_at(share).context(),
                        [self = shared_from_this(), share, next] { self->run_slice(share, next); });
      return;
    }
  }
  piece_done();
}

// ---------------------------------------------------------------------------------------------
// exit_waiter

exit_waiter::exit_waiter(runtime_impl& rt, long long pid,
                         std::optional<std::chrono::steady_clock::duration> timeout)
    : batch_operation(rt), pid_(pid), timeout_(timeout), poll_interval_(first_poll_interval) {}

void exit_waiter::start(completion done) {
  worker_ = &runtime().worker_at(runtime().first_worker_for(1));
  if (launch(std::move(done), 0, 1)) {
    boost::asio::post(worker_->context(), [self = shared_from_this()] { self->begin(); });
  } else {
    piece_done();  // the wait never starts
  }
  started();
}

// post() may only throw bad_alloc, where terminating is the right outcome.
// NOLINTNEXTLINE(bugprone-exception-escape)
void exit_waiter::stop() noexcept {
  if (begun_.load()) {
    boost::asio::post(worker_->context(), [self = shared_from_this()] { self->finish(false); });
  }
}

bool exit_waiter::exited() const noexcept {
  return probe_process(pid_, start_time_) != process_status::alive;
}

void exit_waiter::begin() {
  begun_.store(true);
  if (cancelled()) return finish(false);
  if (pid_ <= 0 || pid_ > pid_max()) return finish(true);
  const int fd = open_pidfd(pid_);
  if (fd < 0 && errno == ESRCH) return finish(true);
  // Read after the pidfd pins the process: both then describe the same one.
  if (const auto stat = read_proc_stat(pid_)) start_time_ = stat->start_time;
  if (exited()) {
    if (fd >= 0) ::close(fd);
    return finish(true);
  }
  arm_timeout();
  if (fd >= 0) {
    // Registered and waited on in this one handler, on the thread that runs the reactor:
    // an exit before the registration is still seen (the pidfd is then readable).
    pidfd_.emplace(worker_->context(), fd);
    wait_on_pidfd();
  } else {
    // ENOSYS (old kernel), EPERM (a seccomp filter), EINVAL (a thread id), EMFILE...
    poll_later();
  }
}

void exit_waiter::arm_timeout() {
  if (!timeout_) return;
  deadline_.emplace(worker_->context());
  deadline_->expires_after(std::max(*timeout_, std::chrono::steady_clock::duration::zero()));
  deadline_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->finished_ || ec) return;
    // An exit that raced with the deadline still counts.
    self->finish(self->exited());
  });
}

void exit_waiter::wait_on_pidfd() {
  pidfd_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       if (self->finished_) return;
                       if (ec) {
                         // Not expected from a pidfd; polling still gets the right answer.
                         self->pidfd_.reset();
                         return self->poll_later();
                       }
                       // A pidfd becomes readable when the process exits (a zombie included).
                       self->finish(true);
                     });
}

void exit_waiter::poll_later() {
  if (!poll_timer_) poll_timer_.emplace(worker_->context());
  poll_timer_->expires_after(poll_interval_);
  poll_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->finished_ || ec) return;
    if (self->exited()) return self->finish(true);
    self->poll_interval_ = std::min(self->poll_interval_ * 2, max_poll_interval);
    self->poll_later();
  });
}

void exit_waiter::finish(bool exited) {
  if (finished_) return;
  finished_ = true;
  exited_ = exited;
  // Destroying them closes the pidfd and aborts their waits; the aborted handlers see
  // finished_ and do nothing.
  pidfd_.reset();
  deadline_.reset();
  poll_timer_.reset();
  piece_done();
}

}  // namespace sky_async::detail
