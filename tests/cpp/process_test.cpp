// Process probing and waiting: alive, reaped, zombie, out-of-range and someone else's
// pids; start times against pid reuse; a 10,000-pid batch against the per-pid probe;
// wait_for_exit through a pidfd and through the polling fallback, with timeouts,
// cancellation and shutdown. Every case runs once per I/O backend.
#include <sky_async/process.hpp>  // first: the header must compile on its own

#include "process/process_engine.hpp"
#include "test_support.hpp"

#include <sky_async/runtime.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace sky_async {
inline void PrintTo(process_status status, std::ostream* out) { *out << to_string(status); }
}  // namespace sky_async

namespace {

using namespace std::chrono_literals;
using namespace sky_async_test;
using sky_async::io_backend;
using sky_async::process_query;
using sky_async::process_status;

// The oracle for /proc/<pid>/stat, written independently of the library: fields
// counted from the last ')' of the line.
std::optional<std::string> stat_field(pid_t pid, int field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string value;
  for (int i = 3; i <= field; ++i) rest >> value;
  return value;
}

// Descriptors of this process that are pidfds.
std::size_t count_pidfds() {
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::filesystem::read_symlink(entry.path(), ec).string() == "anon_inode:[pidfd]") ++count;
  }
  return count;
}

long long system_pid_max() { return std::stoll(read_file("/proc/sys/kernel/pid_max")); }

// The pid this namespace handed out last: the last field of /proc/loadavg.
long long last_allocated_pid() {
  const std::string loadavg = read_file("/proc/loadavg");
  return std::stoll(loadavg.substr(loadavg.find_last_of(' ') + 1));
}

// Whether `pid` was handed out after last_allocated_pid() said `first` and by the time it
// said `last` (pids wrap at pid_max). Such a process may have started and exited between
// two probes that both found nothing, so the probe in between may rightly find it alive.
bool allocated_between(long long pid, long long first, long long last) {
  if (first <= last) return pid > first && pid <= last;
  return pid > first || pid <= last;
}

// A forked child running `body`, killed (if needed) and reaped at the end of the scope.
class child_process {
 public:
  template <typename Body>
  explicit child_process(Body body) : pid_(::fork()) {
    if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid_ == 0) {
      body();
      ::_exit(0);
    }
  }
  ~child_process() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      reap();
    }
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // Blocks until the child has exited, without reaping it: it stays a zombie.
  void wait_until_zombie() {
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT), 0) << std::strerror(errno);
  }
  int reap() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_;
  bool reaped_ = false;
};

// A pid with no process: a child that has been reaped. (The kernel hands out pids in
// increasing order, so it is not reused within a test.)
pid_t reaped_pid() {
  child_process child([] {});
  child.reap();
  return child.pid();
}

class Processes : public on_each_io_backend {
 protected:
  void TearDown() override { sky_async::detail::force_exit_polling(false); }

  std::vector<process_status> probe(std::vector<process_query> queries) {
    const std::size_t count = queries.size();
    auto statuses = run(sky_async::probe_processes(rt(), std::move(queries)));
    EXPECT_EQ(statuses.size(), count);
    return statuses;
  }
  process_status probe_one(long long pid, std::optional<std::uint64_t> start_time = std::nullopt) {
    const auto statuses = probe({process_query{pid, start_time}});
    return statuses.empty() ? process_status::invalid_pid : statuses.front();
  }
  bool wait(long long pid, std::optional<std::chrono::steady_clock::duration> timeout = std::nullopt) {
    return run(sky_async::wait_for_exit(rt(), pid, timeout));
  }
  // Each worker's io_context opens its reactor's descriptors (epoll, eventfd, timerfd)
  // on its first timer or descriptor; done here so that fd counts compare like with like.
  void warm_up_reactors() {
    for (unsigned i = 0; i < rt().threads(); ++i) wait(::getpid(), 0ms);
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, Processes, all_io_backends, io_backend_name);

TEST_P(Processes, OwnPidIsAlive) {
  EXPECT_TRUE(sky_async::is_process_alive(::getpid()));
  EXPECT_EQ(probe_one(::getpid()), process_status::alive);
  EXPECT_TRUE(run(sky_async::is_process_alive(rt(), ::getpid())));
}

TEST_P(Processes, ReapedChildIsNotAlive) {
  const pid_t pid = reaped_pid();
  EXPECT_FALSE(sky_async::is_process_alive(pid));
  EXPECT_EQ(probe_one(pid), process_status::no_such_process);
  EXPECT_FALSE(run(sky_async::is_process_alive(rt(), pid)));
}

TEST_P(Processes, ZombieIsNotAlive) {
  child_process child([] {});
  child.wait_until_zombie();
  ASSERT_EQ(::kill(child.pid(), 0), 0) << "kill(2) succeeds for a zombie: the test needs it to";
  ASSERT_EQ(stat_field(child.pid(), 3), "Z");
  EXPECT_FALSE(sky_async::is_process_alive(child.pid()));
  EXPECT_EQ(probe_one(child.pid()), process_status::zombie);
  // A zombie still has a start time: it is the same process until reaped.
  EXPECT_TRUE(sky_async::process_start_time(child.pid()).has_value());
}

TEST_P(Processes, InvalidPidsAreNeverProbed) {
  // As any user (and more so as root), kill(0, 0) and kill(-1, 0) succeed: they address
  // our process group and every process we may signal. An implementation that passed
  // these pids to kill(2) would report them alive.
  ASSERT_EQ(::kill(0, 0), 0);
  ASSERT_EQ(::kill(-1, 0), 0);
  const std::vector<long long> pids = {0,       -1,        -2,        system_pid_max() + 1,
                                       INT_MAX, 1LL << 40, LLONG_MAX, LLONG_MIN};
  std::vector<process_query> queries;
  for (long long pid : pids) queries.push_back({pid, std::nullopt});
  const auto statuses = probe(queries);
  for (std::size_t i = 0; i < pids.size(); ++i) {
    EXPECT_EQ(statuses[i], process_status::invalid_pid) << pids[i];
    EXPECT_FALSE(sky_async::is_process_alive(pids[i])) << pids[i];
    EXPECT_EQ(sky_async::probe_process(pids[i]), process_status::invalid_pid) << pids[i];
    EXPECT_FALSE(sky_async::process_start_time(pids[i]).has_value()) << pids[i];
  }
  EXPECT_EQ(sky_async::pid_max(), system_pid_max());
}

// The one pid_max of the library (the sizing helpers have none of their own), cached per
// process and read again in a child, which may live in another pid namespace.
TEST(PidMax, IsReadAgainInAForkedChild) {
  EXPECT_EQ(sky_async::pid_max(), system_pid_max());
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(sky_async::pid_max() == system_pid_max() ? 0 : 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_P(Processes, SomeoneElsesProcessIsAlive) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  // The child becomes nobody; pid 1 is root's, so kill(1, 0) fails there with EPERM.
  child_process child([] {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    if (::kill(1, 0) == 0 || errno != EPERM) ::_exit(2);
    ::_exit(sky_async::is_process_alive(1) ? 0 : 1);
  });
  const int status = child.reap();
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_NE(WEXITSTATUS(status), 3) << "setuid(nobody) failed";
  ASSERT_NE(WEXITSTATUS(status), 2) << "kill(1, 0) did not fail with EPERM as nobody";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "EPERM from kill(2) was not taken as alive";
}

TEST_P(Processes, StartTimeMatchesProcAndGuardsAgainstReuse) {
  const auto start = sky_async::process_start_time(::getpid());
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(std::to_string(*start), stat_field(::getpid(), 22));
  EXPECT_EQ(probe_one(::getpid(), *start), process_status::alive);
  EXPECT_EQ(probe_one(::getpid(), *start + 1), process_status::reused);
  EXPECT_EQ(sky_async::probe_process(::getpid(), *start + 1), process_status::reused);
  EXPECT_FALSE(sky_async::process_start_time(reaped_pid()).has_value());
}

TEST_P(Processes, CommandNameWithParenthesesAndSpacesIsParsed) {
  // The kernel takes the command name from the executed file's name: "a) Z 1 (b" makes a
  // parser that stops at the first ')' read the state as Z (a zombie).
  temp_dir dir;
  const auto link = dir / "a) Z 1 (b";
  std::filesystem::create_symlink("/bin/sleep", link);
  child_process child([&link] {
    ::execl(link.c_str(), link.c_str(), "30", static_cast<char*>(nullptr));
    ::_exit(127);
  });
  const auto comm = "/proc/" + std::to_string(child.pid()) + "/comm";
  for (int i = 0; i < 2000 && read_file(comm) != "a) Z 1 (b\n"; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(read_file(comm), "a) Z 1 (b\n") << "the exec did not happen";
  EXPECT_EQ(probe_one(child.pid()), process_status::alive);
  const auto start = sky_async::process_start_time(child.pid());
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(std::to_string(*start), stat_field(child.pid(), 22));
}

TEST_P(Processes, BatchOf10000EqualsThePerPidProbe) {
  // Every live pid, a zombie, invalid pids, and missing pids up to 10,000.
  child_process zombie([] {});
  zombie.wait_until_zombie();
  std::vector<process_query> queries;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") == std::string::npos) queries.push_back({std::stoll(name), {}});
  }
  queries.push_back({zombie.pid(), {}});
  queries.push_back({0, {}});
  queries.push_back({-5, {}});
  queries.push_back({system_pid_max() + 7, {}});
  queries.push_back({::getpid(), sky_async::process_start_time(::getpid())});
  queries.push_back({::getpid(), 1});
  for (long long pid = 1; queries.size() < 10000; pid = pid % system_pid_max() + 1)
    queries.push_back({pid, {}});

  std::vector<process_status> before, after;
  const long long first_pid = last_allocated_pid();
  for (const auto& q : queries) before.push_back(sky_async::probe_process(q.pid, q.start_time));
  const auto batch = probe(queries);
  for (const auto& q : queries) after.push_back(sky_async::probe_process(q.pid, q.start_time));
  const long long last_pid = last_allocated_pid();

  // Other programs start and exit meanwhile: compare where the system stood still, which
  // excludes the pids handed out during the probes (a short-lived process can be absent
  // before and after, and alive in between).
  std::size_t unstable = 0, new_pids = 0;
  std::map<process_status, std::size_t> seen;
  for (std::size_t i = 0; i < queries.size(); ++i) {
    if (before[i] != after[i]) {
      ++unstable;
      continue;
    }
    if (allocated_between(queries[i].pid, first_pid, last_pid)) {
      ++new_pids;
      continue;
    }
    ++seen[batch[i]];
    EXPECT_EQ(batch[i], before[i]) << "pid " << queries[i].pid << " at " << i;
  }
  EXPECT_LT(unstable, 100u);
  EXPECT_LT(new_pids, 1000u) << "pids handed out during the probes, " << first_pid << " to " << last_pid;
  EXPECT_GE(seen[process_status::alive], 3u);
  EXPECT_GE(seen[process_status::zombie], 1u);
  EXPECT_GE(seen[process_status::no_such_process], 1000u);
  EXPECT_EQ(seen[process_status::invalid_pid], 3u);
  EXPECT_EQ(seen[process_status::reused], 1u);
}

TEST_P(Processes, EmptyBatchGivesNoStatuses) { EXPECT_TRUE(probe({}).empty()); }

TEST_P(Processes, WaitForExitOfAChild) {
  child_process child([] { std::this_thread::sleep_for(200ms); });
  EXPECT_TRUE(wait(child.pid()));
  // Woken by the exit, not by a reap: the child is still a zombie.
  EXPECT_EQ(stat_field(child.pid(), 3), "Z");
}

TEST_P(Processes, WaitForExitOfAProcessThatIsNotOurChild) {
  // The shell starts sleep in the background and exits; sleep is then init's child.
  FILE* shell = ::popen("sleep 0.3 >/dev/null 2>&1 & echo $!", "r");
  ASSERT_NE(shell, nullptr);
  long long pid = 0;
  ASSERT_EQ(std::fscanf(shell, "%lld", &pid), 1);
  ::pclose(shell);
  ASSERT_NE(::getppid(), pid);
  EXPECT_TRUE(sky_async::is_process_alive(pid));
  EXPECT_TRUE(wait(pid, 20s));
  EXPECT_FALSE(sky_async::is_process_alive(pid));
}

TEST_P(Processes, WaitForExitTimesOut) {
  EXPECT_FALSE(wait(::getpid(), 50ms));
  EXPECT_FALSE(wait(::getpid(), 0ms));
  EXPECT_FALSE(wait(::getpid(), -5ms));
}

TEST_P(Processes, WaitForExitOfAGonePidIsImmediate) {
  EXPECT_TRUE(wait(reaped_pid()));
  EXPECT_TRUE(wait(0));
  EXPECT_TRUE(wait(-1));
  EXPECT_TRUE(wait(system_pid_max() + 1));
  child_process zombie([] {});
  zombie.wait_until_zombie();
  EXPECT_TRUE(wait(zombie.pid(), 0ms));
}

// Waits for `pid` with a cancellation signal emitted after 50 ms; returns the error.
boost::system::error_code wait_and_cancel(sky_async::runtime& rt, long long pid) {
  asio::io_context ctx;
  asio::cancellation_signal signal;
  asio::steady_timer timer(ctx, 50ms);
  timer.async_wait([&](const boost::system::error_code&) { signal.emit(asio::cancellation_type::all); });
  std::optional<boost::system::error_code> got;
  sky_async::async_wait_for_exit(
      rt, pid, std::nullopt,
      asio::bind_cancellation_slot(signal.slot(),
                                   asio::bind_executor(ctx, [&](boost::system::error_code ec, bool exited) {
                                     EXPECT_FALSE(exited);
                                     got = ec;
                                   })));
  ctx.run();
  EXPECT_TRUE(got.has_value());
  return got.value_or(boost::system::error_code());
}

TEST_P(Processes, CancellingAWaitClosesThePidfd) {
  warm_up_reactors();
  const auto fds = open_fds();
  ASSERT_EQ(count_pidfds(), 0u);
  EXPECT_EQ(wait_and_cancel(rt(), ::getpid()), asio::error::operation_aborted);
  EXPECT_EQ(count_pidfds(), 0u);
  EXPECT_EQ(open_fds(), fds);
}

TEST_P(Processes, AwaitableOrOperatorCancelsTheWait) {
  using namespace asio::experimental::awaitable_operators;
  warm_up_reactors();
  const auto fds = open_fds();
  const auto winner = run([this]() -> asio::awaitable<std::size_t> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 30ms);
    auto result =
        co_await (sky_async::wait_for_exit(rt(), ::getpid()) || timer.async_wait(asio::use_awaitable));
    co_return result.index();
  }());
  EXPECT_EQ(winner, 1u);
  EXPECT_EQ(open_fds(), fds);
}

TEST_P(Processes, PollingFallbackWaitsTimesOutAndCancels) {
  sky_async::detail::force_exit_polling(true);
  warm_up_reactors();
  const auto fds = open_fds();
  {
    child_process child([] { std::this_thread::sleep_for(100ms); });
    EXPECT_TRUE(wait(child.pid()));
    EXPECT_EQ(stat_field(child.pid(), 3), "Z");
  }
  EXPECT_FALSE(wait(::getpid(), 30ms));
  EXPECT_TRUE(wait(reaped_pid()));
  EXPECT_EQ(wait_and_cancel(rt(), ::getpid()), asio::error::operation_aborted);
  EXPECT_EQ(open_fds(), fds);
}

TEST_P(Processes, ShutdownCompletesAPendingWaitAsAborted) {
  auto future = sky_async::async_wait_for_exit(rt(), ::getpid(), std::nullopt, asio::use_future);
  // Shut down only once the worker has opened the pidfd: the wait is then pending, not
  // queued. Polled, not slept for: a loaded machine may take longer than any fixed pause.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (count_pidfds() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(count_pidfds(), 1u);
  rt_.reset();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  try {
    future.get();
    ADD_FAILURE() << "the wait completed normally";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
  EXPECT_EQ(count_pidfds(), 0u) << "the pidfd was not closed";
}

TEST(ProcessesOnGlobalRuntime, AwaitablesWork) {
  EXPECT_EQ(run(sky_async::probe_processes({process_query{::getpid(), std::nullopt}})).at(0),
            process_status::alive);
  EXPECT_FALSE(run(sky_async::wait_for_exit(::getpid(), 10ms)));
  EXPECT_TRUE(run(sky_async::wait_for_exit(reaped_pid())));
}

}  // namespace
