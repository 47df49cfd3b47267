// SkyPilot's sizing helpers and port probe: cgroup v1/v2 parsing on fixture trees (so
// every layout is tested, not only this machine's), environment overrides, the
// formulas, directory estimates and their errors, and the asynchronous forms on both
// I/O backends.
#include <sky_async/system.hpp>  // first: the header must compile on its own

#include "system/system_info.hpp"
#include "test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace sky_async_test;
using sky_async::io_backend;
using sky_async::detail::cgroup_rules;
namespace fs = std::filesystem;

constexpr std::uint64_t GiB = std::uint64_t{1} << 30;

// A cgroup v2 namespace root with the given files (name -> content).
fs::path cgroup_v2(const fs::path& root, std::initializer_list<std::pair<const char*, const char*>> files) {
  fs::create_directories(root);
  write_file(root / "cgroup.controllers", "cpu memory\n");
  for (const auto& [name, text] : files) write_file(root / name, text);
  return root;
}

fs::path cgroup_v1(const fs::path& root, std::optional<std::pair<const char*, const char*>> cpu,
                   std::optional<const char*> memory = std::nullopt) {
  fs::create_directories(root);
  if (cpu) {
    fs::create_directories(root / "cpu");
    write_file(root / "cpu" / "cpu.cfs_quota_us", cpu->first);
    write_file(root / "cpu" / "cpu.cfs_period_us", cpu->second);
  }
  if (memory) {
    fs::create_directories(root / "memory");
    write_file(root / "memory" / "memory.limit_in_bytes", *memory);
  }
  return root;
}

unsigned online_cpus() { return static_cast<unsigned>(::sysconf(_SC_NPROCESSORS_ONLN)); }

unsigned affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0);
  return static_cast<unsigned>(CPU_COUNT(&set));
}

// --- cgroup CPU limit ------------------------------------------------------------------------

struct cpu_case {
  const char* cpu_max;
  std::optional<double> expected;
};

TEST(CgroupCpuLimit, V2) {
  const cpu_case cases[] = {
      {"100000 100000\n", 1.0},
      {"max 100000", std::nullopt},
      {"50000 100000", 0.5},
      {"150000", std::nullopt},
      {"-1 100000", std::nullopt},
      {"0 100000", std::nullopt},
      {"garbage here", std::nullopt},
      {"", std::nullopt},
      {"1 2 3", std::nullopt},
      {"  200000\t100000  \n", 2.0},
      {"1_0 1_0", 1.0},
      {"1e5 1e5", 1.0},
      {"nan 100000", std::nullopt},
  };
  for (const auto& c : cases) {
    temp_dir dir;
    const auto root = cgroup_v2(dir / "cg", {{"cpu.max", c.cpu_max}});
    EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(root), c.expected) << '"' << c.cpu_max << '"';
    EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(root, cgroup_rules::skypilot), c.expected) << c.cpu_max;
  }
}

TEST(CgroupCpuLimit, V2MissingCpuMaxIsNoLimit) {
  temp_dir dir;
  EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(cgroup_v2(dir / "cg", {})), std::nullopt);
}

TEST(CgroupCpuLimit, V2PeriodThatIsNotPositiveIsNoLimitButSkyPilotRulesKeepItsErrors) {
  temp_dir dir;
  const auto zero = cgroup_v2(dir / "zero", {{"cpu.max", "100 0"}});
  EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(zero), std::nullopt);
  EXPECT_THROW(sky_async::detail::cgroup_cpu_limit(zero, cgroup_rules::skypilot),
               sky_async::detail::cgroup_zero_period);
  const auto negative = cgroup_v2(dir / "negative", {{"cpu.max", "50000 -100000"}});
  EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(negative), std::nullopt);
  EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(negative, cgroup_rules::skypilot), -0.5);
}

TEST(CgroupCpuLimit, V1) {
  struct v1_case {
    const char* quota;
    const char* period;
    std::optional<double> expected;
  };
  const v1_case cases[] = {
      {"100000", "100000", 1.0},     {"50000", "100000", 0.5},      {"-1", "100000", std::nullopt},
      {"x", "100000", std::nullopt}, {"100000", "0", std::nullopt}, {"150000\n", "100000\n", 1.5},
  };
  for (const auto& c : cases) {
    temp_dir dir;
    const auto root = cgroup_v1(dir / "cg", std::pair{c.quota, c.period});
    EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(root), c.expected) << c.quota << "/" << c.period;
    EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(root, cgroup_rules::skypilot), c.expected);
  }
}

TEST(CgroupCpuLimit, NoFilesIsNoLimit) {
  temp_dir dir;
  EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(dir.path()), std::nullopt);
  EXPECT_EQ(sky_async::detail::cgroup_memory_limit(dir.path()), std::nullopt);
  EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(dir / "does-not-exist"), std::nullopt);
}

TEST(CgroupCpuLimit, ControllersThatIsADirectoryMeansV1) {
  temp_dir dir;
  const auto root = cgroup_v1(dir / "cg", std::pair{"200000", "100000"});
  fs::create_directories(root / "cgroup.controllers");
  EXPECT_EQ(sky_async::detail::cgroup_cpu_limit(root), 2.0);
}

// --- cgroup memory limit ---------------------------------------------------------------------

TEST(CgroupMemoryLimit, V2) {
  struct memory_case {
    const char* text;
    std::optional<std::uint64_t> expected;
  };
  const memory_case cases[] = {
      {"8589934592\n", 8 * GiB}, {"max\n", std::nullopt}, {"", std::nullopt},
      {"12.5", std::nullopt},    {"0", std::nullopt},     {"-5", std::nullopt},
      {"garbage", std::nullopt}, {"+1_024", 1024},        {"99999999999999999999999", UINT64_MAX},
  };
  for (const auto& c : cases) {
    temp_dir dir;
    EXPECT_EQ(sky_async::detail::cgroup_memory_limit(cgroup_v2(dir / "cg", {{"memory.max", c.text}})),
              c.expected)
        << '"' << c.text << '"';
  }
}

TEST(CgroupMemoryLimit, V1) {
  temp_dir dir;
  EXPECT_EQ(sky_async::detail::cgroup_memory_limit(cgroup_v1(dir / "a", std::nullopt, "1073741824")), GiB);
  EXPECT_EQ(sky_async::detail::cgroup_memory_limit(cgroup_v1(dir / "b", std::nullopt, "")), std::nullopt);
  EXPECT_EQ(sky_async::detail::cgroup_memory_limit(cgroup_v1(dir / "c", std::nullopt, "9223372036854771712")),
            std::uint64_t{9223372036854771712ULL});
}

// --- the content parsers (what the fuzzers drive) --------------------------------------------

TEST(CgroupParsers, ContentParsersGiveTheFileReadersAnswers) {
  using sky_async::detail::cgroup_rules;
  using sky_async::detail::parse_cgroup_v1_cpu;
  using sky_async::detail::parse_cgroup_v2_cpu_max;
  EXPECT_EQ(parse_cgroup_v2_cpu_max("50000 100000\n", cgroup_rules::sky_async), 0.5);
  EXPECT_EQ(parse_cgroup_v2_cpu_max("max 100000\n", cgroup_rules::sky_async), std::nullopt);
  EXPECT_EQ(parse_cgroup_v2_cpu_max("1 2 3", cgroup_rules::sky_async), std::nullopt);
  EXPECT_EQ(parse_cgroup_v2_cpu_max("1e308 1e-308", cgroup_rules::sky_async), std::nullopt);  // overflows
  EXPECT_EQ(parse_cgroup_v2_cpu_max("50000 -100000", cgroup_rules::skypilot), -0.5);
  EXPECT_THROW(parse_cgroup_v2_cpu_max("50000 0", cgroup_rules::skypilot),
               sky_async::detail::cgroup_zero_period);
  EXPECT_EQ(parse_cgroup_v1_cpu("150000\n", " 100000 ", cgroup_rules::sky_async), 1.5);
  EXPECT_EQ(parse_cgroup_v1_cpu("-1", "100000", cgroup_rules::sky_async), std::nullopt);
  EXPECT_EQ(parse_cgroup_v1_cpu("1e308", "1e-308", cgroup_rules::skypilot), HUGE_VAL);
  // Found by the cgroup fuzzer: both infinite is Python's inf / inf, NaN (then int()
  // raises in get_cpu_count, as it does in SkyPilot); sky_async's rules see no limit.
  const auto infinite = parse_cgroup_v1_cpu("9e9999", "inf", cgroup_rules::skypilot);
  ASSERT_TRUE(infinite.has_value());
  EXPECT_TRUE(std::isnan(*infinite));
  EXPECT_EQ(parse_cgroup_v1_cpu("9e9999", "inf", cgroup_rules::sky_async), std::nullopt);
  EXPECT_EQ(sky_async::detail::parse_cgroup_memory_limit(" 007\n"), 7U);
  EXPECT_EQ(sky_async::detail::parse_cgroup_memory_limit("max"), std::nullopt);
}

// --- get_cpu_count ---------------------------------------------------------------------------

class SkyPilotEnvironment : public ::testing::Test {
 protected:
  scoped_env cpu_{"SKYPILOT_POD_CPU_CORE_LIMIT", std::nullopt};
  scoped_env gb_{"SKYPILOT_POD_MEMORY_GB_LIMIT", std::nullopt};
  scoped_env bytes_{"SKYPILOT_POD_MEMORY_BYTES_LIMIT", std::nullopt};
  temp_dir dir_;
};

using CpuCount = SkyPilotEnvironment;

TEST_F(CpuCount, HostAndAffinityWithoutACgroupLimit) {
  EXPECT_EQ(sky_async::detail::cpu_count(dir_.path()),
            static_cast<int>(std::min(online_cpus(), affinity_cpus())));
  EXPECT_GE(sky_async::get_cpu_count(), 0);
}

TEST_F(CpuCount, QuotaIsTruncatedNotRoundedUp) {
  const int base = static_cast<int>(std::min(online_cpus(), affinity_cpus()));
  EXPECT_EQ(sky_async::detail::cpu_count(cgroup_v2(dir_ / "a", {{"cpu.max", "50000 100000"}})), 0);
  EXPECT_EQ(sky_async::detail::cpu_count(cgroup_v2(dir_ / "b", {{"cpu.max", "190000 100000"}})),
            std::min(base, 1));
  EXPECT_EQ(sky_async::detail::cpu_count(cgroup_v2(dir_ / "c", {{"cpu.max", "1600000000 100000"}})), base);
  EXPECT_EQ(sky_async::detail::cpu_count(cgroup_v1(dir_ / "d", std::pair{"100000", "100000"})), 1);
}

TEST_F(CpuCount, SkyPilotRulesRaiseForAZeroPeriodAndTheAsyncRulesDoNot) {
  const auto root = cgroup_v2(dir_ / "zero", {{"cpu.max", "100 0"}});
  EXPECT_EQ(sky_async::detail::cpu_count(root), static_cast<int>(std::min(online_cpus(), affinity_cpus())));
  EXPECT_THROW(sky_async::detail::cpu_count(root, cgroup_rules::skypilot),
               sky_async::detail::cgroup_zero_period);
  const auto infinite = cgroup_v2(dir_ / "inf", {{"cpu.max", "inf 100000"}});
  EXPECT_THROW(sky_async::detail::cpu_count(infinite, cgroup_rules::skypilot), std::overflow_error);
}

TEST_F(CpuCount, EnvironmentOverrideUsesPythonFloatSyntaxAndTruncates) {
  const std::pair<const char*, int> cases[] = {{"2", 2},
                                               {"2.9", 2},
                                               {"0.5", 0},
                                               {"1e1", 10},
                                               {"-3", -3},
                                               {"64", 64},
                                               {" 4\n", 4},
                                               {"1_0", 10},
                                               {"+7.", 7},
                                               {".5e1", 5},
                                               {"-0.9", 0},
                                               {"\xc2\xa0"
                                                "3",
                                                3}};
  for (const auto& [value, expected] : cases) {
    scoped_env env("SKYPILOT_POD_CPU_CORE_LIMIT", value);
    EXPECT_EQ(sky_async::get_cpu_count(), expected) << '"' << value << '"';
  }
}

TEST_F(CpuCount, UnparseableEnvironmentIsInvalidArgumentWithSkyPilotsMessage) {
  for (const char* value : {"", "abc", "nan", "1__0", "0x10", "1e", "nan(1)",
                            "\x1c"
                            "1"}) {
    scoped_env env("SKYPILOT_POD_CPU_CORE_LIMIT", value);
    try {
      sky_async::get_cpu_count();
      ADD_FAILURE() << "no exception for \"" << value << '"';
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()), std::string("Failed to parse the number of CPUs from ") + value);
    }
  }
}

TEST_F(CpuCount, InfiniteOrHugeEnvironmentIsOverflow) {
  for (const char* value : {"inf", "-Infinity", "1e30"}) {
    scoped_env env("SKYPILOT_POD_CPU_CORE_LIMIT", value);
    EXPECT_THROW(sky_async::get_cpu_count(), std::overflow_error) << value;
  }
}

// --- get_mem_size_gb -------------------------------------------------------------------------

using MemSize = SkyPilotEnvironment;

TEST_F(MemSize, TotalMemoryCappedByTheCgroup) {
  const double host = static_cast<double>(sky_async::detail::host_memory_bytes()) / static_cast<double>(GiB);
  EXPECT_GT(host, 0);
  EXPECT_EQ(sky_async::detail::mem_size_gb(dir_.path()), host);
  EXPECT_EQ(sky_async::detail::mem_size_gb(cgroup_v2(dir_ / "a", {{"memory.max", "536870912"}})), 0.5);
  EXPECT_EQ(sky_async::detail::mem_size_gb(cgroup_v2(dir_ / "b", {{"memory.max", "max"}})), host);
  EXPECT_EQ(sky_async::detail::mem_size_gb(cgroup_v1(dir_ / "c", std::nullopt, "9223372036854771712")), host);
}

TEST_F(MemSize, HostMemoryIsMemTotal) {
  const std::string meminfo = read_file("/proc/meminfo");
  const auto at = meminfo.find("MemTotal:");
  ASSERT_NE(at, std::string::npos);
  const std::uint64_t kib = std::stoull(meminfo.substr(at + 9));
  EXPECT_EQ(sky_async::detail::host_memory_bytes(), kib * 1024);
}

TEST_F(MemSize, EnvironmentOverridesGbFirst) {
  scoped_env bytes("SKYPILOT_POD_MEMORY_BYTES_LIMIT", "3221225472");
  EXPECT_EQ(sky_async::get_mem_size_gb(), 3.0);
  scoped_env gb("SKYPILOT_POD_MEMORY_GB_LIMIT", " 2.5 ");
  EXPECT_EQ(sky_async::get_mem_size_gb(), 2.5);
  scoped_env infinite("SKYPILOT_POD_MEMORY_GB_LIMIT", "inf");
  EXPECT_TRUE(std::isinf(sky_async::get_mem_size_gb()));
}

TEST_F(MemSize, UnparseableEnvironmentNamesTheUnit) {
  {
    scoped_env gb("SKYPILOT_POD_MEMORY_GB_LIMIT", "lots");
    EXPECT_THROW(
        {
          try {
            sky_async::get_mem_size_gb();
          } catch (const std::invalid_argument& e) {
            EXPECT_STREQ(e.what(), "Failed to parse the memory size from lots (GB)");
            throw;
          }
        },
        std::invalid_argument);
  }
  scoped_env bytes("SKYPILOT_POD_MEMORY_BYTES_LIMIT", "");
  try {
    sky_async::get_mem_size_gb();
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "Failed to parse the memory size from  (bytes)");
  }
}

// --- get_parallel_threads and the worker formula ---------------------------------------------

TEST(ParallelThreads, FormulaOnTheHostCpuCount) {
  const int base = std::max(4, static_cast<int>(online_cpus()) - 1);
  EXPECT_EQ(sky_async::get_parallel_threads(), base);
  EXPECT_EQ(sky_async::get_parallel_threads("kubernetes"), 4 * base);
  EXPECT_EQ(sky_async::get_parallel_threads("Kubernetes"), 4 * base);
  EXPECT_EQ(sky_async::get_parallel_threads("KUBERNETES"), 4 * base);
  EXPECT_EQ(sky_async::get_parallel_threads("\xe2\x84\xaa"
                                            "ubernetes"),
            4 * base);  // KELVIN SIGN lower-cases to k
  for (const char* other : {"", "k8s", "kubernetes ", "SSH", "aws", "kubernete", "kubernetess"}) {
    EXPECT_EQ(sky_async::get_parallel_threads(other), base) << '"' << other << '"';
  }
}

TEST(MaxWorkersFormula, SkyPilotExamples) {
  using sky_async::detail::max_workers_for;
  EXPECT_EQ(max_workers_for(1024, 5, 7), 7);
  EXPECT_EQ(max_workers_for(1024, 500, 7), 1);
  EXPECT_EQ(max_workers_for(256, 5, 252), 31);
  EXPECT_EQ(max_workers_for(-1, 5, 7), 1);
  EXPECT_EQ(max_workers_for(100, 5, 7), 1);
  EXPECT_EQ(max_workers_for(1LL << 40, 5, 28), 28);
}

// --- estimate_fd_for_directory and get_max_workers_for_file_mounts (blocking) ----------------

TEST(FdEstimate, CountsTopLevelEntriesWithAFloor) {
  temp_dir dir;
  EXPECT_EQ(sky_async::estimate_fd_for_directory(dir.path()), 5);
  write_file(dir / "a", "x");
  write_file(dir / ".hidden", "x");
  fs::create_directory(dir / "sub");
  write_file(dir / "sub" / "deep", "not counted");
  EXPECT_EQ(sky_async::estimate_fd_for_directory(dir.path()), 15);
  EXPECT_EQ(sky_async::estimate_fd_for_directory(dir / "a"), 5);
  EXPECT_EQ(sky_async::estimate_fd_for_directory(dir / "missing"), 5);
  fs::create_directory_symlink(dir / "sub", dir / "link");
  EXPECT_EQ(sky_async::estimate_fd_for_directory(dir / "link"), 5);
  EXPECT_EQ(sky_async::estimate_fd_for_directory(dir.path()), 20);
  fs::create_symlink(dir / "nowhere", dir / "dangling");
  EXPECT_EQ(sky_async::estimate_fd_for_directory(dir / "dangling"), 5);
}

TEST(FdEstimate, LargeDirectory) {
  temp_dir dir;
  for (int i = 0; i < 3000; ++i) write_file(dir / ("f" + std::to_string(i)), "");
  const auto before = open_fds();
  EXPECT_EQ(sky_async::estimate_fd_for_directory(dir.path()), 15000);
  EXPECT_EQ(open_fds(), before);
}

// Runs `body` in a child process as user nobody, where a directory with mode 000 cannot
// be listed (root could list it); returns the child's exit code.
template <typename Body>
int as_nobody(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(77);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST(FdEstimate, UnlistableDirectoryThrowsNamingThePath) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become a user that cannot list a directory";
  temp_dir dir;
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  const auto locked = dir / "locked";
  fs::create_directory(locked);
  fs::permissions(locked, fs::perms::none);
  const int code = as_nobody([&] {
    try {
      sky_async::estimate_fd_for_directory(locked);
      return 1;
    } catch (const fs::filesystem_error& e) {
      if (e.code() != std::errc::permission_denied || e.path1() != locked) return 2;
    }
    try {
      sky_async::get_max_workers_for_file_mounts({dir.path(), "s3://bucket", locked});
      return 3;
    } catch (const fs::filesystem_error& e) {
      return e.path1() == locked ? 0 : 4;
    }
  });
  EXPECT_EQ(code, 0);
}

TEST(MaxWorkers, UsesTheLargestSourceAndTheSoftLimit) {
  temp_dir dir;
  fs::create_directory(dir / "src");
  for (int i = 0; i < 100; ++i) write_file(dir / "src" / ("f" + std::to_string(i)), "");
  const long long limit = sky_async::detail::fd_soft_limit();
  const int threads = sky_async::get_parallel_threads();
  const auto expected = [&](long long per) {
    return sky_async::detail::max_workers_for(limit, per, threads);
  };
  EXPECT_EQ(sky_async::get_max_workers_for_file_mounts({}), expected(5));
  EXPECT_EQ(sky_async::get_max_workers_for_file_mounts({dir / "missing", "s3://b"}), expected(5));
  EXPECT_EQ(sky_async::get_max_workers_for_file_mounts({dir / "src", dir.path()}), expected(500));
  EXPECT_EQ(sky_async::get_max_workers_for_file_mounts({dir / "src"}, "kubernetes"),
            sky_async::detail::max_workers_for(limit, 500, sky_async::get_parallel_threads("kubernetes")));
}

TEST(MaxWorkers, SoftLimitBelowTheReserveGivesOneWorker) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = 64;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(77);
    ::_exit(sky_async::detail::fd_soft_limit() == 64 && sky_async::get_max_workers_for_file_mounts({}) == 1
                ? 0
                : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// --- find_free_port (blocking) ---------------------------------------------------------------

// A socket bound to a kernel-chosen port on every IPv4 interface, held for the scope.
class bound_port {
 public:
  bound_port() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
      throw std::runtime_error("bind");
    socklen_t size = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
  }
  ~bound_port() { ::close(fd_); }
  int port() const noexcept { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

bool can_bind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return ok;
}

TEST(FindFreePort, SkipsABoundPortAndReleasesTheOneItFinds) {
  bound_port taken;
  if (taken.port() >= 65534) GTEST_SKIP() << "the kernel handed out the last port";
  const auto before = open_fds();
  const int found = sky_async::find_free_port(taken.port());
  EXPECT_GT(found, taken.port());
  EXPECT_EQ(open_fds(), before);
  EXPECT_TRUE(can_bind(found));
}

TEST(FindFreePort, Edges) {
  EXPECT_EQ(sky_async::find_free_port(0), 0);
  EXPECT_THROW(sky_async::find_free_port(-1), std::invalid_argument);
  for (int start : {65535, 70000, INT_MAX}) {
    try {
      sky_async::find_free_port(start);
      ADD_FAILURE() << "no exception for " << start;
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::address_in_use);
      EXPECT_NE(std::string(e.what()).find("No free ports available"), std::string::npos) << e.what();
    }
  }
}

// --- process-lifetime caches -----------------------------------------------------------------

TEST(HostFacts, AreReadAgainInAForkedChild) {
  EXPECT_EQ(sky_async::detail::host_cpu_count(), online_cpus());
  const pid_t pid = ::fork();
  if (pid == 0) {
    const bool same = sky_async::detail::host_cpu_count() == online_cpus();
    ::_exit(same ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// --- the asynchronous forms, on both I/O backends --------------------------------------------

class SystemAsync : public on_each_io_backend {
 protected:
};

INSTANTIATE_TEST_SUITE_P(Backends, SystemAsync, all_io_backends, io_backend_name);

TEST_P(SystemAsync, FdEstimateMatchesTheBlockingForm) {
  for (int i = 0; i < 7; ++i) write_file(dir_ / ("f" + std::to_string(i)), "");
  const auto before = open_fds();
  EXPECT_EQ(run(sky_async::estimate_fd_for_directory(rt(), dir_.path())), 35);
  EXPECT_EQ(run(sky_async::estimate_fd_for_directory(rt(), dir_ / "f0")), 5);
  EXPECT_EQ(run(sky_async::estimate_fd_for_directory(rt(), dir_ / "missing")), 5);
  EXPECT_EQ(open_fds(), before);
}

TEST_P(SystemAsync, FdEstimateWithAFutureTokenReportsTheResult) {
  write_file(dir_ / "a", "");
  auto future = sky_async::async_estimate_fd_for_directory(rt(), dir_.path(), asio::use_future);
  const auto result = future.get();
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.value, 5);
  EXPECT_TRUE(result.path.empty());
}

TEST_P(SystemAsync, MaxWorkersMatchesTheBlockingForm) {
  fs::create_directory(dir_ / "src");
  for (int i = 0; i < 30; ++i) write_file(dir_ / "src" / ("f" + std::to_string(i)), "");
  const std::vector<fs::path> sources{dir_ / "src", "s3://bucket", dir_ / "missing"};
  EXPECT_EQ(run(sky_async::get_max_workers_for_file_mounts(rt(), sources)),
            sky_async::get_max_workers_for_file_mounts(sources));
  EXPECT_EQ(run(sky_async::get_max_workers_for_file_mounts(rt(), sources, "kubernetes")),
            sky_async::get_max_workers_for_file_mounts(sources, "kubernetes"));
}

TEST_P(SystemAsync, FindFreePortSkipsABoundPort) {
  bound_port taken;
  if (taken.port() >= 65534) GTEST_SKIP() << "the kernel handed out the last port";
  const int found = run(sky_async::find_free_port(rt(), taken.port()));
  EXPECT_GT(found, taken.port());
  EXPECT_TRUE(can_bind(found));
}

TEST_P(SystemAsync, FindFreePortErrors) {
  EXPECT_THROW(run(sky_async::find_free_port(rt(), -5)), std::invalid_argument);
  try {
    run(sky_async::find_free_port(rt(), 65535));
    ADD_FAILURE() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use);
  }
}

TEST_P(SystemAsync, CancellationCompletesAndLeaksNothing) {
  for (int i = 0; i < 2000; ++i) write_file(dir_ / ("f" + std::to_string(i)), "");
  const auto before = open_fds();
  for (int round = 0; round < 20; ++round) {
    // Emitting and clearing a cancellation slot must not race (Asio's slots are not
    // thread-safe): the completion runs on this thread's io_context, as does the emit.
    asio::io_context here;
    asio::cancellation_signal signal;
    auto future = sky_async::async_estimate_fd_for_directory(
        rt(), dir_.path(),
        asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(here, asio::use_future)));
    signal.emit(asio::cancellation_type::terminal);
    here.run();
    try {
      EXPECT_EQ(future.get().value, 10000);  // finished before the cancel took
    } catch (const boost::system::system_error& e) {
      EXPECT_EQ(e.code(), asio::error::operation_aborted);
    }
  }
  EXPECT_EQ(open_fds(), before);
}

TEST_P(SystemAsync, RuntimeShutdownWithJobsQueued) {
  for (int i = 0; i < 500; ++i) write_file(dir_ / ("f" + std::to_string(i)), "");
  std::vector<std::future<sky_async::system_result<long long>>> futures;
  for (int i = 0; i < 50; ++i) {
    futures.push_back(sky_async::async_estimate_fd_for_directory(rt(), dir_.path(), asio::use_future));
  }
  rt_.reset();  // cancels what has not run, waits for the rest
  for (auto& future : futures) {
    try {
      EXPECT_EQ(future.get().value, 2500);
    } catch (const boost::system::system_error& e) {
      EXPECT_EQ(e.code(), asio::error::operation_aborted);
    }
  }
}

}  // namespace
