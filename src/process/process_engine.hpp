// The process engines: a batch of probes shared by the workers, and a wait for one
// process to exit on a worker's io_context.
#pragma once

#include "core/batch_operation.hpp"
#include "core/runtime_impl.hpp"

#include <sky_async/process.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace sky_async::detail {

// Tests only: makes wait_for_exit skip pidfd_open(2) and poll, as it does where
// pidfd_open is unavailable (ENOSYS, or EPERM from a seccomp filter).
void force_exit_polling(bool on) noexcept;

// probe_process() against an already known pid_max: a batch reads it once.
process_status probe_below(long long pid, std::optional<std::uint64_t> start_time, long long limit) noexcept;

// Pids one share holds at least: a probe of a missing pid is a fraction of a
// microsecond, less than handing work to another thread costs.
inline constexpr std::size_t min_pids_per_share = 512;

// The queries are split into contiguous shares, one per worker (fewer for small batches);
// each worker probes its share in slices, so that other calls' handlers get in between.
class probe_batch final : public batch_operation<probe_batch, std::vector<process_status>> {
 public:
  probe_batch(runtime_impl& rt, std::vector<process_query> queries);

  // Pieces and workers: one per share.
  void start(completion done) override;

 private:
  void run_slice(std::size_t share, std::size_t next);
  std::vector<process_status> take_result() override { return std::move(results_); }

  std::vector<process_query> queries_;
  // Entries not reached before a cancel read no_such_process.
  std::vector<process_status> results_;
  long long pid_max_ = 0;
  std::size_t share_count_ = 0;
};

// Waits on a pidfd registered with one worker's io_context, or polls where pidfd_open(2)
// is unavailable. One piece (the wait) on one worker, counted as no load: an idle wait
// costs the worker nothing until it completes. Every member but begun_ is touched only on
// that worker's thread once start() has posted begin().
class exit_waiter final : public batch_operation<exit_waiter, bool> {
 public:
  exit_waiter(runtime_impl& rt, long long pid, std::optional<std::chrono::steady_clock::duration> timeout);

  void start(completion done) override;

 private:
  void begin();
  void arm_timeout();
  void wait_on_pidfd();
  void poll_later();
  bool exited() const noexcept;
  // Once: releases the pidfd and the timers (here, on the worker thread that owns them)
  // and ends the piece.
  void finish(bool exited);
  // Wakes the worker to finish, once begin() has run (before, begin() sees the cancel).
  void stop() noexcept override;  // NOLINT(bugprone-exception-escape): see its definition
  // A cancelled wait reports no exit, even one seen just before the cancel.
  bool take_result() override { return exited_ && !completes_cancelled(); }

  worker* worker_ = nullptr;
  long long pid_;
  std::optional<std::chrono::steady_clock::duration> timeout_;
  // The start time seen at the start: a polling wait must not take a new process that
  // got the same pid for the one it waits for.
  std::optional<std::uint64_t> start_time_;
  std::optional<boost::asio::posix::stream_descriptor> pidfd_;
  std::optional<boost::asio::steady_timer> deadline_;
  std::optional<boost::asio::steady_timer> poll_timer_;
  std::chrono::milliseconds poll_interval_;
  bool finished_ = false;
  bool exited_ = false;
  // begin() has run: from then on a cancel must wake the worker. It and cancelled() meet
  // in the middle (both sequentially consistent), as launch() and cancel() do.
  std::atomic<bool> begun_{false};
};

}  // namespace sky_async::detail
