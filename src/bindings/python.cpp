// sky_async._native: the C++ runtime for the Python package.
//
// Worker threads never take the GIL. A finished operation is appended to the
// completion queue of the event loop that started it, and the queue's eventfd is
// written only when the queue was empty; the loop's reader then delivers every
// finished operation in one pass. Python references are only created and dropped
// with the GIL held, on the loop's thread.

#include <pybind11/pybind11.h>

#include <sky_async/error.hpp>
#include <sky_async/hash.hpp>
#include <sky_async/runtime.hpp>
#include <sky_async/version.hpp>

#include "runtime_impl.hpp"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/eventfd.h>
#include <unistd.h>

namespace py = pybind11;
using namespace sky_async;

namespace {

// One native operation started from an event loop.
struct pending_call {
  std::shared_ptr<detail::hash_operation> operation;
  // Strong references, created and released only with the GIL on the loop thread.
  PyObject* future = nullptr;
  PyObject* waiters = nullptr;  // a list of futures, made by the first cancel
  bool delivered = false;       // loop thread only
  // Written by the worker before the call is queued.
  bool cancelled = false;
  std::vector<hash_result> results;
};

// The item a backend reports per file: hex str, (errno, message or None), or None
// for a file the operation never got to.
py::object to_item(const hash_result& result) {
  if (result.ok()) return py::str(result.digest);
  if (result.error == std::errc::operation_canceled) return py::none();
  if (result.error.category() == error_category()) {
    return py::make_tuple(EINVAL, result.error.message());
  }
  return py::make_tuple(result.error.value(), py::none());
}

py::list to_items(const std::vector<hash_result>& results) {
  py::list items(results.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    items[i] = to_item(results[i]);
  }
  return items;
}

std::vector<std::filesystem::path> to_paths(const py::list& paths) {
  std::vector<std::filesystem::path> out;
  out.reserve(paths.size());
  for (const py::handle item : paths) {
    char* data = nullptr;
    Py_ssize_t size = 0;
    if (!PyBytes_Check(item.ptr()) || PyBytes_AsStringAndSize(item.ptr(), &data, &size) != 0) {
      throw py::type_error("paths must be a list of bytes");
    }
    out.emplace_back(std::string(data, static_cast<std::size_t>(size)));
  }
  return out;
}

hash_algorithm to_algorithm(const std::string& name) {
  if (auto algorithm = parse_hash_algorithm(name)) return *algorithm;
  throw py::value_error("unsupported hash algorithm '" + name + "'");
}

class completion_queue {
 public:
  completion_queue() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) throw std::system_error(errno, std::system_category(), "eventfd");
  }
  ~completion_queue() {
    // Calls still queued here keep their Python references: this destructor may
    // run without the GIL, where releasing them would be unsafe.
    for (auto& call : ready_) call->future = call->waiters = nullptr;
    if (fd_ >= 0) ::close(fd_);
  }
  completion_queue(const completion_queue&) = delete;
  completion_queue& operator=(const completion_queue&) = delete;

  int fileno() const {
    if (fd_ < 0) throw py::value_error("completion queue is closed");
    return fd_;
  }

  // Any thread, no GIL.
  void push(std::shared_ptr<pending_call> call) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      if (closed_) {
        // The loop is gone; nobody will deliver this. Leak it rather than touch
        // Python objects from this thread.
        new std::shared_ptr<pending_call>(std::move(call));
        return;
      }
      ready_.push_back(std::move(call));
      wake = !signalled_;
      signalled_ = true;
    }
    if (wake) ::eventfd_write(fd_, 1);
  }

  // The loop's reader callback, with the GIL.
  void drain() {
    eventfd_t ignored;
    ::eventfd_read(fd_, &ignored);
    std::vector<std::shared_ptr<pending_call>> batch;
    {
      std::lock_guard lock(mutex_);
      batch.swap(ready_);
      signalled_ = false;
    }
    for (auto& call : batch) deliver(*call);
  }

  // With the GIL, once the loop is closed: drop what is queued, stop accepting more.
  void close() {
    std::vector<std::shared_ptr<pending_call>> batch;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
      batch.swap(ready_);
    }
    for (auto& call : batch) {
      call->delivered = true;
      Py_CLEAR(call->future);
      Py_CLEAR(call->waiters);
    }
    ::close(fd_);
    fd_ = -1;
  }

 private:
  static void deliver(pending_call& call) {
    call.delivered = true;
    py::object future = py::reinterpret_steal<py::object>(std::exchange(call.future, nullptr));
    py::object waiters = py::reinterpret_steal<py::object>(std::exchange(call.waiters, nullptr));
    try {
      if (future && !future.attr("done")().cast<bool>()) {
        if (call.cancelled) {
          future.attr("cancel")();
        } else {
          future.attr("set_result")(to_items(call.results));
        }
      }
      if (waiters) {
        for (py::handle waiter : waiters) {
          if (!waiter.attr("done")().cast<bool>()) waiter.attr("set_result")(py::none());
        }
      }
    } catch (py::error_already_set& e) {
      // One call's broken future must not stop the others' delivery.
      e.discard_as_unraisable("sky_async: delivering a completion");
    }
    call.results.clear();
  }

  int fd_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<pending_call>> ready_;
  bool signalled_ = false;
  bool closed_ = false;
};

// What Python holds for a running operation: a way to cancel it.
class operation_handle {
 public:
  explicit operation_handle(std::shared_ptr<pending_call> call) : call_(std::move(call)) {}

  // Cancels the native work; `waiter` (a future of the same loop) gets its result
  // once every file of the operation is closed.
  void cancel(py::object waiter) {
    if (call_->delivered) {
      if (!waiter.attr("done")().cast<bool>()) waiter.attr("set_result")(py::none());
      return;
    }
    if (call_->waiters == nullptr) call_->waiters = py::list().release().ptr();
    py::reinterpret_borrow<py::list>(call_->waiters).append(std::move(waiter));
    call_->operation->cancel();
  }

 private:
  std::shared_ptr<pending_call> call_;
};

operation_handle start_hash_files(const std::shared_ptr<completion_queue>& queue, const py::list& paths,
                                  const std::string& algorithm, std::size_t concurrency, bool stop_on_error,
                                  py::object future) {
  auto operation = detail::make_hash_operation(runtime::global(), to_paths(paths), to_algorithm(algorithm),
                                               hash_options{concurrency, stop_on_error});
  auto call = std::make_shared<pending_call>();
  call->operation = operation;
  call->future = future.release().ptr();
  operation->start([call, queue](bool cancelled, std::vector<hash_result> results) {
    call->cancelled = cancelled;
    call->results = std::move(results);
    queue->push(call);
  });
  return operation_handle(std::move(call));
}

py::list hash_files_blocking(const py::list& paths, const std::string& algorithm, std::size_t concurrency,
                             bool stop_on_error) {
  struct shared_state {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    bool cancelled = false;
    std::vector<hash_result> results;
  };
  auto state = std::make_shared<shared_state>();
  auto operation = detail::make_hash_operation(runtime::global(), to_paths(paths), to_algorithm(algorithm),
                                               hash_options{concurrency, stop_on_error});
  operation->start([state](bool cancelled, std::vector<hash_result> results) {
    std::lock_guard lock(state->mutex);
    state->cancelled = cancelled;
    state->results = std::move(results);
    state->done = true;
    state->cv.notify_all();
  });

  bool interrupted = false;
  {
    py::gil_scoped_release release;
    std::unique_lock lock(state->mutex);
    while (!state->done) {
      if (state->cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return state->done; })) break;
      lock.unlock();
      {
        py::gil_scoped_acquire acquire;
        interrupted = PyErr_CheckSignals() != 0;
      }
      lock.lock();
      if (interrupted) {
        // Ctrl-C: stop, but return only once every file is closed.
        lock.unlock();
        operation->cancel();
        lock.lock();
        state->cv.wait(lock, [&] { return state->done; });
      }
    }
  }
  if (interrupted) throw py::error_already_set();
  if (state->cancelled) {
    // Nobody but the runtime's shutdown (at interpreter exit) cancels a blocking call.
    throw std::runtime_error("sky_async is shutting down: the operation was cancelled before it finished");
  }
  return to_items(state->results);
}

py::dict runtime_info() {
  runtime& rt = runtime::global();
  py::dict info;
  info["io_backend"] = std::string(to_string(rt.backend()));
  info["io_backend_reason"] =
      rt.backend_reason().empty() ? py::object(py::none()) : py::str(rt.backend_reason());
  info["threads"] = rt.threads();
  return info;
}

py::dict build_info_dict() {
  const auto built = get_build_info();
  py::dict info;
  info["version"] = built.version;
  info["boost"] = built.boost;
  info["openssl"] = built.openssl;
  info["liburing"] = built.liburing;
  return info;
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "sky_async's native runtime (internal; use the sky_async package)";
  m.attr("__version__") = sky_async::version;

  py::class_<completion_queue, std::shared_ptr<completion_queue>>(m, "CompletionQueue")
      .def(py::init<>())
      .def("fileno", &completion_queue::fileno)
      .def("drain", &completion_queue::drain)
      .def("close", &completion_queue::close);

  py::class_<operation_handle>(m, "Operation").def("cancel", &operation_handle::cancel, py::arg("waiter"));

  m.def("hash_files", &start_hash_files, py::arg("queue"), py::arg("paths"), py::arg("algorithm"),
        py::arg("concurrency"), py::arg("stop_on_error"), py::arg("future"));
  m.def("hash_files_blocking", &hash_files_blocking, py::arg("paths"), py::arg("algorithm"),
        py::arg("concurrency"), py::arg("stop_on_error"));
  m.def("runtime_info", &runtime_info);
  m.def("build_info", &build_info_dict);
  m.def(
      "shutdown", [] { detail::shutdown_global_runtime(); }, py::call_guard<py::gil_scoped_release>(),
      "Cancel running operations, wait for their files to close and stop the worker threads.");
}
