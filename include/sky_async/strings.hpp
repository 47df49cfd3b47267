// SkyPilot's pure string helpers (sky/utils/common_utils.py), with SkyPilot's exact
// results: base36_encode, format_float and truncate_long_string.
#pragma once

#include <concepts>
#include <string>
#include <string_view>
#include <type_traits>

namespace sky_async {

// `hex` parsed as Python's int(hex, 16) parses it (surrounding whitespace, a sign, a
// 0x/0X prefix, single underscores between digits; any length), re-encoded in base 36
// with the digits 0-9a-z, most significant first; "0" for zero.
// Throws std::invalid_argument for an invalid literal, for non-ASCII digits (which
// Python accepts) and for a negative value (a deliberate deviation: SkyPilot loops
// forever on one).
std::string base36_encode(std::string_view hex);

// Python's str() of an integer; `precision` is ignored, as in SkyPilot (a bool gives
// "True"/"False", as Python's bool does).
template <std::integral Integer>
std::string format_float(Integer num, [[maybe_unused]] int precision = 1) {
  if constexpr (std::is_same_v<Integer, bool>) {
    return num ? "True" : "False";
  } else {
    return std::to_string(num);
  }
}

// An integral value as all its digits without a decimal point (1e300 prints its 301
// digits, -0.0 prints "-0"); any other value with exactly `precision` digits after the
// point, correctly rounded from the exact binary value (ties to even); "inf", "-inf",
// "nan". Never an exponent, separators or suffixes. The integral test comes before
// rounding: 0.96 gives "1.0" but 1.0 gives "1".
// Throws std::invalid_argument for a negative precision with a non-integral value.
std::string format_float(double num, int precision = 1);

// `utf8` shortened to about `max_length` code points, marking the cut with "...", as
// SkyPilot does: unchanged when it fits; in middle mode the head and tail around
// "..." (exactly max_length code points, "..." alone when max_length <= 3); else cut
// at a word boundary (words split on single spaces) when that keeps at least
// max_length code points, otherwise after max_length code points, then "..." is
// appended (so the result is usually max_length + 3 long, and can be longer). A
// negative max_length slices from the end, as Python's slices do.
// Throws std::invalid_argument when `utf8` is not valid UTF-8 (no Python str encodes
// to such bytes).
std::string truncate_long_string(std::string_view utf8, long long max_length = 35,
                                 bool truncate_middle = false);

}  // namespace sky_async
