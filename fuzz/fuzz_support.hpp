// Shared by the fuzz targets: a check that survives NDEBUG, and an independent UTF-8
// decoder (written from the Unicode standard's table of well-formed byte sequences,
// not from src/text/py_literals.cpp) to judge the library's answers against.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

// Aborts (a libFuzzer crash, with the input saved) when a property does not hold.
#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace fuzz {

// The code points of `bytes`, or std::nullopt when it is not well-formed UTF-8
// (Unicode 15, table 3-7).
inline std::optional<std::u32string> decode_utf8(std::string_view bytes) {
  std::u32string out;
  const auto at = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  for (std::size_t i = 0; i < bytes.size();) {
    const unsigned char b0 = at(i);
    if (b0 <= 0x7f) {
      out += static_cast<char32_t>(b0);
      ++i;
      continue;
    }
    // Allowed range of the second byte, and the total length, per lead byte.
    unsigned char low = 0x80, high = 0xbf;
    std::size_t length = 0;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      length = 2;
    } else if (b0 == 0xe0) {
      length = 3, low = 0xa0;
    } else if ((b0 >= 0xe1 && b0 <= 0xec) || b0 == 0xee || b0 == 0xef) {
      length = 3;
    } else if (b0 == 0xed) {
      length = 3, high = 0x9f;
    } else if (b0 == 0xf0) {
      length = 4, low = 0x90;
    } else if (b0 >= 0xf1 && b0 <= 0xf3) {
      length = 4;
    } else if (b0 == 0xf4) {
      length = 4, high = 0x8f;
    } else {
      return std::nullopt;
    }
    if (i + length > bytes.size()) return std::nullopt;
    if (at(i + 1) < low || at(i + 1) > high) return std::nullopt;
    for (std::size_t k = 2; k < length; ++k) {
      if (at(i + k) < 0x80 || at(i + k) > 0xbf) return std::nullopt;
    }
    char32_t value = b0 & (length == 2 ? 0x1f : length == 3 ? 0x0f : 0x07);
    for (std::size_t k = 1; k < length; ++k) value = (value << 6) | (at(i + k) & 0x3f);
    out += value;
    i += length;
  }
  return out;
}

inline std::string encode_utf8(std::u32string_view text) {
  std::string out;
  for (const char32_t c : text) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xe0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

}  // namespace fuzz
