// The life of an engine operation, written once: registration with the runtime (so that
// shutdown cancels it and waits for it), the load it counts on the workers it runs on,
// the pieces of work it still waits for, cancellation, and the completion that runs
// exactly once. A feature derives from it and writes only its own per-item work.
//
//   start():  decide the pieces and workers -> launch() -> post the pieces -> started()
//   workers:  each piece of work ends with piece_done()
//   cancel(): stop(): the feature stops issuing work; unclaimed items finish as cancelled
//   last piece_done(): load released, unregistered, completion(cancelled, take_result())
//
// A piece is whatever the feature counts: an item (a file to hash), a job that holds a
// descriptor until it ends (tail), a share of a batch (probes), or the whole operation
// (a scan, a worker job). start() holds one piece of its own until started(), so that the
// operation cannot complete while it is still being started.
#pragma once

#include "core/runtime_impl.hpp"

#include <sky_async/detail/operation.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>

namespace sky_async::detail {

template <typename Derived, typename Result>
class batch_operation : public basic_operation<Result>, public std::enable_shared_from_this<Derived> {
 public:
  using typename basic_operation<Result>::completion;

  // Thread-safe and idempotent; see operation::cancel(). A cancel that comes before
  // start() is kept: the operation then starts cancelled and completes at once (with
  // every item cancelled), so a composed operation needs no care about the order.
  void cancel() noexcept final {
    if (cancelled_.exchange(true)) return;
    if (launched_.load()) stop_once();
  }

 protected:
  explicit batch_operation(runtime_impl& rt) noexcept : runtime_(rt) {}

  // Keeps `done`, counts one unit of load on each of `workers` consecutive workers (from
  // the least loaded one on), expects `pieces` calls of piece_done() and registers with
  // the runtime. False when the runtime is shutting down: the operation is then
  // cancelled (stop() has run) and nothing may be posted; the caller finishes the pieces
  // stop() did not, and still ends with started().
  bool launch(completion done, std::size_t workers, std::size_t pieces) {
    completion_ = std::move(done);
    workers_ = workers;
    if (workers != 0) {
      first_worker_ = runtime_.first_worker_for(workers);
      for (std::size_t k = 0; k < workers; ++k) worker_at(k).load.fetch_add(1, std::memory_order_relaxed);
    }
    outstanding_.store(pieces + 1, std::memory_order_relaxed);
    if (!runtime_.register_operation(this->shared_from_this())) {
      cancelled_.store(true);
      stop_once();
      return false;
    }
    // cancel() and this meet in the middle (both sequentially consistent): whichever
    // comes second sees the other's flag, and stop() runs once.
    launched_.store(true);
    if (cancelled_.load()) stop_once();
    return true;
  }

  // start() is over: the operation completes when its last piece is done (now, if none
  // is left).
  void started() { piece_done(); }

  void piece_done() {
    if (outstanding_.fetch_sub(1, std::memory_order_acq_rel) == 1) complete();
  }

  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }
  runtime_impl& runtime() const noexcept { return runtime_; }
  // The k-th of the workers launch() counted load on.
  worker& worker_at(std::size_t k) const noexcept { return runtime_.worker_at(first_worker_ + k); }

  // On cancel(), once, never before launch(): stop issuing new work and finish the
  // items nobody claimed. Work already in the kernel finishes first, and still ends its
  // piece.
  virtual void stop() noexcept {}
  // The result, taken once, when the last piece is done.
  virtual Result take_result() = 0;
  // In take_result(): whether the completion reports the operation cancelled. cancelled()
  // itself may turn true while the result is being made, after the completion's flag was
  // read.
  bool completes_cancelled() const noexcept { return completes_cancelled_; }

 private:
  void stop_once() noexcept {
    if (!stopped_.exchange(true)) stop();
  }

  void complete() {
    // The load is released here rather than as each worker lets go, which may be a moment
    // after the caller has its result and makes its next call.
    for (std::size_t k = 0; k < workers_; ++k) worker_at(k).load.fetch_sub(1, std::memory_order_relaxed);
    runtime_.unregister_operation(this);
    // Read once, before take_result(): a cancel may still come in while the result is made,
    // and the result must agree with what the completion reports.
    completes_cancelled_ = cancelled();
    Result result = take_result();
    auto done = std::move(completion_);
    done(completes_cancelled_, std::move(result));
  }

  runtime_impl& runtime_;
  completion completion_;
  std::size_t workers_ = 0;
  std::size_t first_worker_ = 0;
  std::atomic<std::size_t> outstanding_{0};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> launched_{false};  // registered: stop() may run
  std::atomic<bool> stopped_{false};
  bool completes_cancelled_ = false;  // written by complete(), before take_result()
};

}  // namespace sky_async::detail
