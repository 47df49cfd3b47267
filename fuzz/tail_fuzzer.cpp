// select_tail (the backwards chunked selection behind tail_files) over an in-memory
// "file", for any n, chunk size and size-at-open (larger than the data = truncated
// while reading, smaller = grew after the open): the lines equal those of a whole-buffer
// oracle, the reads walk backwards in chunk-aligned steps, and a cancellation or a read
// error is reported as such.
#include "fuzz_support.hpp"

#include "tail_select.hpp"

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

// SkyPilot's selection on the whole data: data.split('\n'), less the empty piece after a
// final LF, last n pieces.
sky_async::detail::tail_selection oracle(std::string_view data, std::size_t n) {
  sky_async::detail::tail_selection out;
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
  out.lines.assign(pieces.end() - static_cast<std::ptrdiff_t>(keep), pieces.end());
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
    FUZZ_CHECK(want == std::min<std::uint64_t>(chunk_size, expected_end));
    expected_end = offset;
    if (reads == fail_at) return {EIO, std::generic_category()};
    got = offset >= file.size() ? 0 : std::min<std::size_t>(want, file.size() - offset);
    std::memcpy(buffer, file.data() + std::min<std::size_t>(offset, file.size()), got);
    return {};
  };
  const std::function<bool()> abandoned = [&] { return ++checks == cancel_at; };

  d::tail_selection selection;
  const auto ec = d::select_tail(pread, size_at_open, n, chunk_size, abandoned, selection);
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
  FUZZ_CHECK(selection.lines == expected.lines);
  FUZZ_CHECK(selection.final_newline == expected.final_newline);
  return 0;
}
