#include "tail_select.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string_view>

#include <string.h>  // NOLINT(modernize-deprecated-headers): memrchr is a GNU extension, not in <cstring>

namespace sky_async::detail {

namespace {

const std::error_code canceled = std::make_error_code(std::errc::operation_canceled);

// LFs in [data, data + size), counting no further than `enough`: memchr is vectorised,
// where a byte loop over every chunk cost more than the syscalls.
std::size_t count_newlines(const char* data, std::size_t size, std::size_t enough) noexcept {
  std::size_t count = 0;
  const char* const end = data + size;
  while (count < enough) {
    const void* lf = std::memchr(data, '\n', static_cast<std::size_t>(end - data));
    if (lf == nullptr) break;
    ++count;
    data = static_cast<const char*>(lf) + 1;
  }
  return count;
}

}  // namespace

std::error_code select_tail(const tail_pread& pread, std::uint64_t size, std::size_t n,
                            std::size_t chunk_size, const std::function<bool()>& abandoned,
                            tail_selection& out) {
  out.lines.clear();
  out.final_newline = false;
  if (n == 0 || size == 0) return {};

  // Backwards, as SkyPilot does: stop once more than n LFs were seen, so that the
  // first (possibly partial) piece is never one of the n selected. The bytes read fill
  // `buffer` from its end towards its start, [begin, buffer.size()) holding them in file
  // order; it grows geometrically, so even chunk_size 1 costs one byte per byte read.
  std::string buffer;
  std::size_t begin = 0;
  std::uint64_t cursor = size;
  std::size_t newlines = 0;
  while (cursor > 0 && newlines <= n) {
    if (abandoned()) return canceled;
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_size, cursor));
    cursor -= want;
    if (begin < want) {
      const std::size_t held = buffer.size() - begin;
      const std::size_t grown =
          std::max(held + want, std::min<std::size_t>(2 * held + 4096, held + cursor + want));
      std::string larger(grown, '\0');
      std::copy(buffer.begin() + static_cast<std::ptrdiff_t>(begin), buffer.end(),
                larger.end() - static_cast<std::ptrdiff_t>(held));
      buffer.swap(larger);
      begin = grown - held;
    }
    std::size_t got = 0;
    if (auto ec = pread(buffer.data() + begin - want, want, cursor, got)) return ec;
    if (got < want) {
      // Truncated meanwhile: what was read is followed directly by what was read before.
      std::copy_backward(buffer.begin() + static_cast<std::ptrdiff_t>(begin - want),
                         buffer.begin() + static_cast<std::ptrdiff_t>(begin - want + got),
                         buffer.begin() + static_cast<std::ptrdiff_t>(begin));
    }
    begin -= got;
    newlines += count_newlines(buffer.data() + begin, got, n + 1 - newlines);
  }
  // The last n pieces of data.split('\n'), less the empty piece after a final LF.
  const std::string_view view(buffer.data() + begin, buffer.size() - begin);
  if (view.empty()) return {};  // truncated to nothing while we read
  std::size_t stop = view.size();
  if (view.back() == '\n') {
    out.final_newline = true;
    --stop;
  }
  std::vector<std::string> reversed;
  while (reversed.size() < n) {
    const void* found = stop == 0 ? nullptr : ::memrchr(view.data(), '\n', stop);
    if (found == nullptr) {
      reversed.emplace_back(view.substr(0, stop));
      break;
    }
    const auto lf = static_cast<std::size_t>(static_cast<const char*>(found) - view.data());
    reversed.emplace_back(view.substr(lf + 1, stop - lf - 1));
    stop = lf;
  }
  out.lines.assign(std::make_move_iterator(reversed.rbegin()), std::make_move_iterator(reversed.rend()));
  return {};
}

}  // namespace sky_async::detail
