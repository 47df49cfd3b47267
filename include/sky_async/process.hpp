// Watching processes: whether they are alive (one, or thousands at once on the worker
// threads), their start time (the defence against pid reuse), and waiting for one to exit.
#pragma once

#include <sky_async/detail/async_operation.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace sky_async {

// What probing a pid found. Only `alive` counts as alive.
enum class process_status : std::uint8_t {
  alive,            // exists and has not exited (EPERM from kill(2) counts: someone else's process)
  no_such_process,  // kill(2) said ESRCH: never existed, or exited and was reaped
  zombie,           // exited but not yet reaped by its parent (state Z, or X while being reaped)
  reused,           // exists but started at another time than expected: the pid was recycled
  invalid_pid,      // <= 0 or above pid_max: not a process id, and never probed (kill(0) and
                    // negative ids would address process groups)
};

std::string_view to_string(process_status status) noexcept;

// A pid to probe, and optionally the start time it must have (from process_start_time())
// for the process found there to count as the same one.
struct process_query {
  long long pid = 0;
  std::optional<std::uint64_t> start_time;
};

// /proc/sys/kernel/pid_max, read once per process (again in a child after fork());
// 4194304, the kernel's ceiling, if it cannot be read.
long long pid_max() noexcept;

// Probes one pid now, on the calling thread: kill(pid, 0), then /proc/<pid>/stat for the
// zombie state and the start time. When /proc/<pid>/stat cannot be read (hidepid, or
// the process vanished in between), kill(2)'s answer stands.
process_status probe_process(long long pid, std::optional<std::uint64_t> start_time = std::nullopt) noexcept;

// probe_process(pid) == process_status::alive.
bool is_process_alive(long long pid) noexcept;

// When the process started, in clock ticks since boot (field 22 of /proc/<pid>/stat);
// std::nullopt when there is no such process (a zombie still has one) or it is not readable.
std::optional<std::uint64_t> process_start_time(long long pid) noexcept;

using probe_signature = detail::operation_signature<std::vector<process_status>>;
using wait_for_exit_signature = detail::operation_signature<bool>;

namespace detail {
using probe_operation = basic_operation<std::vector<process_status>>;
using exit_wait_operation = basic_operation<bool>;

std::shared_ptr<probe_operation> make_probe_operation(runtime& rt, std::vector<process_query> queries);
std::shared_ptr<exit_wait_operation> make_exit_wait_operation(
    runtime& rt, long long pid, std::optional<std::chrono::steady_clock::duration> timeout);
}  // namespace detail

// Probes every pid on the runtime's worker threads (large batches are split into one
// share per worker) and completes with one status per query, in input order. Completion
// signature: void(boost::system::error_code, std::vector<process_status>); the error is
// operation_aborted when cancelled through the token's cancellation slot.
template <typename CompletionToken>
auto async_probe_processes(runtime& rt, std::vector<process_query> queries, CompletionToken&& token) {
  return detail::async_run<std::vector<process_status>>(
      [&rt, queries = std::move(queries)]() mutable {
        return detail::make_probe_operation(rt, std::move(queries));
      },
      std::forward<CompletionToken>(token));
}

inline boost::asio::awaitable<std::vector<process_status>> probe_processes(
    runtime& rt, std::vector<process_query> queries) {
  co_return co_await async_probe_processes(rt, std::move(queries), boost::asio::use_awaitable);
}

// On the process-wide runtime.
inline boost::asio::awaitable<std::vector<process_status>> probe_processes(
    std::vector<process_query> queries) {
  return probe_processes(runtime::global(), std::move(queries));
}

// is_process_alive(pid), as one probe on the runtime's workers. (The synchronous
// is_process_alive(pid) above takes the name for the process-wide runtime.)
boost::asio::awaitable<bool> is_process_alive(runtime& rt, long long pid);

// Completes with true once the process has exited (a zombie counts as exited; a pid
// with no process, or not a valid pid, completes with true at once), or with false when
// `timeout` passes first (std::nullopt: no timeout). Waits on a pidfd (pidfd_open(2))
// registered with a worker's io_context, so it works for any process, not only
// children, and costs no polling; where pidfd_open is unavailable it polls instead,
// every 1 ms at first and backing off to every 50 ms. Cancellation through the token's
// slot closes the pidfd and completes with operation_aborted.
template <typename CompletionToken>
auto async_wait_for_exit(runtime& rt, long long pid,
                         std::optional<std::chrono::steady_clock::duration> timeout,
                         CompletionToken&& token) {
  return detail::async_run<bool>(
      [&rt, pid, timeout] { return detail::make_exit_wait_operation(rt, pid, timeout); },
      std::forward<CompletionToken>(token));
}

inline boost::asio::awaitable<bool> wait_for_exit(
    runtime& rt, long long pid, std::optional<std::chrono::steady_clock::duration> timeout = {}) {
  co_return co_await async_wait_for_exit(rt, pid, timeout, boost::asio::use_awaitable);
}

// On the process-wide runtime.
inline boost::asio::awaitable<bool> wait_for_exit(
    long long pid, std::optional<std::chrono::steady_clock::duration> timeout = {}) {
  return wait_for_exit(runtime::global(), pid, timeout);
}

}  // namespace sky_async
