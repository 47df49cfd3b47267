// SkyPilot's resource-sizing helpers (sky/utils/common_utils.py, subprocess_utils.py)
// with SkyPilot's formulas, environment overrides and cgroup reading, and its port
// probe. The ones that list directories or probe ports also come as asynchronous
// operations that run on a runtime worker.
//
// One deliberate difference from SkyPilot: a cgroup CPU quota or period that is not a
// positive finite number means "no limit", for cgroup v1 and v2 alike (SkyPilot raises
// ZeroDivisionError for a v2 period of 0; sky_async.compat keeps that).
#pragma once

#include <sky_async/detail/async_operation.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sky_async {

// CPUs this process may use. SKYPILOT_POD_CPU_CORE_LIMIT when set (Python float syntax,
// truncated toward zero, not clamped: "2.9" gives 2, "-3" gives -3); otherwise the
// online CPUs narrowed by the affinity mask and the cgroup quota, truncated, so a
// 0.5-core quota gives 0 as in SkyPilot.
// Throws std::invalid_argument ("Failed to parse the number of CPUs from ...") for an
// unparseable value or NaN, std::overflow_error for one outside the int range.
int get_cpu_count();

// Memory in GiB (SkyPilot calls it GB): SKYPILOT_POD_MEMORY_GB_LIMIT as is, else
// SKYPILOT_POD_MEMORY_BYTES_LIMIT / 2^30, else total RAM capped by the cgroup limit.
// Throws std::invalid_argument ("Failed to parse the memory size from ... (GB)" or
// "(bytes)") for an unparseable value.
double get_mem_size_gb();

// Threads for per-node work: max(4, online CPUs - 1), times 4 when `cloud` is
// "kubernetes" in any case (as Python's str.lower() compares it). The online CPU count
// is the host's, not cgroup-aware, as in SkyPilot.
int get_parallel_threads(std::optional<std::string_view> cloud = std::nullopt);

// Descriptors one rsync of `path` is budgeted: 5 per top-level entry of a directory
// (symlinks followed, hidden entries counted, no recursion), and never less than 5;
// anything that is not a directory (or cannot be stat'ed) gets 5. Blocks the calling
// thread for the listing; throws std::filesystem::filesystem_error naming the path
// when the directory cannot be listed.
long long estimate_fd_for_directory(const std::filesystem::path& path);

// Workers for syncing file mounts from these local sources: the soft RLIMIT_NOFILE less
// 100, floor-divided by the largest estimate_fd_for_directory() of the sources (at
// least 5), then between 1 and get_parallel_threads(cloud). An unlimited soft limit
// counts as -1, hence 1 worker, as in SkyPilot. Sources that are not local directories
// (cloud URLs, files) contribute nothing. Blocks the calling thread; throws
// std::filesystem::filesystem_error for the first source that cannot be listed. Unlike
// SkyPilot it logs nothing (the Python layer emits SkyPilot's low-limit warning).
int get_max_workers_for_file_mounts(const std::vector<std::filesystem::path>& sources,
                                    std::optional<std::string_view> cloud = std::nullopt);

// The first TCP port from `start_port` up to 65534 (65535 is never tried) that binds on
// every IPv4 interface without SO_REUSEADDR; the port is released before returning, so
// another process may take it first. start_port 0 returns 0.
// Throws std::invalid_argument for a negative start_port, std::system_error with
// std::errc::address_in_use when no port is free (or start_port >= 65535), and
// std::system_error with the errno when a socket cannot be created.
int find_free_port(int start_port);

// What the asynchronous forms complete with: the value, or the error and the path it
// concerns (empty for find_free_port).
template <typename T>
struct system_result {
  T value{};
  std::error_code error;
  std::filesystem::path path;
  bool ok() const noexcept { return !error; }
};

namespace detail {
template <typename T>
using system_operation = basic_operation<system_result<T>>;

std::shared_ptr<system_operation<long long>> make_fd_estimate_operation(runtime& rt,
                                                                        std::filesystem::path path);
std::shared_ptr<system_operation<int>> make_max_workers_operation(runtime& rt,
                                                                  std::vector<std::filesystem::path> sources,
                                                                  std::optional<std::string> cloud);
// Throws std::invalid_argument for a negative start_port.
std::shared_ptr<system_operation<int>> make_free_port_operation(runtime& rt, int start_port);
}  // namespace detail

// The same operations on a runtime worker, with any completion token. Completion
// signature: void(boost::system::error_code, system_result<T>); the error_code is
// operation_aborted when cancelled through the token's cancellation slot (checked
// between directory entries and between ports). Failures are in the result.
template <typename CompletionToken>
auto async_estimate_fd_for_directory(runtime& rt, std::filesystem::path path, CompletionToken&& token) {
  return detail::async_run<system_result<long long>>(
      [&rt, path = std::move(path)]() mutable {
        return detail::make_fd_estimate_operation(rt, std::move(path));
      },
      std::forward<CompletionToken>(token));
}

template <typename CompletionToken>
auto async_get_max_workers_for_file_mounts(runtime& rt, std::vector<std::filesystem::path> sources,
                                           std::optional<std::string> cloud, CompletionToken&& token) {
  return detail::async_run<system_result<int>>(
      [&rt, sources = std::move(sources), cloud = std::move(cloud)]() mutable {
        return detail::make_max_workers_operation(rt, std::move(sources), std::move(cloud));
      },
      std::forward<CompletionToken>(token));
}

template <typename CompletionToken>
auto async_find_free_port(runtime& rt, int start_port, CompletionToken&& token) {
  return detail::async_run<system_result<int>>(
      [&rt, start_port] { return detail::make_free_port_operation(rt, start_port); },
      std::forward<CompletionToken>(token));
}

// Coroutine forms (pass runtime::global() for the process-wide runtime): they throw
// what the blocking forms throw.
boost::asio::awaitable<long long> estimate_fd_for_directory(runtime& rt, std::filesystem::path path);
boost::asio::awaitable<int> get_max_workers_for_file_mounts(runtime& rt,
                                                            std::vector<std::filesystem::path> sources,
                                                            std::optional<std::string> cloud = std::nullopt);
boost::asio::awaitable<int> find_free_port(runtime& rt, int start_port);

}  // namespace sky_async
