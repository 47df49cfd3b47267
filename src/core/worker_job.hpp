// An operation that runs one short blocking job (a directory listing, a port probe, the
// file mounts walk) on a runtime worker: registered with the runtime so that shutdown
// cancels and waits for it, and cancellable through a flag the job checks as it goes.
#pragma once

#include "core/batch_operation.hpp"
#include "core/runtime_impl.hpp"

#include <boost/asio/post.hpp>

#include <atomic>
#include <memory>
#include <utility>

namespace sky_async::detail {

template <typename Result>
class worker_job final : public batch_operation<worker_job<Result>, Result> {
  using base = batch_operation<worker_job<Result>, Result>;

 public:
  using job = unique_function<Result(const std::atomic<bool>& cancelled)>;

  worker_job(runtime_impl& rt, job work) : base(rt), work_(std::move(work)) {}

  // One piece (the job) on one worker: the least loaded one, counted as busy meanwhile
  // so that hash batches go elsewhere (in io_uring mode the job holds up that worker's
  // ring while it runs).
  void start(typename base::completion done) override {
    if (this->launch(std::move(done), 1, 1)) {
      boost::asio::post(this->worker_at(0).context(), [self = this->shared_from_this()] {
        if (!self->cancelled()) self->result_ = self->work_(self->stop_);
        self->piece_done();
      });
    } else {
      this->piece_done();
    }
    this->started();
  }

 private:
  void stop() noexcept override { stop_.store(true, std::memory_order_release); }
  Result take_result() override { return std::move(result_); }

  job work_;
  // What the job sees of a cancel: set by stop() (the job's own flag, so that it holds
  // no reference into the base).
  std::atomic<bool> stop_{false};
  Result result_{};
};

}  // namespace sky_async::detail
