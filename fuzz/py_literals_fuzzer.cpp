// Python's int()/float() literal rules (src/text/py_literals.hpp) on arbitrary bytes: every
// function returns views into the input and sane values, is_valid_utf8 agrees with an
// independent decoder, and plain decimal literals read as strtod/plain digits read them.
#include "fuzz_support.hpp"

#include "text/py_literals.hpp"

#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <locale.h>

namespace {

using sky_async::detail::py_space;

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool all_digits(std::string_view text, int base) {
  for (const char c : text) {
    const bool decimal = c >= '0' && c <= '9';
    const bool hex = (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!(decimal || (base == 16 && hex))) return false;
  }
  return true;
}

// [+-]?[0-9]+ : int() and float() both read it, as its digits.
bool plain_integer(std::string_view text) {
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) text.remove_prefix(1);
  return !text.empty() && all_digits(text, 10);
}

// [+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)? : what strtod reads in full too.
bool plain_float(std::string_view text) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    return i - start;
  };
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  std::size_t mantissa = digits();
  if (i < text.size() && text[i] == '.') {
    ++i;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == text.size();
}

double c_strtod(const std::string& text) {
  static const locale_t c_locale = ::newlocale(LC_ALL_MASK, "C", locale_t{});
  return ::strtod_l(text.c_str(), nullptr, c_locale);
}

bool same_double(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace d = sky_async::detail;
  const std::string owned(reinterpret_cast<const char*>(data), size);  // NUL-terminated copy
  const std::string_view input(owned);

  FUZZ_CHECK(d::is_valid_utf8(input) == fuzz::decode_utf8(input).has_value());

  for (const auto kind : {py_space::numeric, py_space::str_methods}) {
    const auto stripped = d::strip_py_space(input, kind);
    FUZZ_CHECK(inside(stripped, input));
    FUZZ_CHECK(d::strip_py_space(stripped, kind) == stripped);  // idempotent
  }
  for (const auto field : d::split_py_space(input)) {
    FUZZ_CHECK(!field.empty() && inside(field, input));
    FUZZ_CHECK(d::split_py_space(field).size() == 1);
  }

  std::optional<d::py_int_literal> decimal;
  for (const int base : {10, 16}) {
    const auto literal = d::parse_py_int_literal(input, base);
    if (base == 10) decimal = literal;
    if (!literal) continue;
    FUZZ_CHECK(!literal->digits.empty() && all_digits(literal->digits, base));
    // Every digit comes from the input, in order (underscores, prefix and spaces aside).
    std::size_t from = 0;
    for (const char c : literal->digits) {
      from = input.find(c, from);
      FUZZ_CHECK(from != std::string_view::npos);
      ++from;
    }
  }
  const auto value = d::parse_py_float(input);

  if (plain_integer(input)) {
    FUZZ_CHECK(decimal.has_value());
    FUZZ_CHECK(decimal->negative == (input[0] == '-'));
    FUZZ_CHECK(decimal->digits == input.substr(input[0] == '+' || input[0] == '-' ? 1 : 0));
  }
  if (decimal) {
    // Any int() literal in base 10 is also a float() literal with the same value.
    FUZZ_CHECK(value.has_value());
    const double expected = c_strtod((decimal->negative ? "-" : "") + decimal->digits);
    FUZZ_CHECK(same_double(*value, expected));
  }
  if (plain_float(input)) {
    FUZZ_CHECK(value.has_value() && same_double(*value, c_strtod(owned)));
  }
  return 0;
}
