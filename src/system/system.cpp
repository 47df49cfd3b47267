#include <sky_async/system.hpp>

#include "core/worker_job.hpp"
#include "system/system_info.hpp"

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sky_async {

namespace {

constexpr long long fds_per_entry = 5;
constexpr int port_limit = 65535;  // exclusive: SkyPilot never tries 65535
// A cancelled listing stops within this many entries.
constexpr long long entries_between_checks = 1024;

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

bool is_kubernetes(std::string_view cloud) noexcept {
  // Python's str.lower(): ASCII letters, and the Kelvin sign U+212A, which lower-cases to 'k'.
  constexpr std::string_view kelvin_sign = "\xe2\x84\xaa";
  if (cloud.substr(0, kelvin_sign.size()) == kelvin_sign) {
    cloud.remove_prefix(kelvin_sign.size());
  } else if (!cloud.empty() && (cloud[0] == 'k' || cloud[0] == 'K')) {
    cloud.remove_prefix(1);
  } else {
    return false;
  }
  constexpr std::string_view rest = "ubernetes";
  return cloud.size() == rest.size() &&
         std::equal(rest.begin(), rest.end(), cloud.begin(),
                    [](char want, char c) { return c == want || c == want - 'a' + 'A'; });
}

system_result<long long> estimate_fds(const std::filesystem::path& path, const std::atomic<bool>* cancelled) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return {fds_per_entry, {}, {}};
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return {0, last_error(), path};
  long long entries = 0;
  std::error_code error;
  for (;;) {
    errno = 0;
    // readdir is safe on a stream no other thread uses; readdir_r is deprecated in glibc.
    // cppcheck-suppress readdirCalled
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      if (errno != 0) error = last_error();
      break;
    }
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (++entries % entries_between_checks == 0 && cancelled && cancelled->load(std::memory_order_relaxed))
      break;
  }
  ::closedir(dir);
  if (error) return {0, error, path};
  return {std::max(fds_per_entry, fds_per_entry * entries), {}, {}};
}

system_result<int> max_workers(const std::vector<std::filesystem::path>& sources,
                               std::optional<std::string_view> cloud, const std::atomic<bool>* cancelled) {
  const long long fd_limit = detail::fd_soft_limit();
  long long fd_per_rsync = fds_per_entry;
  for (const auto& source : sources) {
    if (cancelled && cancelled->load(std::memory_order_relaxed)) return {};
    auto estimate = estimate_fds(source, cancelled);
    if (!estimate.ok()) return {0, estimate.error, std::move(estimate.path)};
    fd_per_rsync = std::max(fd_per_rsync, estimate.value);
  }
  return {detail::max_workers_for(fd_limit, fd_per_rsync, get_parallel_threads(cloud)), {}, {}};
}

void check_start_port(int start_port) {
  if (start_port < 0) {
    throw std::invalid_argument("find_free_port: start_port must be 0 or more, got " +
                                std::to_string(start_port));
  }
}

system_result<int> free_port(int start_port, const std::atomic<bool>* cancelled) {
  for (int port = start_port; port < port_limit; ++port) {
    if (cancelled && cancelled->load(std::memory_order_relaxed)) return {};
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {0, last_error(), {}};
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    ::close(fd);
    if (rc == 0) return {port, {}, {}};
  }
  return {0, std::make_error_code(std::errc::address_in_use), {}};
}

std::string no_free_port_message(int start_port) {
  return "No free ports available from " + std::to_string(start_port) + " to " +
         std::to_string(port_limit - 1);
}

template <typename T>
T value_or_throw(system_result<T> result, const char* what) {
  if (result.ok()) return result.value;
  throw std::filesystem::filesystem_error(what, result.path, result.error);
}

int port_or_throw(const system_result<int>& result, int start_port) {
  if (result.ok()) return result.value;
  if (result.error == std::errc::address_in_use)
    throw std::system_error(result.error, no_free_port_message(start_port));
  throw std::system_error(result.error, "find_free_port: socket");
}

}  // namespace

int get_cpu_count() { return detail::cpu_count(detail::default_cgroup_root); }

double get_mem_size_gb() { return detail::mem_size_gb(detail::default_cgroup_root); }

int get_parallel_threads(std::optional<std::string_view> cloud) {
  const int cpus = static_cast<int>(detail::host_cpu_count());
  const int multiplier = cloud && is_kubernetes(*cloud) ? 4 : 1;
  return std::max(4, cpus - 1) * multiplier;
}

long long estimate_fd_for_directory(const std::filesystem::path& path) {
  return value_or_throw(estimate_fds(path, nullptr), "estimate_fd_for_directory");
}

int get_max_workers_for_file_mounts(const std::vector<std::filesystem::path>& sources,
                                    std::optional<std::string_view> cloud) {
  return value_or_throw(max_workers(sources, cloud, nullptr), "get_max_workers_for_file_mounts");
}

int find_free_port(int start_port) {
  check_start_port(start_port);
  return port_or_throw(free_port(start_port, nullptr), start_port);
}

namespace detail {

std::shared_ptr<system_operation<long long>> make_fd_estimate_operation(runtime& rt,
                                                                        std::filesystem::path path) {
  return std::make_shared<worker_job<system_result<long long>>>(
      detail::impl_of(rt), [path = std::move(path)](const std::atomic<bool>& cancelled) {
        return estimate_fds(path, &cancelled);
      });
}

std::shared_ptr<system_operation<int>> make_max_workers_operation(runtime& rt,
                                                                  std::vector<std::filesystem::path> sources,
                                                                  std::optional<std::string> cloud) {
  return std::make_shared<worker_job<system_result<int>>>(
      detail::impl_of(rt),
      [sources = std::move(sources), cloud = std::move(cloud)](const std::atomic<bool>& cancelled) {
        return max_workers(sources, cloud, &cancelled);
      });
}

std::shared_ptr<system_operation<int>> make_free_port_operation(runtime& rt, int start_port) {
  check_start_port(start_port);
  return std::make_shared<worker_job<system_result<int>>>(
      detail::impl_of(rt),
      [start_port](const std::atomic<bool>& cancelled) { return free_port(start_port, &cancelled); });
}

}  // namespace detail

boost::asio::awaitable<long long> estimate_fd_for_directory(runtime& rt, std::filesystem::path path) {
  auto result = co_await async_estimate_fd_for_directory(rt, std::move(path), boost::asio::use_awaitable);
  co_return value_or_throw(std::move(result), "estimate_fd_for_directory");
}

boost::asio::awaitable<int> get_max_workers_for_file_mounts(runtime& rt,
                                                            std::vector<std::filesystem::path> sources,
                                                            std::optional<std::string> cloud) {
  auto result = co_await async_get_max_workers_for_file_mounts(rt, std::move(sources), std::move(cloud),
                                                               boost::asio::use_awaitable);
  co_return value_or_throw(std::move(result), "get_max_workers_for_file_mounts");
}

boost::asio::awaitable<int> find_free_port(runtime& rt, int start_port) {
  auto result = co_await async_find_free_port(rt, start_port, boost::asio::use_awaitable);
  co_return port_or_throw(result, start_port);
}

}  // namespace sky_async
