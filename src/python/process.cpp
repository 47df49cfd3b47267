// Process probing and waiting for Python.
#include "process/process_engine.hpp"
#include "python/bridge.hpp"

#include <sky_async/process.hpp>
#include <sky_async/runtime.hpp>

#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace sky_async::python {

namespace {

// Longer timeouts than this (about 31 years), and infinity, mean no timeout: converting
// them to a steady_clock duration would overflow.
constexpr double max_timeout_seconds = 1e9;

std::string type_name(PyObject* object) {
  return py::str(py::type::handle_of(py::handle(object)).attr("__name__"));
}

// A pid from any Python int. An int outside the range of long long becomes -1: it is not
// a pid either, and is reported not alive instead of raising OverflowError.
bool as_pid(PyObject* object, long long& pid) {
  if (!PyLong_Check(object) || PyBool_Check(object)) return false;
  int overflow = 0;
  pid = PyLong_AsLongLongAndOverflow(object, &overflow);
  if (overflow != 0) pid = -1;
  return true;
}

long long to_pid(py::handle object) {
  long long pid = 0;
  if (!as_pid(object.ptr(), pid)) throw py::type_error("pid must be an int, not " + type_name(object.ptr()));
  return pid;
}

// One pass over a list or tuple (any other iterable is made a list by the caller). A
// non-int element fails the whole call with a TypeError naming its index: it is a bug
// in the caller, not a fact about a process.
std::vector<process_query> to_queries(const py::handle& pids, const py::handle& start_times) {
  auto fast = py::reinterpret_steal<py::object>(PySequence_Fast(pids.ptr(), "pids must be a sequence"));
  if (!fast) throw py::error_already_set();
  const Py_ssize_t count = PySequence_Fast_GET_SIZE(fast.ptr());
  PyObject** items = PySequence_Fast_ITEMS(fast.ptr());
  std::vector<process_query> queries(static_cast<std::size_t>(count));
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (!as_pid(items[i], queries[static_cast<std::size_t>(i)].pid)) {
      throw py::type_error("pids[" + std::to_string(i) + "] must be an int, not " + type_name(items[i]));
    }
  }
  if (start_times.is_none()) return queries;
  // Checked by the Python API already; this only guards direct calls.
  auto times = py::reinterpret_steal<py::object>(
      PySequence_Fast(start_times.ptr(), "start_times must be a sequence of int or None"));
  if (!times) throw py::error_already_set();
  if (PySequence_Fast_GET_SIZE(times.ptr()) != count) {
    throw py::value_error("start_times must have one entry per pid");
  }
  PyObject** starts = PySequence_Fast_ITEMS(times.ptr());
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (starts[i] == Py_None) continue;
    const unsigned long long value = PyLong_AsUnsignedLongLong(starts[i]);
    if (value == static_cast<unsigned long long>(-1) && PyErr_Occurred()) throw py::error_already_set();
    queries[static_cast<std::size_t>(i)].start_time = value;
  }
  return queries;
}

py::list to_bools(const std::vector<process_status>& statuses) {
  py::list out(statuses.size());
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    PyObject* value = statuses[i] == process_status::alive ? Py_True : Py_False;
    Py_INCREF(value);
    PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), value);
  }
  return out;
}

std::optional<std::chrono::steady_clock::duration> to_timeout(const py::object& seconds) {
  if (seconds.is_none()) return std::nullopt;
  const auto value = seconds.cast<double>();
  if (std::isnan(value)) throw py::value_error("timeout must be a number of seconds, not NaN");
  if (value > max_timeout_seconds) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(std::max(value, 0.0)));
}

std::shared_ptr<detail::probe_operation> make_probe(const py::handle& pids, const py::handle& start_times) {
  return detail::make_probe_operation(runtime::global(), to_queries(pids, start_times));
}

std::shared_ptr<detail::exit_wait_operation> make_wait(const py::handle& pid, const py::object& timeout) {
  return detail::make_exit_wait_operation(runtime::global(), to_pid(pid), to_timeout(timeout));
}

}  // namespace

void register_process(py::module_& m) {
  m.def("is_process_alive", [](py::handle pid) { return is_process_alive(to_pid(pid)); }, py::arg("pid"));
  m.def(
      "process_start_time",
      [](py::handle pid) -> py::object {
        const auto start = process_start_time(to_pid(pid));
        return start ? py::object(py::int_(*start)) : py::object(py::none());
      },
      py::arg("pid"));
  m.def(
      "probe_processes",
      [](const std::shared_ptr<completion_queue>& queue, py::handle pids, py::handle start_times,
         py::object future) {
        return start_for_loop(queue, make_probe(pids, start_times), std::move(future),
                              [](const std::vector<process_status>& statuses) { return to_bools(statuses); });
      },
      py::arg("queue"), py::arg("pids"), py::arg("start_times"), py::arg("future"));
  m.def(
      "probe_processes_blocking",
      [](py::handle pids, py::handle start_times) {
        return to_bools(run_blocking(make_probe(pids, start_times)));
      },
      py::arg("pids"), py::arg("start_times"));
  m.def(
      "wait_for_exit",
      [](const std::shared_ptr<completion_queue>& queue, py::handle pid, const py::object& timeout,
         py::object future) {
        return start_for_loop(queue, make_wait(pid, timeout), std::move(future),
                              [](bool exited) { return py::bool_(exited); });
      },
      py::arg("queue"), py::arg("pid"), py::arg("timeout"), py::arg("future"));
  m.def(
      "wait_for_exit_blocking",
      [](py::handle pid, const py::object& timeout) { return run_blocking(make_wait(pid, timeout)); },
      py::arg("pid"), py::arg("timeout"));
  m.def("_force_exit_polling", &detail::force_exit_polling, py::arg("on"),
        "Tests only: wait_for_exit polls as it does where pidfd_open(2) is unavailable.");
}

}  // namespace sky_async::python
