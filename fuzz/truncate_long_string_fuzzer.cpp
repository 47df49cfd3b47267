// truncate_long_string: std::invalid_argument exactly for ill-formed UTF-8; otherwise
// valid UTF-8 equal to a literal transcription of SkyPilot's Python (over code points),
// plus the properties the spec states (middle mode is exactly max_length long, end mode
// ends with "..." after a prefix of the input).
#include "fuzz_support.hpp"

#include <fuzzer/FuzzedDataProvider.h>
#include <sky_async/strings.hpp>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using text = std::u32string;
using ll = long long;

// Python's s[:stop] and s[start:] with negative indices counted from the end.
text head(const text& s, ll stop) {
  const ll size = static_cast<ll>(s.size());
  const ll end = stop >= 0 ? std::min(stop, size) : std::max(0LL, size + stop);
  return s.substr(0, static_cast<std::size_t>(end));
}

text tail(const text& s, ll count) {  // s[-count:] for count > 0
  const ll size = static_cast<ll>(s.size());
  return s.substr(static_cast<std::size_t>(std::max(0LL, size - count)));
}

std::vector<text> split_on_space(const text& s) {  // s.split(' ')
  std::vector<text> words(1);
  for (const char32_t c : s) {
    if (c == U' ') {
      words.emplace_back();
    } else {
      words.back() += c;
    }
  }
  return words;
}

// sky/utils/common_utils.py truncate_long_string, statement by statement.
text reference(const text& s, ll max_length, bool truncate_middle) {
  if (static_cast<ll>(s.size()) <= max_length) return s;
  if (truncate_middle) {
    if (max_length <= 3) return U"...";
    const ll keep = max_length - 3;
    const ll head_length = keep / 2 + keep % 2;
    const ll tail_length = keep / 2;
    return head(s, head_length) + U"..." + (tail_length > 0 ? tail(s, tail_length) : text());
  }
  const auto words = split_on_space(s);
  if (static_cast<ll>(words[0].size()) > max_length) return head(words[0], max_length) + U"...";
  ll total = 0;
  std::size_t stop = words.size() - 1;
  for (std::size_t i = 0; i < words.size(); ++i) {
    total += static_cast<ll>(words[i].size());
    if (total >= max_length) {
      stop = i;
      break;
    }
  }
  text prefix;
  for (std::size_t i = 0; i < stop; ++i) {
    if (i != 0) prefix += U' ';
    prefix += words[i];
  }
  if (static_cast<ll>(prefix.size()) < max_length) return head(s, max_length) + U"...";
  return prefix + U"...";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider provider(data, size);
  const bool middle = provider.ConsumeBool();
  ll max_length = 0;
  switch (provider.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
      max_length = provider.ConsumeIntegralInRange<ll>(-8, 64);
      break;
    case 1:
      max_length = provider.ConsumeIntegral<ll>();  // LLONG_MIN and LLONG_MAX included
      break;
    default:
      max_length = 35;  // the default
      break;
  }
  const std::string input = provider.ConsumeRemainingBytesAsString();
  const auto code_points = fuzz::decode_utf8(input);

  std::string out;
  try {
    out = sky_async::truncate_long_string(input, max_length, middle);
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(!code_points);
    return 0;
  }
  FUZZ_CHECK(code_points.has_value());
  const auto result = fuzz::decode_utf8(out);
  FUZZ_CHECK(result.has_value());
  FUZZ_CHECK(out == fuzz::encode_utf8(reference(*code_points, max_length, middle)));

  const ll length = static_cast<ll>(code_points->size());
  if (length <= max_length) {
    FUZZ_CHECK(out == input);
    return 0;
  }
  const std::string_view marker = "...";
  if (middle) {
    FUZZ_CHECK(static_cast<ll>(result->size()) == std::max(max_length, 3LL));
    FUZZ_CHECK(out.find(marker) != std::string::npos);
    return 0;
  }
  // End mode: a prefix of the input, then "...".
  FUZZ_CHECK(out.size() >= 3 && out.compare(out.size() - 3, 3, marker) == 0);
  const std::string_view prefix(out.data(), out.size() - 3);
  FUZZ_CHECK(std::string_view(input).substr(0, prefix.size()) == prefix);
  return 0;
}
