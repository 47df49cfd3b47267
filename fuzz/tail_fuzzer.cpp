// select_tail (the backwards chunked selection behind tail_files) over an in-memory
// "file", for any n, chunk size, first-read hint and size-at-open (larger than the data
// = truncated while reading, smaller = grew after the open): the text, line count and
// final LF equal those of a whole-buffer oracle, the hint learned is where the (n+1)-th
// LF from the end is, the reads walk backwards (a first read of at most a chunk, at
// least the hint's size, then chunk-sized steps), and a cancellation or a read error is
// reported as such.
#include "fuzz_support.hpp"

#include "tail/tail_select.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

struct expected_tail {
  std::string text;  // the selected pieces joined by LF
  std::size_t line_count = 0;
  bool final_newline = false;
  std::size_t needed = 0;  // bytes from the end to the (n+1)-th LF, or all of them
};

// SkyPilot's selection on the whole data: data.split('\n'), less the empty piece after a
// final LF, last n pieces.
expected_tail oracle(std::string_view data, std::size_t n) {
  expected_tail out;
  if (n == 0 || data.empty()) return out;
  std::vector<std::string> pieces(1);
  for (const char c : data) {
    if (c == '\n') {
      pieces.emplace_back();
    } else {
      pieces.back() += c;
    }
  }
  if (data.back() == '\n') {
    out.final_newline = true;
    pieces.pop_back();
  }
  const std::size_t keep = std::min(n, pieces.size());
  out.line_count = keep;
  for (std::size_t i = pieces.size() - keep; i < pieces.size(); ++i) {
    if (i != pieces.size() - keep) out.text += '\n';
    out.text += pieces[i];
  }
  out.needed = data.size();
  std::size_t seen = 0;
  for (std::size_t i = data.size(); i-- > 0;) {
    if (data[i] == '\n' && ++seen == n + 1) {
      out.needed = data.size() - i;
      break;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace d = sky_async::detail;
  FuzzedDataProvider provider(data, size);
  const std::size_t n = provider.ConsumeBool() ? provider.ConsumeIntegralInRange<std::size_t>(0, 8)
                                               : provider.ConsumeIntegralInRange<std::size_t>(0, 1 << 20);
  const std::size_t chunk_size = provider.ConsumeBool()
                                     ? provider.ConsumeIntegralInRange<std::size_t>(1, 16)
                                     : provider.ConsumeIntegralInRange<std::size_t>(1, 1 << 16);
  // The size seen at open, relative to the bytes there are when reading.
  const int size_shift = provider.ConsumeIntegralInRange<int>(-64, 64);
  // Cancel before the k-th read, or fail the k-th read with EIO (0: never).
  const unsigned cancel_at = provider.ConsumeBool() ? provider.ConsumeIntegralInRange<unsigned>(1, 8) : 0;
  const unsigned fail_at = provider.ConsumeBool() ? provider.ConsumeIntegralInRange<unsigned>(1, 8) : 0;
  // What a previous file taught (0: nothing yet).
  d::tail_hint hint{provider.ConsumeBool() ? provider.ConsumeIntegralInRange<std::size_t>(0, 1 << 16) : 0};
  const std::size_t hinted = hint.needed;
  const std::string file = provider.ConsumeRemainingBytesAsString();
  const std::uint64_t size_at_open =
      static_cast<std::uint64_t>(std::max<long long>(0, static_cast<long long>(file.size()) + size_shift));

  unsigned reads = 0;
  unsigned checks = 0;
  std::uint64_t expected_end = size_at_open;  // each read ends where the previous began
  const d::tail_pread pread = [&](char* buffer, std::size_t want, std::uint64_t offset,
                                  std::size_t& got) -> std::error_code {
    ++reads;
    FUZZ_CHECK(offset + want == expected_end);
    if (reads == 1) {
      // The first read: at most a chunk, at least what the hint said (or the whole size).
      FUZZ_CHECK(want > 0 && want <= chunk_size);
      FUZZ_CHECK(want == d::first_read_size(d::tail_hint{hinted}, n, chunk_size) || want == expected_end);
      FUZZ_CHECK(want >= std::min<std::uint64_t>({hinted, chunk_size, expected_end}));
    } else {
      FUZZ_CHECK(want == std::min<std::uint64_t>(chunk_size, expected_end));
    }
    expected_end = offset;
    if (reads == fail_at) return {EIO, std::generic_category()};
    got = offset >= file.size() ? 0 : std::min<std::size_t>(want, file.size() - offset);
    std::memcpy(buffer, file.data() + std::min<std::size_t>(offset, file.size()), got);
    return {};
  };
  const std::function<bool()> abandoned = [&] { return ++checks == cancel_at; };

  d::tail_selection selection;
  const auto ec = d::select_tail(pread, size_at_open, n, chunk_size, abandoned, hint, selection);
  if (cancel_at != 0 && checks >= cancel_at) {
    FUZZ_CHECK(ec == std::errc::operation_canceled);
    return 0;
  }
  if (fail_at != 0 && reads >= fail_at) {
    FUZZ_CHECK(ec.value() == EIO);
    return 0;
  }
  FUZZ_CHECK(!ec);
  FUZZ_CHECK(reads == checks);
  const auto expected = oracle(std::string_view(file).substr(0, size_at_open), n);
  FUZZ_CHECK(selection.text == expected.text);
  FUZZ_CHECK(selection.line_count == expected.line_count);
  FUZZ_CHECK(selection.final_newline == expected.final_newline);
  if (n != 0 && size_at_open != 0) FUZZ_CHECK(hint.needed == expected.needed);
  return 0;
}
