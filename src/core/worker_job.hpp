// An operation that runs one short blocking job (a directory listing, a port probe) on
// a runtime worker: registered with the runtime so that shutdown cancels and waits for
// it, and cancellable through a flag the job checks as it goes.
#pragma once

#include "core/runtime_impl.hpp"

#include <sky_async/detail/operation.hpp>

#include <boost/asio/post.hpp>

#include <atomic>
#include <memory>
#include <utility>

namespace sky_async::detail {

template <typename Result>
class worker_job final : public basic_operation<Result>,
                         public std::enable_shared_from_this<worker_job<Result>> {
 public:
  using job = unique_function<Result(const std::atomic<bool>& cancelled)>;

  worker_job(runtime_impl& rt, job work) : runtime_(rt), work_(std::move(work)) {}

  void start(typename basic_operation<Result>::completion done) override {
    done_ = std::move(done);
    if (!runtime_.register_operation(this->shared_from_this())) {
      cancelled_.store(true, std::memory_order_relaxed);
      return complete(Result{});
    }
    // The least loaded worker, counted as busy meanwhile so that hash batches go elsewhere:
    // in io_uring mode the job holds up that worker's ring while it runs.
    worker& w = runtime_.worker_at(runtime_.first_worker_for(1));
    w.load.fetch_add(1, std::memory_order_relaxed);
    boost::asio::post(w.context(), [self = this->shared_from_this(), &w] {
      Result result =
          self->cancelled_.load(std::memory_order_acquire) ? Result{} : self->work_(self->cancelled_);
      w.load.fetch_sub(1, std::memory_order_relaxed);
      self->complete(std::move(result));
    });
  }

  void cancel() noexcept override { cancelled_.store(true, std::memory_order_release); }

 private:
  void complete(Result result) {
    runtime_.unregister_operation(this);
    auto done = std::move(done_);
    done(cancelled_.load(std::memory_order_acquire), std::move(result));
  }

  runtime_impl& runtime_;
  job work_;
  typename basic_operation<Result>::completion done_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace sky_async::detail
