#include "text/py_literals.hpp"

#include <cerrno>
#include <clocale>
#include <cmath>
#include <cstdlib>

#include <clocale>

namespace sky_async::detail {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_digit_in(char c, int base) noexcept {
  const int value = hex_value(c);
  return value >= 0 && value < base;
}

// Py_UNICODE_ISSPACE, less U+001C..U+001F for int() and float(): those convert only
// non-ASCII whitespace to a space, then strip with the ASCII-only Py_ISSPACE.
bool is_py_space(char32_t c, py_space kind) noexcept {
  if (c == ' ' || (c >= 0x09 && c <= 0x0d)) return true;
  if (c >= 0x1c && c <= 0x1f) return kind == py_space::str_methods;
  return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
         c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// Length of the UTF-8 sequence starting at text[i] and its code point, or 0 when it
// is malformed.
std::size_t decode_utf8(std::string_view text, std::size_t i, char32_t& out) noexcept {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    out = lead;
    return 1;
  }
  std::size_t length;
  char32_t value;
  char32_t minimum;
  if ((lead & 0xe0) == 0xc0) {
    length = 2, value = lead & 0x1f, minimum = 0x80;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3, value = lead & 0x0f, minimum = 0x800;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4, value = lead & 0x07, minimum = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    value = (value << 6) | (byte(i + k) & 0x3f);
  }
  if (value < minimum || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return 0;
  out = value;
  return length;
}

// The code point that ends at text[end - 1], and its length; 0 when malformed.
std::size_t decode_utf8_backwards(std::string_view text, std::size_t end, char32_t& out) noexcept {
  std::size_t start = end;
  while (start > 0 && end - start < 4) {
    --start;
    if ((static_cast<unsigned char>(text[start]) & 0xc0) != 0x80) break;
  }
  const std::size_t length = decode_utf8(text, start, out);
  return start + length == end ? length : 0;
}

// Digits of `base` with single underscores between them, starting at text[i]; returns
// the index after them (i when there are none) and appends the digits to `digits`.
// `ok` turns false on a misplaced underscore.
std::size_t scan_digits(std::string_view text, std::size_t i, int base, std::string& digits, bool& ok) {
  const std::size_t start = i;
  while (i < text.size()) {
    if (is_digit_in(text[i], base)) {
      digits += text[i++];
    } else if (text[i] == '_' && i > start && i + 1 < text.size() && is_digit_in(text[i + 1], base)) {
      ++i;
    } else {
      break;
    }
  }
  if (i < text.size() && text[i] == '_') ok = false;
  return i;
}

bool equals_ignoring_case(std::string_view text, std::string_view lower) noexcept {
  if (text.size() != lower.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view strip_py_space(std::string_view text, py_space kind) {
  char32_t c = 0;
  while (!text.empty()) {
    const std::size_t length = decode_utf8(text, 0, c);
    if (length == 0 || !is_py_space(c, kind)) break;
    text.remove_prefix(length);
  }
  while (!text.empty()) {
    const std::size_t length = decode_utf8_backwards(text, text.size(), c);
    if (length == 0 || !is_py_space(c, kind)) break;
    text.remove_suffix(length);
  }
  return text;
}

std::vector<std::string_view> split_py_space(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  std::size_t field_start = std::string_view::npos;
  while (i < text.size()) {
    char32_t c = 0;
    std::size_t length = decode_utf8(text, i, c);
    const bool space = length != 0 && is_py_space(c, py_space::str_methods);
    if (length == 0) length = 1;  // a stray byte is part of a field
    if (space) {
      if (field_start != std::string_view::npos) fields.push_back(text.substr(field_start, i - field_start));
      field_start = std::string_view::npos;
    } else if (field_start == std::string_view::npos) {
      field_start = i;
    }
    i += length;
  }
  if (field_start != std::string_view::npos) fields.push_back(text.substr(field_start));
  return fields;
}

std::optional<py_int_literal> parse_py_int_literal(std::string_view text, int base) {
  text = strip_py_space(text, py_space::numeric);
  py_int_literal literal;
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) literal.negative = text[i++] == '-';
  if (base == 16 && i + 1 < text.size() && text[i] == '0' && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
    i += 2;
    if (i < text.size() && text[i] == '_') ++i;  // "0x_ff" is allowed
  }
  bool ok = true;
  i = scan_digits(text, i, base, literal.digits, ok);
  if (!ok || literal.digits.empty() || i != text.size()) return std::nullopt;
  return literal;
}

std::optional<double> parse_py_float(std::string_view text) {
  text = strip_py_space(text, py_space::numeric);
  std::string plain;  // sign, digits, '.', 'e': what strtod reads
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) plain += text[i++];
  const std::string_view rest = text.substr(i);
  if (equals_ignoring_case(rest, "inf") || equals_ignoring_case(rest, "infinity")) {
    return plain == "-" ? -HUGE_VAL : HUGE_VAL;
  }
  if (equals_ignoring_case(rest, "nan")) return plain == "-" ? -std::nan("") : std::nan("");
  bool ok = true;
  std::string integer, fraction, exponent;
  i = scan_digits(text, i, 10, integer, ok);
  if (ok && i < text.size() && text[i] == '.') {
    i = scan_digits(text, i + 1, 10, fraction, ok);
  }
  if (!ok || (integer.empty() && fraction.empty())) return std::nullopt;
  std::string exponent_sign;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) exponent_sign = text[i++];
    i = scan_digits(text, i, 10, exponent, ok);
    if (!ok || exponent.empty()) return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  plain += integer.empty() ? "0" : integer;
  if (!fraction.empty()) plain += "." + fraction;
  if (!exponent.empty()) plain += "e" + exponent_sign + exponent;
  // strtod in the "C" locale (the process's LC_NUMERIC may use a decimal comma): correctly
  // rounded, and on overflow or underflow it returns +-HUGE_VAL or the (signed) nearest
  // subnormal or zero, as Python does; ERANGE is therefore not an error here.
  static const locale_t c_locale = ::newlocale(LC_ALL_MASK, "C", locale_t{});
  return ::strtod_l(plain.c_str(), nullptr, c_locale);
}

bool is_valid_utf8(std::string_view text) noexcept {
  char32_t c = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = decode_utf8(text, i, c);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

}  // namespace sky_async::detail
