// Facts about the machine and this process: what the runtime sizes itself by, and the
// pieces of SkyPilot's sizing helpers (include/sky_async/system.hpp) with the cgroup
// root injectable, so that tests can point them at fixture trees.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sky_async::detail {

inline constexpr std::string_view default_cgroup_root = "/sys/fs/cgroup";

// How a CPU quota that is not a pair of positive finite numbers is read.
enum class cgroup_rules {
  // sky_async's rule, the same for cgroup v1 and v2 (and in sky_async.system): a quota
  // or period that is not a positive finite number means no limit.
  sky_async,
  // SkyPilot's, for sky_async.compat: v1 as above; v2 divides whatever period it finds
  // by a positive quota, so a period of 0 raises (cgroup_zero_period, Python's
  // ZeroDivisionError) and a negative one gives a negative limit.
  skypilot,
};

// SkyPilot's v2 "quota / 0".
class cgroup_zero_period : public std::domain_error {
 public:
  cgroup_zero_period() : std::domain_error("float division by zero") {}
};

// The CPU limit of this process's cgroup in cores (quota / period), read from the
// namespace root as SkyPilot does: cgroup v2 cpu.max when <root>/cgroup.controllers is
// a regular file, else v1 cpu/cpu.cfs_quota_us and cpu/cpu.cfs_period_us. std::nullopt
// when there is no limit ("max", -1) or the files are missing, unreadable or garbage.
std::optional<double> cgroup_cpu_limit(const std::filesystem::path& root = default_cgroup_root,
                                       cgroup_rules rules = cgroup_rules::sky_async);

// The memory limit in bytes: v2 memory.max or v1 memory/memory.limit_in_bytes, a
// decimal integer as Python's int() reads it; std::nullopt for "max", empty, garbage,
// a value <= 0, or missing files. (The v1 "unlimited" value, about 9.2e18, is returned
// as a limit and loses the minimum with the host's memory, as in SkyPilot.)
std::optional<std::uint64_t> cgroup_memory_limit(const std::filesystem::path& root = default_cgroup_root);

// The parsers behind the two above, on the files' contents (pure, for tests and fuzzers):
// cpu.max; cpu.cfs_quota_us and cpu.cfs_period_us; memory.max or memory.limit_in_bytes.
// With cgroup_rules::sky_async a CPU limit is finite and >= 0 (0 only by underflow).
// With skypilot's, v1 gives a value >= 0, +inf or NaN (inf / inf, as Python's float
// division gives) and v2 any quotient, or throws cgroup_zero_period. A memory limit is
// at least 1.
std::optional<double> parse_cgroup_v2_cpu_max(std::string_view text, cgroup_rules rules);
std::optional<double> parse_cgroup_v1_cpu(std::string_view quota_text, std::string_view period_text,
                                          cgroup_rules rules);
std::optional<std::uint64_t> parse_cgroup_memory_limit(std::string_view text);

// Read once per process (and again in a child after fork()).
unsigned host_cpu_count() noexcept;          // online CPUs (os.cpu_count()); at least 1
std::uint64_t host_memory_bytes() noexcept;  // total RAM (psutil's total, /proc/meminfo's MemTotal)

// CPUs in this thread's affinity mask (at least 1).
unsigned affinity_cpu_count() noexcept;

// The soft RLIMIT_NOFILE, -1 when unlimited (as Python's resource module reports it).
long long fd_soft_limit() noexcept;

// get_cpu_count() and get_mem_size_gb() with their cgroup root.
int cpu_count(const std::filesystem::path& root, cgroup_rules rules = cgroup_rules::sky_async);
double mem_size_gb(const std::filesystem::path& root);

// SkyPilot's file-mount worker formula: (fd_limit - 100) // fd_per_rsync (floor
// division), between 1 and `threads`.
int max_workers_for(long long fd_limit, long long fd_per_rsync, int threads) noexcept;

// CPUs this process can actually use, for sizing the runtime: online CPUs narrowed by
// the affinity mask and the cgroup quota (truncated), never less than 1. Ignores the
// SKYPILOT_* variables.
unsigned usable_cpu_count();

}  // namespace sky_async::detail
