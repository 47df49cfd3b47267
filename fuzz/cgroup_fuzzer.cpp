// The cgroup file parsers behind get_cpu_count() and get_mem_size_gb() on arbitrary
// file contents: no crash, no exception but SkyPilot's v2 zero period, results in
// their documented ranges, the two rule sets agreeing wherever sky_async's finds a
// limit, and plain decimal contents read as their plain value.
#include "fuzz_support.hpp"

#include "system/system_info.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using sky_async::detail::cgroup_rules;

// The text without surrounding ASCII spaces/newlines when the rest is 1-18 decimal
// digits (so that it fits an int64 and a double holds it exactly); else -1.
long long plain_number(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\n");
  if (first == std::string_view::npos) return -1;
  text = text.substr(first, text.find_last_not_of(" \t\n") - first + 1);
  if (text.empty() || text.size() > 15) return -1;
  long long value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace d = sky_async::detail;
  FuzzedDataProvider provider(data, size);
  const std::string first = provider.ConsumeRandomLengthString(256);
  const std::string second = provider.ConsumeRemainingBytesAsString();

  // cgroup v2 cpu.max: "<quota|max> <period>". The whole input is one file here.
  const std::string cpu_max = first + second;
  const auto v2 = d::parse_cgroup_v2_cpu_max(cpu_max, cgroup_rules::sky_async);
  if (v2) FUZZ_CHECK(std::isfinite(*v2) && *v2 >= 0);
  std::optional<double> v2_skypilot;
  bool zero_period = false;
  try {
    v2_skypilot = d::parse_cgroup_v2_cpu_max(cpu_max, cgroup_rules::skypilot);
  } catch (const d::cgroup_zero_period&) {
    zero_period = true;
  }
  if (v2) FUZZ_CHECK(!zero_period && v2_skypilot && *v2_skypilot == *v2);
  {
    // "Q P" with plain positive numbers is the limit Q / P.
    const auto space = cpu_max.find(' ');
    if (space != std::string::npos) {
      const long long quota = plain_number(std::string_view(cpu_max).substr(0, space));
      const long long period = plain_number(std::string_view(cpu_max).substr(space + 1));
      if (quota > 0 && period > 0 && cpu_max.find(' ', space + 1) == std::string::npos) {
        FUZZ_CHECK(v2 && *v2 == static_cast<double>(quota) / static_cast<double>(period));
      }
    }
  }

  // cgroup v1: cpu.cfs_quota_us and cpu.cfs_period_us.
  const auto v1 = d::parse_cgroup_v1_cpu(first, second, cgroup_rules::sky_async);
  const auto v1_skypilot = d::parse_cgroup_v1_cpu(first, second, cgroup_rules::skypilot);
  if (v1) FUZZ_CHECK(std::isfinite(*v1) && *v1 >= 0 && v1_skypilot && *v1_skypilot == *v1);
  // Both positive: the quotient is >= 0, +inf, or NaN for inf / inf (as in Python).
  if (v1_skypilot) FUZZ_CHECK(!(*v1_skypilot < 0));
  {
    const long long quota = plain_number(first);
    const long long period = plain_number(second);
    if (quota > 0 && period > 0) {
      FUZZ_CHECK(v1 && *v1 == static_cast<double>(quota) / static_cast<double>(period));
    } else if (quota >= 0 && period >= 0 && (quota == 0 || period == 0)) {
      FUZZ_CHECK(!v1 && !v1_skypilot);
    }
  }

  // memory.max / memory.limit_in_bytes.
  for (const std::string* file : {&first, &second, &cpu_max}) {
    const auto memory = d::parse_cgroup_memory_limit(*file);
    if (memory) FUZZ_CHECK(*memory >= 1);
    const long long plain = plain_number(*file);
    if (plain == 0) FUZZ_CHECK(!memory);
    if (plain > 0) FUZZ_CHECK(memory && *memory == static_cast<std::uint64_t>(plain));
  }
  return 0;
}
