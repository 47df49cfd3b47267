// Python's text-to-number rules, for the places where SkyPilot feeds text to int() or
// float() (environment variables, cgroup files, base36_encode's input) and sky_async
// must accept and reject exactly what Python does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sky_async::detail {

// Which characters count as whitespace: int() and float() strip ASCII \t\n\v\f\r and
// space plus the non-ASCII Unicode spaces; str.strip() and str.split() also treat
// U+001C..U+001F as whitespace.
enum class py_space { numeric, str_methods };

// `text` (UTF-8) without leading and trailing whitespace.
std::string_view strip_py_space(std::string_view text, py_space kind);

// str.split() with no argument: the non-empty runs between whitespace.
std::vector<std::string_view> split_py_space(std::string_view text);

// An integer literal as int(text, base) reads it (base 10 or 16): surrounding
// whitespace, a sign, for base 16 an optional 0x/0X prefix (which one underscore may
// follow), and single underscores between digits. `digits` holds the digits only
// (ASCII, no underscores). Non-ASCII digits, which Python also accepts, are rejected.
struct py_int_literal {
  bool negative = false;
  std::string digits;
};
std::optional<py_int_literal> parse_py_int_literal(std::string_view text, int base);

// float(text): surrounding whitespace, a sign, inf/infinity/nan in any case, decimal
// digits with single underscores between them, an optional fraction and exponent;
// correctly rounded, overflowing to +-inf and underflowing to (signed) zero as Python
// does. Non-ASCII digits are rejected.
std::optional<double> parse_py_float(std::string_view text);

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or values above
// U+10FFFF), which is what a Python str encodes to.
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace sky_async::detail
