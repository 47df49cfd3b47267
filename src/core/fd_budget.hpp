// Running out of file descriptors (EMFILE, ENFILE), handled one way by every engine.
//
// Every close of a descriptor that the engines opened is counted, process-wide
// (fd_released). An open refused for lack of descriptors is tried again as soon as one
// of ours was released since it was tried, and otherwise waits for the next release,
// trying again every few milliseconds meanwhile (a file closed elsewhere in the process
// is not counted). The refusals of one shortage share one deadline: once no descriptor
// of ours was released for fd_shortage_grace, every open refused in that shortage fails
// with its error, the first after waiting the grace and the ones after it at once, until
// a release of ours (or a pause in the refusals) starts a new shortage. So a batch of
// 1,000 files with no descriptor free fails each file within about the grace in all,
// not per file, while a batch under a low RLIMIT_NOFILE keeps going as long as its own
// (or its neighbours') files keep closing.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <system_error>
#include <vector>

namespace sky_async::detail {

struct fd_state;

using fd_clock = std::chrono::steady_clock;

// How long the process may go without a release of ours before a shortage's refused
// opens fail (the old rule gave each file about this long).
inline constexpr std::chrono::milliseconds fd_shortage_grace{2000};
// The longest a waiting open goes without trying again: what a descriptor closed
// elsewhere in the process, or a cancelled call, waits for at most.
inline constexpr std::chrono::milliseconds fd_retry_poll{10};

inline bool out_of_descriptors(int error) noexcept { return error == EMFILE || error == ENFILE; }

// Call after closing a descriptor that this library opened: it may let a waiting open
// through. Any thread; cheap (two atomic operations) when nothing waits.
void fd_released() noexcept;

// One open's way through a shortage. Not thread-safe; one per file being opened.
class fd_retry {
 public:
  // Call right before each attempt to open.
  void attempting() noexcept;
  // The attempt failed with `error` (an errno value). True: try again at retry_at(), or
  // as soon as a descriptor of ours is released (wait() or fd_waiter::wait()). False:
  // report the error, which is not a shortage of descriptors, or is one in which none
  // of ours was released for fd_shortage_grace.
  [[nodiscard]] bool should_retry(int error);
  // Blocks until a descriptor of ours is released after the attempt, or retry_at().
  // For threads that may block; an io_uring worker uses fd_waiter instead.
  void wait() const;

  std::uint64_t seen() const noexcept { return seen_; }
  fd_clock::time_point retry_at() const noexcept { return retry_at_; }

 private:
  std::uint64_t seen_ = 0;  // releases counted before the attempt
  fd_clock::time_point retry_at_{};
};

// The blocking way through a shortage, for a thread that may block (an io_uring worker
// waits with fd_waiter instead): calls `attempt()`, one open that returns its error (none
// on success), right after telling a fresh fd_retry, and again after fd_retry::wait() for
// as long as the open is refused for lack of descriptors and fd_retry says to wait.
// `stopped()`, asked before each wait, ends it early: then `*was_stopped` is set and the
// refusal returned. Otherwise the error of the last attempt is returned.
template <class Attempt, class Stopped>
std::error_code retry_while_out_of_descriptors(Attempt&& attempt, Stopped&& stopped,
                                               bool* was_stopped = nullptr) {
  fd_retry retry;
  for (;;) {
    retry.attempting();
    const std::error_code error = attempt();
    if (!error || error.category() != std::system_category() || !retry.should_retry(error.value()))
      return error;
    if (stopped()) {
      if (was_stopped != nullptr) *was_stopped = true;
      return error;
    }
    retry.wait();
  }
}

// The waiting of fd_retry::wait() without blocking, for an io_uring worker: its thread
// also drives its ring, whose completions (and closes, the releases waited for) would
// wait as long as it sleeps. Owned by the worker and used on its thread only; destroy it
// only once its io_context no longer runs. Its timer needs the context's reactor, which
// an io_uring worker already has (a threads worker has none, and making one takes three
// descriptors: the reason this is not used there).
class fd_waiter {
 public:
  explicit fd_waiter(boost::asio::io_context& context);
  ~fd_waiter();
  fd_waiter(const fd_waiter&) = delete;
  fd_waiter& operator=(const fd_waiter&) = delete;

  // Calls `retry` on the context's thread once a descriptor of ours was released after
  // the attempt of `attempt`, or at its retry_at(), whichever comes first.
  void wait(const fd_retry& attempt, std::function<void()> retry);

  // Any thread: a descriptor of ours was released (called by fd_released()).
  void poke() noexcept;

 private:
  struct pending {
    std::uint64_t seen;
    fd_clock::time_point at;
    std::function<void()> retry;
  };

  // Runs the retries that are due: a release since their attempt, or their time came.
  void run_due();
  void arm_timer();
  void unsubscribe() noexcept;

  boost::asio::io_context& context_;
  boost::asio::steady_timer timer_;
  fd_clock::time_point timer_at_ = fd_clock::time_point::max();
  unsigned timer_generation_ = 0;  // a wait whose expiry was moved since ignores its wakeup
  std::vector<pending> pending_;
  fd_state* subscribed_ = nullptr;  // the state whose releases poke() this waiter
  std::atomic<bool> poked_{false};
};

}  // namespace sky_async::detail
