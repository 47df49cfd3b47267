#include "python/bridge.hpp"

#include <cerrno>
#include <exception>
#include <new>
#include <system_error>

#include <sys/eventfd.h>
#include <unistd.h>

namespace sky_async::python {

completion_queue::completion_queue() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  // The loop's thread starts operations and converts their results (drain()), either of
  // which may throw bad_alloc.
  detail::reserve_thread_storage();
  if (fd_ < 0) throw std::system_error(errno, std::system_category(), "eventfd");
}

completion_queue::~completion_queue() {
  // Calls still queued here keep their Python references: this destructor may run
  // without the GIL, where releasing them would be unsafe.
  for (auto call = take_ready(); call; call = std::exchange(call->next_ready, nullptr)) {
    call->future = call->waiters = nullptr;
  }
  if (fd_ >= 0) ::close(fd_);
}

int completion_queue::fileno() const {
  if (fd_ < 0) throw py::value_error("completion queue is closed");
  return fd_;
}

void completion_queue::push(std::shared_ptr<pending_call> call) {
  std::lock_guard lock(mutex_);
  if (closed_) {
    // The loop is gone and nobody will deliver this. Its Python references are dropped
    // unreleased: they belong to a loop that no longer runs, and this thread holds no GIL.
    call->future = call->waiters = nullptr;
    return;
  }
  call->next_ready = std::move(newest_);
  newest_ = std::move(call);
  // Written under the lock: close() may otherwise close the eventfd between the unlock
  // and the write, and this thread would write to a closed or reused descriptor. The
  // write never blocks (a non-blocking eventfd) and happens once per batch.
  if (!signalled_) {
    signalled_ = true;
    ::eventfd_write(fd_, 1);
  }
}

std::shared_ptr<pending_call> completion_queue::take_ready() {
  // Reverses the newest-first list in place.
  std::shared_ptr<pending_call> oldest;
  for (auto call = std::exchange(newest_, nullptr); call;) {
    auto next = std::exchange(call->next_ready, std::move(oldest));
    oldest = std::move(call);
    call = std::move(next);
  }
  return oldest;
}

void completion_queue::drain() {
  detail::reserve_thread_storage();  // in case another thread drains than the one that made the queue
  eventfd_t ignored;
  ::eventfd_read(fd_, &ignored);
  std::shared_ptr<pending_call> batch;
  {
    std::lock_guard lock(mutex_);
    batch = take_ready();
    signalled_ = false;
  }
  while (batch) {
    auto next = std::exchange(batch->next_ready, nullptr);
    deliver(*batch);
    batch = std::move(next);
  }
}

void completion_queue::close() {
  std::shared_ptr<pending_call> batch;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    batch = take_ready();
  }
  while (batch) {
    auto next = std::exchange(batch->next_ready, nullptr);
    batch->delivered = true;
    Py_CLEAR(batch->future);
    Py_CLEAR(batch->waiters);
    batch->drop_result();
    batch = std::move(next);
  }
  ::close(fd_);  // safe: push() writes to it only under the lock, and only before closed_
  fd_ = -1;
}

void completion_queue::deliver(pending_call& call) {
  call.delivered = true;
  auto future = py::reinterpret_steal<py::object>(std::exchange(call.future, nullptr));
  auto waiters = py::reinterpret_steal<py::object>(std::exchange(call.waiters, nullptr));
  try {
    if (future && !future.attr("done")().cast<bool>()) {
      if (call.cancelled) {
        future.attr("cancel")();
      } else {
        // A conversion that fails (MemoryError, a decode error, a C++ allocation that
        // throws std::bad_alloc) fails this call only: its future must still be settled,
        // or the awaiting task would hang.
        try {
          future.attr("set_result")(call.make_result());
        } catch (py::error_already_set& e) {
          future.attr("set_exception")(e.value());
        } catch (const std::bad_alloc&) {
          // pybind11 throws this where even fetching a failed allocation's MemoryError
          // could not allocate, with that error still set: clear it to raise a fresh one.
          PyErr_Clear();
          future.attr("set_exception")(py::handle(PyExc_MemoryError));
        } catch (const std::exception& e) {
          PyErr_Clear();
          future.attr("set_exception")(py::handle(PyExc_RuntimeError)(e.what()));
        }
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
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    PyErr_WriteUnraisable(nullptr);
  }
  call.drop_result();
}

void operation_handle::cancel(py::object waiter) {
  if (call_->delivered) {
    if (!waiter.attr("done")().cast<bool>()) waiter.attr("set_result")(py::none());
    return;
  }
  if (call_->waiters == nullptr) call_->waiters = py::list().release().ptr();
  py::reinterpret_borrow<py::list>(call_->waiters).append(std::move(waiter));
  call_->operation->cancel();
}

void register_bridge(py::module_& m) {
  py::class_<completion_queue, std::shared_ptr<completion_queue>>(m, "CompletionQueue")
      .def(py::init<>())
      .def("fileno", &completion_queue::fileno)
      .def("drain", &completion_queue::drain)
      .def("close", &completion_queue::close);

  py::class_<operation_handle>(m, "Operation").def("cancel", &operation_handle::cancel, py::arg("waiter"));
}

}  // namespace sky_async::python
