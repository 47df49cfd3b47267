// Facts about the machine the runtime sizes itself by.
#pragma once

#include <filesystem>
#include <optional>

namespace sky_async::detail {

// The CPU limit of this process's cgroup in cores (quota / period), read from the
// namespace root as SkyPilot does: cgroup v2 cpu.max when <root>/cgroup.controllers
// exists, else v1 cpu/cpu.cfs_quota_us and cpu.cfs_period_us. std::nullopt when
// there is no limit or the files are missing or unreadable.
std::optional<double> cgroup_cpu_limit(const std::filesystem::path& root = "/sys/fs/cgroup");

// CPUs this process can actually use: online CPUs, narrowed by the affinity mask
// and the cgroup quota (truncated), never less than 1.
unsigned usable_cpu_count();

}  // namespace sky_async::detail
