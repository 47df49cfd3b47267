#include "bridge.hpp"

#include <cerrno>
#include <system_error>

#include <sys/eventfd.h>
#include <unistd.h>

namespace sky_async::python {

completion_queue::completion_queue() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::system_category(), "eventfd");
}

completion_queue::~completion_queue() {
  // Calls still queued here keep their Python references: this destructor may run
  // without the GIL, where releasing them would be unsafe.
  for (auto& call : ready_) call->future = call->waiters = nullptr;
  if (fd_ >= 0) ::close(fd_);
}

int completion_queue::fileno() const {
  if (fd_ < 0) throw py::value_error("completion queue is closed");
  return fd_;
}

void completion_queue::push(std::shared_ptr<pending_call> call) {
  std::lock_guard lock(mutex_);
  if (closed_) {
    // The loop is gone; nobody will deliver this. Leak it rather than touch Python
    // objects (or the result's destructor) from this thread.
    new std::shared_ptr<pending_call>(std::move(call));
    return;
  }
  ready_.push_back(std::move(call));
  // Written under the lock: close() may otherwise close the eventfd between the unlock
  // and the write, and this thread would write to a closed or reused descriptor. The
  // write never blocks (a non-blocking eventfd) and happens once per batch.
  if (!signalled_) {
    signalled_ = true;
    ::eventfd_write(fd_, 1);
  }
}

void completion_queue::drain() {
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

void completion_queue::close() {
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
    call->make_result = {};
  }
  ::close(fd_);  // safe: push() writes to it only under the lock, and only before closed_
  fd_ = -1;
}

void completion_queue::deliver(pending_call& call) {
  call.delivered = true;
  auto future = py::reinterpret_steal<py::object>(std::exchange(call.future, nullptr));
  auto waiters = py::reinterpret_steal<py::object>(std::exchange(call.waiters, nullptr));
  auto make_result = std::move(call.make_result);
  try {
    if (future && !future.attr("done")().cast<bool>()) {
      if (call.cancelled) {
        future.attr("cancel")();
      } else {
        try {
          future.attr("set_result")(make_result());
        } catch (py::error_already_set& e) {
          // A conversion that raised (MemoryError, a decode error) fails this call only.
          future.attr("set_exception")(e.value());
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
  }
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
