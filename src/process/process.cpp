#include <sky_async/process.hpp>

#include "process/proc_stat.hpp"
#include "process/process_engine.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <csignal>

namespace sky_async {

namespace {

// The kernel's PID_MAX_LIMIT: no pid_max setting can exceed it.
constexpr long long pid_max_limit = 4194304;

// 0 until first read; a forked child starts over, as a child may live in another pid
// namespace with its own limit.
std::atomic<long long> cached_pid_max{0};

[[maybe_unused]] const int pid_max_fork_handler =
    ::pthread_atfork(nullptr, nullptr, [] { cached_pid_max.store(0, std::memory_order_relaxed); });

long long read_pid_max() noexcept {
  const int fd = ::open("/proc/sys/kernel/pid_max", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return pid_max_limit;
  char buffer[32];
  const ssize_t got = ::read(fd, buffer, sizeof buffer);
  ::close(fd);
  long long value = 0;
  if (got <= 0) return pid_max_limit;
  const auto [end, ec] = std::from_chars(buffer, buffer + got, value);
  if (ec != std::errc() || value <= 0 || value > pid_max_limit) return pid_max_limit;
  return value;
}

}  // namespace

std::string_view to_string(process_status status) noexcept {
  switch (status) {
    case process_status::alive:
      return "alive";
    case process_status::no_such_process:
      return "no_such_process";
    case process_status::zombie:
      return "zombie";
    case process_status::reused:
      return "reused";
    case process_status::invalid_pid:
      return "invalid_pid";
  }
  return "unknown";
}

long long pid_max() noexcept {
  long long value = cached_pid_max.load(std::memory_order_relaxed);
  if (value == 0) {
    value = read_pid_max();
    cached_pid_max.store(value, std::memory_order_relaxed);
  }
  return value;
}

namespace detail {

std::optional<proc_stat> read_proc_stat(long long pid) noexcept {
  char path[40];
  // Cannot truncate: "/proc/" + 20 digits + "/stat" fits in 40.
  (void)std::snprintf(path, sizeof path, "/proc/%lld/stat", pid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  // The whole line is a few hundred bytes (the command name is at most 64); field 22
  // comes well within the first read.
  char buffer[1024];
  ssize_t got;
  do {
    got = ::read(fd, buffer, sizeof buffer);
  } while (got < 0 && errno == EINTR);
  ::close(fd);
  if (got <= 0) return std::nullopt;
  return parse_proc_stat(std::string_view(buffer, static_cast<std::size_t>(got)));
}

process_status probe_below(long long pid, std::optional<std::uint64_t> start_time, long long limit) noexcept {
  if (pid <= 0 || pid > limit) return process_status::invalid_pid;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return process_status::no_such_process;
  // Success or EPERM: the pid is taken. kill(2) succeeds for a zombie, so the state decides.
  const auto stat = read_proc_stat(pid);
  if (!stat) return process_status::alive;  // unreadable: kill(2)'s answer stands
  if (stat->state == 'Z' || stat->state == 'X') return process_status::zombie;
  if (start_time && stat->start_time != *start_time) return process_status::reused;
  return process_status::alive;
}

}  // namespace detail

process_status probe_process(long long pid, std::optional<std::uint64_t> start_time) noexcept {
  // Checked before pid_max() so that these never cost a read of /proc.
  if (pid <= 0) return process_status::invalid_pid;
  return detail::probe_below(pid, start_time, pid_max());
}

bool is_process_alive(long long pid) noexcept { return probe_process(pid) == process_status::alive; }

std::optional<std::uint64_t> process_start_time(long long pid) noexcept {
  if (pid <= 0 || pid > pid_max()) return std::nullopt;
  const auto stat = detail::read_proc_stat(pid);
  if (!stat) return std::nullopt;
  return stat->start_time;
}

namespace detail {

std::shared_ptr<probe_operation> make_probe_operation(runtime& rt, std::vector<process_query> queries) {
  return std::make_shared<probe_batch>(detail::impl_of(rt), std::move(queries));
}

std::shared_ptr<exit_wait_operation> make_exit_wait_operation(
    runtime& rt, long long pid, std::optional<std::chrono::steady_clock::duration> timeout) {
  return std::make_shared<exit_waiter>(detail::impl_of(rt), pid, timeout);
}

}  // namespace detail

boost::asio::awaitable<bool> is_process_alive(runtime& rt, long long pid) {
  std::vector<process_query> one{process_query{pid, std::nullopt}};
  const auto statuses = co_await async_probe_processes(rt, std::move(one), boost::asio::use_awaitable);
  co_return statuses.front() == process_status::alive;
}

}  // namespace sky_async
