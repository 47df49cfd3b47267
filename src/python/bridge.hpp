// The bridge between native operations and Python: asyncio completion queues and
// blocking waits.
//
// Worker threads never take the GIL. A finished operation is appended to the
// completion queue of the event loop that started it, and the queue's eventfd is
// written only when the queue was empty; the loop's reader then delivers every
// finished operation in one pass. Python objects are only created and dropped with
// the GIL held, on the loop's thread: a worker stores its C++ result in a closure
// that builds the Python value at delivery.
#pragma once

#include <pybind11/pybind11.h>

#include <sky_async/detail/operation.hpp>

#include "core/thread_storage.hpp"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace sky_async::python {

namespace py = pybind11;

// One native operation started from an event loop.
//
// Completing it allocates nothing: the result moves into storage made when the call
// started, and the queue links calls through `next_ready`. So a worker that completes an
// operation while memory is short can neither lose the completion nor throw.
struct pending_call {
  virtual ~pending_call() = default;

  // Builds the future's result from the C++ result, with the GIL on the loop thread.
  virtual py::object make_result() = 0;
  // Frees the C++ result once delivered (Python may keep this call for a while).
  virtual void drop_result() = 0;

  std::shared_ptr<detail::operation> operation;
  // Strong references, created and released only with the GIL on the loop thread.
  PyObject* future = nullptr;
  PyObject* waiters = nullptr;  // a list of futures, made by the first cancel
  bool delivered = false;       // loop thread only
  // Written by the worker before the call is queued.
  bool cancelled = false;
  std::shared_ptr<pending_call> next_ready;  // the queue's link, under its mutex
};

class completion_queue {
 public:
  completion_queue();
  ~completion_queue();
  completion_queue(const completion_queue&) = delete;
  completion_queue& operator=(const completion_queue&) = delete;

  int fileno() const;
  // Any thread, no GIL; never allocates.
  void push(std::shared_ptr<pending_call> call);
  // The loop's reader callback, with the GIL.
  void drain();
  // With the GIL, once the loop is closed: drop what is queued, stop accepting more.
  void close();

 private:
  static void deliver(pending_call& call);
  // The queued calls in completion order, leaving the queue empty (under the mutex).
  std::shared_ptr<pending_call> take_ready();

  int fd_;
  std::mutex mutex_;
  std::shared_ptr<pending_call> newest_;  // the calls queued, newest first
  bool signalled_ = false;
  bool closed_ = false;
};

// What Python holds for a running operation: a way to cancel it.
class operation_handle {
 public:
  explicit operation_handle(std::shared_ptr<pending_call> call) : call_(std::move(call)) {}

  // Cancels the native work; `waiter` (a future of the same loop) gets its result
  // once the operation has completed (every file closed).
  void cancel(py::object waiter);

 private:
  std::shared_ptr<pending_call> call_;
};

// The pending_call of an operation whose result is a `Result`, turned into a Python value
// by `Convert`.
template <typename Result, typename Convert>
struct converting_call final : pending_call {
  explicit converting_call(Convert how) : convert(std::move(how)) {}
  py::object make_result() override { return convert(*result); }
  void drop_result() override { result.reset(); }

  Convert convert;
  std::optional<Result> result;  // set by the worker before the call is queued
};

// Starts `op` for an event loop: `future` gets `convert(result)` (called with the GIL
// on the loop thread), or is cancelled if the operation was. `convert` must not own
// Python objects: a call whose loop has closed is destroyed on a worker thread.
template <typename Result, typename Convert>
operation_handle start_for_loop(const std::shared_ptr<completion_queue>& queue,
                                std::shared_ptr<detail::basic_operation<Result>> op, py::object future,
                                Convert convert) {
  auto call = std::make_shared<converting_call<Result, Convert>>(std::move(convert));
  call->operation = op;
  call->future = future.release().ptr();
  op->start([call, queue](bool cancelled, Result result) {
    call->cancelled = cancelled;
    call->result.emplace(std::move(result));
    queue->push(call);
  });
  return operation_handle(std::move(call));
}

// Runs `work()` with the GIL released and returns its result (or rethrows what it
// threw) once the GIL is held again.
//
// The GIL is taken back by a plain call, never by a destructor such as
// py::gil_scoped_release's: once the interpreter is finalizing, CPython ends a daemon
// thread that asks for the GIL with pthread_exit, whose forced unwind calls
// std::terminate when it starts inside a destructor (implicitly noexcept) or crosses a
// noexcept frame. From this call it unwinds through ordinary frames up to pybind11's
// dispatcher, which lets it pass. So nothing on this path may be noexcept, and `work`
// must not touch Python.
template <typename Work>
auto without_gil(Work&& work) -> decltype(work()) {
  using result_type = decltype(work());
  detail::reserve_thread_storage();  // `work` may throw on any thread: see core/thread_storage.hpp
  std::exception_ptr failure;
  std::optional<std::conditional_t<std::is_void_v<result_type>, bool, result_type>> result;
  PyThreadState* const thread_state = PyEval_SaveThread();
  try {
    if constexpr (std::is_void_v<result_type>) {
      work();
      result.emplace(true);
    } else {
      result.emplace(work());
    }
  } catch (...) {
    failure = std::current_exception();
  }
  PyEval_RestoreThread(thread_state);  // may end this thread at interpreter exit (see above)
  if (failure) std::rethrow_exception(failure);
  if constexpr (!std::is_void_v<result_type>) return std::move(*result);
}

// Runs `op` to completion from a thread without an event loop, releasing the GIL.
// Ctrl-C cancels it and raises once it has completed (every file closed). Pending
// signals are checked every 50 ms, with the GIL, which each wait gives back (see
// without_gil for why it is taken back that way).
template <typename Result>
Result run_blocking(std::shared_ptr<detail::basic_operation<Result>> op) {
  detail::reserve_thread_storage();  // the calling thread converts the result: see the header
  struct shared_state {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    bool cancelled = false;
    std::optional<Result> result;
  };
  auto state = std::make_shared<shared_state>();
  op->start([state](bool cancelled, Result result) {
    std::lock_guard lock(state->mutex);
    state->cancelled = cancelled;
    state->result.emplace(std::move(result));
    state->done = true;
    state->cv.notify_all();
  });

  const auto wait_done = [&state](std::optional<std::chrono::milliseconds> timeout) {
    std::unique_lock lock(state->mutex);
    const auto done = [&state] { return state->done; };
    if (!timeout) {
      state->cv.wait(lock, done);
      return true;
    }
    return state->cv.wait_for(lock, *timeout, done);
  };
  bool interrupted = false;
  while (!without_gil([&] { return wait_done(std::chrono::milliseconds(50)); })) {
    if (PyErr_CheckSignals() != 0) {
      interrupted = true;
      op->cancel();
      without_gil([&] { return wait_done(std::nullopt); });
      break;
    }
  }
  if (interrupted) throw py::error_already_set();
  if (state->cancelled) {
    // Nobody but the runtime's shutdown (at interpreter exit) cancels a blocking call.
    throw std::runtime_error("sky_async is shutting down: the operation was cancelled before it finished");
  }
  return std::move(*state->result);
}

// Each feature registers its functions on the module.
void register_bridge(py::module_& m);
void register_hash(py::module_& m);
void register_tail(py::module_& m);
void register_process(py::module_& m);
void register_strings(py::module_& m);
void register_system(py::module_& m);
void register_scan(py::module_& m);
void register_mounts(py::module_& m);
void register_ignore(py::module_& m);

}  // namespace sky_async::python
