#include "system_info.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include <sched.h>
#include <unistd.h>

namespace sky_async::detail {
namespace {

std::optional<std::string> read_trimmed(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return std::string();
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::optional<double> parse_double(const std::string& text) {
  try {
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    if (used != text.size()) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::optional<double> cgroup_cpu_limit(const std::filesystem::path& root) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(root / "cgroup.controllers", ec)) {
    const auto text = read_trimmed(root / "cpu.max");
    if (!text) return std::nullopt;
    std::istringstream fields(*text);
    std::string quota, period, extra;
    if (!(fields >> quota >> period) || (fields >> extra) || quota == "max") return std::nullopt;
    const auto q = parse_double(quota);
    const auto p = parse_double(period);
    if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;
    return *q / *p;
  }
  const auto quota = read_trimmed(root / "cpu" / "cpu.cfs_quota_us");
  const auto period = read_trimmed(root / "cpu" / "cpu.cfs_period_us");
  if (!quota || !period) return std::nullopt;
  const auto q = parse_double(*quota);
  const auto p = parse_double(*period);
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;
  return *q / *p;
}

unsigned usable_cpu_count() {
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  unsigned count = online > 0 ? static_cast<unsigned>(online) : 1U;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    count = std::min(count, static_cast<unsigned>(CPU_COUNT(&set)));
  }
  if (const auto limit = cgroup_cpu_limit()) {
    count = std::min(count, static_cast<unsigned>(*limit));
  }
  return std::max(count, 1U);
}

}  // namespace sky_async::detail
