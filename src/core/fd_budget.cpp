#include "core/fd_budget.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <utility>

#include <pthread.h>

namespace sky_async::detail {

struct fd_state {
  // Descriptors of ours closed so far (only its changes matter).
  std::atomic<std::uint64_t> releases{0};
  // Blocked waits plus subscribed fd_waiters: a release without any skips the lock.
  std::atomic<unsigned> waiting{0};

  std::mutex mutex;
  std::condition_variable released;
  std::vector<fd_waiter*> waiters;
  // The current shortage: `releases` when it began, then, and its latest refusal.
  std::uint64_t shortage_releases = ~std::uint64_t{0};
  fd_clock::time_point shortage_began{};
  fd_clock::time_point last_refusal{};
};

namespace {

std::atomic<fd_state*> current_state{nullptr};

// Never destroyed: worker threads may release descriptors until the process exits.
// A child of fork() gets a fresh one, as it gets a fresh runtime: the parent's may be
// locked by a thread that does not exist there, and counts the parent's waiters.
fd_state& state() {
  static const bool initialised = [] {
    current_state.store(new fd_state, std::memory_order_release);
    ::pthread_atfork(nullptr, nullptr, [] { current_state.store(new fd_state, std::memory_order_release); });
    return true;
  }();
  (void)initialised;
  return *current_state.load(std::memory_order_acquire);
}

}  // namespace

void fd_released() noexcept {
  fd_state& s = state();
  // Sequentially consistent, paired with the waiters' increment of `waiting` followed by
  // their load of `releases`: either this sees the waiter, or the waiter sees this release.
  s.releases.fetch_add(1);
  if (s.waiting.load() == 0) return;
  std::lock_guard lock(s.mutex);
  s.released.notify_all();
  for (fd_waiter* waiter : s.waiters) waiter->poke();
}

void fd_retry::attempting() noexcept { seen_ = state().releases.load(); }

bool fd_retry::should_retry(int error) {
  if (!out_of_descriptors(error)) return false;
  fd_state& s = state();
  std::lock_guard lock(s.mutex);
  const auto now = fd_clock::now();
  const std::uint64_t releases = s.releases.load();
  if (releases != seen_) {
    // One of ours closed since this attempt: there may be a descriptor for it now.
    retry_at_ = now;
    return true;
  }
  if (releases != s.shortage_releases || now - s.last_refusal > fd_shortage_grace) {
    // A new shortage: after a release of ours, or when nothing was refused for a while
    // (a later batch gets its own grace).
    s.shortage_releases = releases;
    s.shortage_began = now;
  }
  s.last_refusal = now;
  const auto deadline = s.shortage_began + fd_shortage_grace;
  if (now >= deadline) return false;
  // Soon at first (a neighbour's file is usually about to close), then less often.
  const auto backoff = std::clamp<fd_clock::duration>((now - s.shortage_began) / 8,
                                                      std::chrono::milliseconds(1), fd_retry_poll);
  retry_at_ = std::min(now + backoff, deadline);
  return true;
}

void fd_retry::wait() const {
  fd_state& s = state();
  std::unique_lock lock(s.mutex);
  s.waiting.fetch_add(1);
  s.released.wait_until(lock, retry_at_, [&] { return s.releases.load() != seen_; });
  s.waiting.fetch_sub(1);
}

// ---------------------------------------------------------------------------------------------
// fd_waiter

fd_waiter::fd_waiter(boost::asio::io_context& context) : context_(context), timer_(context) {}

fd_waiter::~fd_waiter() { unsubscribe(); }

void fd_waiter::wait(const fd_retry& attempt, std::function<void()> retry) {
  pending_.push_back(pending{attempt.seen(), attempt.retry_at(), std::move(retry)});
  if (subscribed_ == nullptr) {
    fd_state& s = state();
    std::lock_guard lock(s.mutex);
    s.waiters.push_back(this);
    s.waiting.fetch_add(1);
    subscribed_ = &s;
  }
  // A release between the attempt and the subscription poked nobody.
  if (subscribed_->releases.load() != attempt.seen()) poke();
  arm_timer();
}

void fd_waiter::poke() noexcept {
  if (poked_.exchange(true)) return;  // one wakeup pending is enough
  try {
    boost::asio::post(context_, [this] {
      poked_.store(false);
      run_due();
    });
  } catch (...) {
    // Out of memory for the handler: the timer retries a moment later anyway.
    poked_.store(false);
  }
}

void fd_waiter::run_due() {
  if (pending_.empty()) return;
  const std::uint64_t releases = subscribed_ != nullptr ? subscribed_->releases.load() : 0;
  const auto now = fd_clock::now();
  std::vector<std::function<void()>> due;
  auto kept = pending_.begin();
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->seen != releases || it->at <= now) {
      due.push_back(std::move(it->retry));
    } else {
      if (kept != it) *kept = std::move(*it);
      ++kept;
    }
  }
  pending_.erase(kept, pending_.end());
  // A retry may wait again, adding to pending_.
  for (auto& retry : due) retry();
  if (pending_.empty()) {
    unsubscribe();
  } else {
    arm_timer();
  }
}

void fd_waiter::arm_timer() {
  fd_clock::time_point earliest = fd_clock::time_point::max();
  for (const auto& p : pending_) earliest = std::min(earliest, p.at);
  if (earliest >= timer_at_) return;  // armed for then or sooner already
  timer_at_ = earliest;
  const unsigned generation = ++timer_generation_;
  timer_.expires_at(earliest);
  timer_.async_wait([this, generation](const boost::system::error_code&) {
    if (generation != timer_generation_) return;  // moved earlier since: that wait runs instead
    timer_at_ = fd_clock::time_point::max();
    run_due();
  });
}

void fd_waiter::unsubscribe() noexcept {
  if (subscribed_ == nullptr) return;
  fd_state& s = *std::exchange(subscribed_, nullptr);
  std::lock_guard lock(s.mutex);
  std::erase(s.waiters, this);
  s.waiting.fetch_sub(1);
}

}  // namespace sky_async::detail
