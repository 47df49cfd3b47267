// The runtime's insides: its workers, and the registry of running operations that
// lets destruction cancel them and wait for their files to close.
#pragma once

#include "core/fd_budget.hpp"
#include "core/uring.hpp"

#include <sky_async/detail/operation.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace sky_async::detail {

namespace asio = boost::asio;

// Submission queue entries of each worker's ring. A feature that keeps entries in the
// ring sizes itself to fit (hash_engine.hpp checks its slots against it).
inline constexpr unsigned ring_entries_per_worker = 64;

// Hands out the index of a worker-local state type (worker::local), once per type.
std::size_t next_worker_local_index() noexcept;

// Something waiting for a ring completion; the ring's user_data points at it.
class uring_request {
 public:
  virtual void on_complete(int result) = 0;

 protected:
  ~uring_request() = default;
};

// One thread running one io_context, and in io_uring mode one ring used only from
// that thread: no locks on the hot path, and submissions batch naturally.
class worker {
 public:
  worker(unsigned index, io_backend backend);
  ~worker();  // NOLINT(bugprone-exception-escape): see its definition
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Starts the thread; in io_uring mode it makes its ring first, and a ring that cannot
  // be made is thrown here (std::system_error, or Asio's for its reactor).
  void start();
  // Stops the thread once its queued handlers have run; call after every operation finished.
  void stop_and_join();

  unsigned index() const noexcept { return index_; }
  asio::io_context& context() noexcept { return context_; }
  uring* ring() noexcept { return ring_.get(); }
  // io_uring mode: where work on this thread waits for a file descriptor, since it must
  // not block (nullptr in threads mode, where it blocks: fd_retry::wait()).
  fd_waiter* fd_waits() noexcept { return fd_waits_ ? &*fd_waits_ : nullptr; }
  // The state a feature keeps on this worker: a `State` made from this worker on first
  // use, and destroyed with the worker once its thread stopped. Only this worker's thread
  // may call it or touch the state. The runtime stores it without knowing its type.
  template <class State>
  State& local();

  // Call after queueing ring submissions from outside the completion loop.
  void request_pump();

  // Unfinished batches that have a share on this worker; any thread may read it.
  std::atomic<unsigned> load{0};

 private:
  void pump();
  void open_ring();
  void wait_for_ring();

  unsigned index_;
  io_backend backend_;
  asio::io_context context_{1};
  asio::executor_work_guard<asio::io_context::executor_type> keep_running_;
  std::unique_ptr<uring> ring_;
  std::optional<asio::posix::stream_descriptor> ring_signal_;
  std::optional<fd_waiter> fd_waits_;
  // worker::local's states by type index; shared_ptr<void> only for its type-erased
  // deleter (never shared).
  std::vector<std::shared_ptr<void>> locals_;
  bool pump_posted_ = false;
  bool in_pump_ = false;
  std::thread thread_;
};

template <class State>
State& worker::local() {
  static const std::size_t index = next_worker_local_index();
  if (locals_.size() <= index) locals_.resize(index + 1);
  std::shared_ptr<void>& held = locals_[index];
  if (!held) held = std::make_shared<State>(*this);
  return *static_cast<State*>(held.get());
}

class runtime_impl {
 public:
  explicit runtime_impl(const runtime_options& options);
  ~runtime_impl();  // NOLINT(bugprone-exception-escape): see its definition

  io_backend backend() const noexcept { return backend_; }
  const std::string& backend_reason() const noexcept { return backend_reason_; }
  unsigned thread_count() const noexcept { return static_cast<unsigned>(workers_.size()); }
  worker& worker_at(std::size_t i) noexcept { return *workers_[i % workers_.size()]; }
  // Where a batch spread over `count` workers starts: after the least loaded worker,
  // so that a small call does not queue behind a worker busy with a large file.
  std::size_t first_worker_for(std::size_t count) noexcept;

  // False once shutdown began: the operation must then complete as aborted at once.
  bool register_operation(const std::shared_ptr<operation>& op);
  void unregister_operation(operation* op);

  // Cancels every running operation, waits for them, stops the workers. Idempotent.
  void shutdown();

 private:
  // Makes and starts the workers one by one; throws what the first that cannot start threw.
  void start_workers(io_backend backend, unsigned threads);

  io_backend backend_ = io_backend::threads;
  std::string backend_reason_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::atomic<std::size_t> next_worker_{0};

  std::mutex mutex_;
  std::condition_variable idle_;
  // Weak: cancelling happens outside the lock (a cancel may complete the operation,
  // which unregisters it), so the registry must not be what keeps it alive or not.
  std::unordered_map<operation*, std::weak_ptr<operation>> running_;
  bool shutting_down_ = false;
  bool stopped_ = false;
};

// Destroys the process-wide runtime (if this process created it); for atexit hooks.
void shutdown_global_runtime();

// The library's way to a runtime's implementation, which its public interface keeps
// private so that users cannot depend on it.
struct runtime_access {
  static runtime_impl& impl(runtime& rt) noexcept { return *rt.impl_; }
};
inline runtime_impl& impl_of(runtime& rt) noexcept { return runtime_access::impl(rt); }

}  // namespace sky_async::detail
