#include "system/system_info.hpp"

#include "text/py_literals.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

namespace sky_async::detail {
namespace {

// The whole file (cgroup and /proc files are small); std::nullopt when it cannot be
// opened or read. Plain syscalls: this runs on every get_cpu_count() call.
std::optional<std::string> read_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (got == 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return text;
}

bool is_regular(const std::filesystem::path& path) noexcept {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_cgroup_v2(const std::filesystem::path& root) noexcept {
  return is_regular(root / "cgroup.controllers");
}

bool positive_finite(double value) noexcept { return std::isfinite(value) && value > 0; }

// sky_async's rule: quota / period when both are positive finite numbers and the
// quotient does not overflow; otherwise no limit.
std::optional<double> positive_quotient(double quota, double period) noexcept {
  if (!positive_finite(quota) || !positive_finite(period)) return std::nullopt;
  const double limit = quota / period;
  if (!std::isfinite(limit)) return std::nullopt;  // an overflowing quotient
  return limit;
}

// Python's int(limit) for a float, as a value that fits an int; otherwise the error
// Python's int() or the int range gives.
int truncate_cpu_limit(double limit) {
  if (std::isnan(limit)) throw std::invalid_argument("cannot convert float NaN to integer");
  if (std::isinf(limit)) throw std::overflow_error("cannot convert float infinity to integer");
  const double truncated = std::trunc(limit);
  // Above INT_MAX Python's min(cpus, int(limit)) is cpus anyway; below INT_MIN it would
  // be a huge negative count, which an int cannot hold.
  if (truncated > INT_MAX) return INT_MAX;
  if (truncated < INT_MIN) throw std::overflow_error("the cgroup CPU limit is out of range");
  return static_cast<int>(truncated);
}

// Facts that do not change during a process's life. Invalidated in the child of a
// fork(), which recomputes them on first use.
struct host_facts {
  unsigned cpus = 1;
  std::uint64_t memory = 0;
};

std::mutex host_mutex;
std::atomic<bool> host_valid{false};
host_facts host;

[[maybe_unused]] const int host_fork_handler =
    ::pthread_atfork(nullptr, nullptr, [] { host_valid.store(false, std::memory_order_relaxed); });

const host_facts& host_facts_now() noexcept {
  if (host_valid.load(std::memory_order_acquire)) return host;
  std::lock_guard lock(host_mutex);
  if (!host_valid.load(std::memory_order_relaxed)) {
    const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
    host.cpus = online > 0 ? static_cast<unsigned>(online) : 1U;
    struct sysinfo info{};
    host.memory = ::sysinfo(&info) == 0 ? static_cast<std::uint64_t>(info.totalram) * info.mem_unit : 0;
    host_valid.store(true, std::memory_order_release);
  }
  return host;
}

}  // namespace

std::optional<double> parse_cgroup_v2_cpu_max(std::string_view text, cgroup_rules rules) {
  const auto fields = split_py_space(strip_py_space(text, py_space::str_methods));
  if (fields.size() != 2 || fields[0] == "max") return std::nullopt;
  const auto quota = parse_py_float(fields[0]);
  const auto period = parse_py_float(fields[1]);
  if (!quota || !period || !(*quota > 0)) return std::nullopt;
  if (rules == cgroup_rules::skypilot) {
    if (*period == 0) throw cgroup_zero_period();
    return *quota / *period;
  }
  return positive_quotient(*quota, *period);
}

std::optional<double> parse_cgroup_v1_cpu(std::string_view quota_text, std::string_view period_text,
                                          cgroup_rules rules) {
  const auto quota = parse_py_float(strip_py_space(quota_text, py_space::str_methods));
  const auto period = parse_py_float(strip_py_space(period_text, py_space::str_methods));
  if (!quota || !period || !(*quota > 0) || !(*period > 0)) return std::nullopt;
  if (rules == cgroup_rules::skypilot) return *quota / *period;
  return positive_quotient(*quota, *period);
}

std::optional<std::uint64_t> parse_cgroup_memory_limit(std::string_view text) {
  const std::string_view value = strip_py_space(text, py_space::str_methods);
  if (value.empty() || value == "max") return std::nullopt;
  const auto literal = parse_py_int_literal(value, 10);
  if (!literal || literal->negative) return std::nullopt;
  const auto first = literal->digits.find_first_not_of('0');
  if (first == std::string::npos) return std::nullopt;         // zero
  if (literal->digits.size() - first > 19) return UINT64_MAX;  // beyond any memory: loses the minimum
  const std::uint64_t bytes = std::stoull(literal->digits.substr(first));
  return bytes;
}

std::optional<double> cgroup_cpu_limit(const std::filesystem::path& root, cgroup_rules rules) {
  if (is_cgroup_v2(root)) {
    const auto text = read_file(root / "cpu.max");
    if (!text) return std::nullopt;
    return parse_cgroup_v2_cpu_max(*text, rules);
  }
  const auto quota = read_file(root / "cpu" / "cpu.cfs_quota_us");
  const auto period = read_file(root / "cpu" / "cpu.cfs_period_us");
  if (!quota || !period) return std::nullopt;
  return parse_cgroup_v1_cpu(*quota, *period, rules);
}

std::optional<std::uint64_t> cgroup_memory_limit(const std::filesystem::path& root) {
  const auto path = is_cgroup_v2(root) ? root / "memory.max" : root / "memory" / "memory.limit_in_bytes";
  const auto text = read_file(path);
  if (!text) return std::nullopt;
  return parse_cgroup_memory_limit(*text);
}

unsigned host_cpu_count() noexcept { return host_facts_now().cpus; }
std::uint64_t host_memory_bytes() noexcept { return host_facts_now().memory; }

unsigned affinity_cpu_count() noexcept {
  // A mask larger than cpu_set_t for machines with more than 1024 CPUs, as Python grows it.
  for (std::size_t cpus = std::max<std::size_t>(CPU_SETSIZE, host_cpu_count()); cpus <= (1U << 20);
       cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (set == nullptr) break;
    const std::size_t size = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(size, set);
    const int rc = ::sched_getaffinity(0, size, set);
    const int error = errno;
    const int count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
    CPU_FREE(set);
    if (rc == 0) return std::max(count, 1);
    if (error != EINVAL) break;
  }
  return host_cpu_count();
}

long long fd_soft_limit() noexcept {
  struct rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > static_cast<rlim_t>(LLONG_MAX)) return -1;
  return static_cast<long long>(limit.rlim_cur);
}

int cpu_count(const std::filesystem::path& root, cgroup_rules rules) {
  if (const char* env = std::getenv("SKYPILOT_POD_CPU_CORE_LIMIT")) {
    const auto value = parse_py_float(env);
    if (!value || std::isnan(*value)) {
      throw std::invalid_argument("Failed to parse the number of CPUs from " + std::string(env));
    }
    const double truncated = std::trunc(*value);
    if (!(truncated >= INT_MIN && truncated <= INT_MAX)) {
      throw std::overflow_error("Failed to parse the number of CPUs from " + std::string(env) +
                                ": out of range");
    }
    return static_cast<int>(truncated);
  }
  int cpus = static_cast<int>(std::min(host_cpu_count(), affinity_cpu_count()));
  if (const auto limit = cgroup_cpu_limit(root, rules)) cpus = std::min(cpus, truncate_cpu_limit(*limit));
  return cpus;
}

double mem_size_gb(const std::filesystem::path& root) {
  constexpr double bytes_per_gib = 1024.0 * 1024.0 * 1024.0;
  if (const char* env = std::getenv("SKYPILOT_POD_MEMORY_GB_LIMIT")) {
    if (const auto value = parse_py_float(env)) return *value;
    throw std::invalid_argument("Failed to parse the memory size from " + std::string(env) + " (GB)");
  }
  if (const char* env = std::getenv("SKYPILOT_POD_MEMORY_BYTES_LIMIT")) {
    if (const auto value = parse_py_float(env)) return *value / bytes_per_gib;
    throw std::invalid_argument("Failed to parse the memory size from " + std::string(env) + " (bytes)");
  }
  std::uint64_t total = host_memory_bytes();
  if (const auto limit = cgroup_memory_limit(root)) total = std::min(total, *limit);
  return static_cast<double>(total) / bytes_per_gib;
}

int max_workers_for(long long fd_limit, long long fd_per_rsync, int threads) noexcept {
  const long long numerator = fd_limit - 100;
  long long workers = numerator / fd_per_rsync;
  if (numerator % fd_per_rsync != 0 && numerator < 0) --workers;  // floor, as Python's //
  return static_cast<int>(std::clamp<long long>(workers, 1, std::max(threads, 1)));
}

unsigned usable_cpu_count() {
  unsigned count = std::min(host_cpu_count(), affinity_cpu_count());
  if (const auto limit = cgroup_cpu_limit()) {
    if (*limit < count) count = static_cast<unsigned>(*limit);
  }
  return std::max(count, 1U);
}

}  // namespace sky_async::detail
