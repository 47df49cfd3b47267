#include "process/proc_stat.hpp"

#include <charconv>

namespace sky_async::detail {

std::optional<proc_stat> parse_proc_stat(std::string_view text) noexcept {
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  // After ") ": field 3 (state), then fields 4..22 separated by single spaces.
  std::string_view rest = text.substr(close + 1);
  if (rest.size() < 2 || rest[0] != ' ') return std::nullopt;
  proc_stat stat;
  stat.state = rest[1];
  rest.remove_prefix(2);
  for (int field = 4; field <= 22; ++field) {
    if (rest.empty() || rest[0] != ' ') return std::nullopt;
    rest.remove_prefix(1);
    const std::size_t end = rest.find(' ');
    const std::string_view value = rest.substr(0, end);
    if (field == 22) {
      const auto [last, ec] = std::from_chars(value.data(), value.data() + value.size(), stat.start_time);
      if (ec != std::errc() || last != value.data() + value.size()) return std::nullopt;
      return stat;
    }
    if (end == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(end);
  }
  return std::nullopt;
}

}  // namespace sky_async::detail
