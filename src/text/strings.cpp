#include <sky_async/strings.hpp>

#include "text/py_literals.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace sky_async {

namespace {

constexpr char base36_digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

int hex_digit_value(char c) noexcept {
  if (c <= '9') return c - '0';
  return (c | 0x20) - 'a' + 10;
}

}  // namespace

std::string base36_encode(std::string_view hex) {
  const auto literal = detail::parse_py_int_literal(hex, 16);
  if (!literal) {
    throw std::invalid_argument("invalid literal for int() with base 16: '" + std::string(hex) + "'");
  }
  const std::string& digits = literal->digits;
  const auto first = digits.find_first_not_of('0');
  if (first == std::string::npos) return "0";  // also "-0", which is zero
  if (literal->negative) {
    throw std::invalid_argument("base36_encode needs a non-negative value, got '" + std::string(hex) + "'");
  }
  // The value as 32-bit limbs, least significant first: 8 hex digits per limb.
  std::vector<std::uint32_t> limbs;
  limbs.reserve((digits.size() - first) / 8 + 1);
  for (std::size_t end = digits.size(); end > first;) {
    const std::size_t begin = end - std::min<std::size_t>(8, end - first);
    std::uint32_t limb = 0;
    for (std::size_t i = begin; i < end; ++i)
      limb = (limb << 4) | static_cast<std::uint32_t>(hex_digit_value(digits[i]));
    limbs.push_back(limb);
    end = begin;
  }
  // Repeated division by 36^6 (the largest power of 36 below 2^32) yields six base-36
  // digits per pass over the limbs.
  constexpr std::uint32_t chunk_divisor = 36u * 36u * 36u * 36u * 36u * 36u;
  std::string out;
  while (!limbs.empty()) {
    std::uint64_t remainder = 0;
    for (std::size_t i = limbs.size(); i-- > 0;) {
      const std::uint64_t current = (remainder << 32) | limbs[i];
      limbs[i] = static_cast<std::uint32_t>(current / chunk_divisor);
      remainder = current % chunk_divisor;
    }
    while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
    for (int k = 0; k < 6 && (remainder != 0 || !limbs.empty()); ++k) {
      out += base36_digits[remainder % 36];
      remainder /= 36;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::string format_float(double num, int precision) {
  const bool integral = std::isfinite(num) && std::trunc(num) == num;
  if (integral) precision = 0;
  if (precision < 0) {
    // Python's format() rejects the spec ".-1f" before looking at the value.
    throw std::invalid_argument("format_float: precision must be non-negative, got " +
                                std::to_string(precision));
  }
  if (std::isnan(num)) return "nan";  // Python drops the sign of a NaN here
  if (std::isinf(num)) return num < 0 ? "-inf" : "inf";
  // The largest finite double has 309 integer digits.
  std::string out(static_cast<std::size_t>(precision) + 320, '\0');
  const auto result =
      std::to_chars(out.data(), out.data() + out.size(), num, std::chars_format::fixed, precision);
  out.resize(static_cast<std::size_t>(result.ptr - out.data()));
  return out;
}

std::string truncate_long_string(std::string_view utf8, long long max_length, bool truncate_middle) {
  if (!detail::is_valid_utf8(utf8))
    throw std::invalid_argument("truncate_long_string: the text is not valid UTF-8");
  // Where each code point starts (and the end), so that lengths and slices are in code
  // points as in Python; plain ASCII needs no table.
  const bool ascii =
      std::all_of(utf8.begin(), utf8.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  std::vector<std::size_t> starts;
  if (!ascii) {
    starts.reserve(utf8.size() + 1);
    for (std::size_t i = 0; i < utf8.size(); ++i) {
      if ((static_cast<unsigned char>(utf8[i]) & 0xc0) != 0x80) starts.push_back(i);
    }
    starts.push_back(utf8.size());
  }
  const long long length =
      ascii ? static_cast<long long>(utf8.size()) : static_cast<long long>(starts.size()) - 1;
  const auto offset = [&](long long code_point) {
    return ascii ? static_cast<std::size_t>(code_point) : starts[static_cast<std::size_t>(code_point)];
  };
  // s[begin:end] for 0 <= begin <= end <= length.
  const auto slice = [&](long long begin, long long end) {
    return utf8.substr(offset(begin), offset(end) - offset(begin));
  };
  // Python's stop of s[:stop] for a string of `size` code points.
  const auto clamp_stop = [](long long stop, long long size) {
    return stop >= 0 ? std::min(stop, size) : std::max(0LL, size + stop);
  };

  if (length <= max_length) return std::string(utf8);
  if (truncate_middle) {
    if (max_length <= 3) return "...";
    const long long keep = max_length - 3;
    const long long head = keep / 2 + keep % 2;
    const long long tail = keep / 2;
    std::string out(slice(0, head));
    out += "...";
    out += slice(length - tail, length);
    return out;
  }
  // End mode. Words are split on single spaces (a space byte is always U+0020).
  const std::size_t first_space = utf8.find(' ');
  const long long first_word =
      first_space == std::string_view::npos
          ? length
          : (ascii ? static_cast<long long>(first_space)
                   : static_cast<long long>(std::lower_bound(starts.begin(), starts.end(), first_space) -
                                            starts.begin()));
  if (first_word > max_length) {
    std::string out(slice(0, clamp_stop(max_length, first_word)));
    out += "...";
    return out;
  }
  // Sum the word lengths (spaces not counted) up to the first word where the sum
  // reaches max_length; the prefix is the words before that one, joined by spaces,
  // which is the start of the text up to the space before that word.
  long long total = 0;
  long long word_start = 0;  // code point where the current word starts
  long long cut_start = -1;  // code point where the cut word starts
  long long last_word_start = 0;
  for (long long i = 0; i <= length; ++i) {
    const bool at_end = i == length;
    if (at_end || utf8[offset(i)] == ' ') {
      total += i - word_start;
      last_word_start = word_start;
      if (total >= max_length) {
        cut_start = word_start;
        break;
      }
      word_start = i + 1;
    }
  }
  if (cut_start < 0) cut_start = last_word_start;  // the sum never got there: cut before the last word
  const long long prefix_length = cut_start == 0 ? 0 : cut_start - 1;
  std::string out(prefix_length < max_length ? slice(0, clamp_stop(max_length, length))
                                             : slice(0, prefix_length));
  out += "...";
  return out;
}

}  // namespace sky_async
