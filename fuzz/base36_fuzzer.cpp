// base36_encode on arbitrary bytes: only std::invalid_argument may escape; a result is
// canonical lower-case base 36 whose value, decoded here with an independent
// big-number routine, equals the value of the input's hex digits.
#include "fuzz_support.hpp"

#include <sky_async/strings.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A natural number as base-16 digits, least significant first, without leading zeros.
using nibbles = std::vector<std::uint8_t>;

void trim(nibbles& n) {
  while (!n.empty() && n.back() == 0) n.pop_back();
}

// n = n * 36 + digit, schoolbook in base 16.
void multiply_add(nibbles& n, unsigned digit) {
  unsigned carry = digit;
  for (auto& d : n) {
    const unsigned v = d * 36u + carry;
    d = static_cast<std::uint8_t>(v & 0xf);
    carry = v >> 4;
  }
  while (carry != 0) {
    n.push_back(static_cast<std::uint8_t>(carry & 0xf));
    carry >>= 4;
  }
}

bool plain_hex(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (hex_value(c) < 0) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string out;
  try {
    out = sky_async::base36_encode(input);
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(!plain_hex(input));  // a run of hex digits is always valid
    return 0;
  }
  FUZZ_CHECK(!out.empty());
  for (const char c : out) FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'));
  FUZZ_CHECK(out == "0" || out[0] != '0');

  // Whatever Python's int(s, 16) accepts (whitespace, sign, 0x, underscores) has the
  // value of its hex digits in order: the 'x' of 0x is no hex digit, and the '0'
  // before it is a leading zero.
  nibbles expected;
  for (auto it = input.rbegin(); it != input.rend(); ++it) {
    const int v = hex_value(*it);
    if (v >= 0) expected.push_back(static_cast<std::uint8_t>(v));
  }
  trim(expected);
  nibbles decoded;
  for (const char c : out) multiply_add(decoded, c <= '9' ? unsigned(c - '0') : unsigned(c - 'a' + 10));
  trim(decoded);
  FUZZ_CHECK(decoded == expected);
  return 0;
}
