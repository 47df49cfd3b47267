// parse_proc_stat on arbitrary text: no crash, and the same answer as a reference that
// follows proc(5) literally (fields after the last ')', split on single spaces).
#include "fuzz_support.hpp"

#include "process/proc_stat.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::optional<sky_async::detail::proc_stat> reference(std::string_view text) {
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  const std::string_view rest = text.substr(close + 1);
  // ") S 4 5 ... 22 ...": the state is the one character after ") ".
  if (rest.size() < 2 || rest[0] != ' ') return std::nullopt;
  sky_async::detail::proc_stat stat;
  stat.state = rest[1];
  // The pieces of rest[2:].split(' '): pieces[0] is the empty one before field 4's
  // space (or field 3's tail when the state is followed by more than one character).
  std::vector<std::string_view> pieces;
  std::string_view tail = rest.substr(2);
  for (;;) {
    const auto space = tail.find(' ');
    pieces.push_back(tail.substr(0, space));
    if (space == std::string_view::npos) break;
    tail.remove_prefix(space + 1);
  }
  if (!pieces[0].empty() || pieces.size() < 20) return std::nullopt;
  const std::string_view field22 = pieces[19];
  if (field22.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : field22) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  stat.start_time = value;
  return stat;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = sky_async::detail::parse_proc_stat(text);
  const auto expected = reference(text);
  FUZZ_CHECK(parsed.has_value() == expected.has_value());
  if (parsed) {
    FUZZ_CHECK(parsed->state == expected->state);
    FUZZ_CHECK(parsed->start_time == expected->start_time);
  }
  return 0;
}
