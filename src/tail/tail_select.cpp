#include "tail/tail_select.hpp"

#include "core/thread_storage.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <utility>

#include <string.h>  // NOLINT(modernize-deprecated-headers): memrchr is a GNU extension, not in <cstring>

namespace sky_async::detail {

namespace {

// The thread's read buffer, kept between files (a file is read from start to end
// within one call). Bytes are read into it from its end towards its start, so the
// file's tail ends up in file order without moving what is held. A per_thread, not a
// thread_local: see core/thread_storage.hpp.
class tail_buffer {
 public:
  char* end() noexcept { return data_.get() + capacity_; }
  // Room for `more` bytes before the `held` bytes at the end; may move them.
  void reserve_before(std::size_t held, std::size_t more) {
    if (held + more <= capacity_) return;
    const std::size_t grown = std::max({held + more, 2 * capacity_, std::size_t{16384}});
    auto larger = std::make_unique_for_overwrite<char[]>(grown);
    std::copy_n(end() - held, held, larger.get() + grown - held);
    data_ = std::move(larger);
    capacity_ = grown;
  }
  // A huge n or chunk_size grew it: do not keep that much per thread.
  void trim() noexcept {
    if (capacity_ > (std::size_t{1} << 20)) {
      data_.reset();
      capacity_ = 0;
    }
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
};

tail_buffer& thread_buffer() {
  static per_thread<tail_buffer> buffers;
  return buffers.get();
}

std::error_code select_into(tail_buffer& buffer, const tail_pread& pread, std::uint64_t size, std::size_t n,
                            std::size_t chunk_size, const std::function<bool()>& abandoned, tail_hint& hint,
                            tail_selection& out) {
  // Backwards, as SkyPilot does: stop once more than n LFs were seen, so that the
  // first (possibly partial) piece is never one of the n selected. Each chunk is scanned
  // for LFs backwards as it arrives (memrchr is vectorised), up to the (n+1)-th from the
  // end: those give both the stop and the selection, in one pass over the bytes.
  std::size_t held = 0;
  std::uint64_t cursor = size;
  std::size_t newlines = 0;
  std::size_t nth = 0;       // distance from the end of the n-th LF from the end
  std::size_t nth_next = 0;  // ... and of the (n+1)-th
  std::size_t want = first_read_size(hint, n, chunk_size);
  while (cursor > 0 && newlines <= n) {
    if (abandoned()) return std::make_error_code(std::errc::operation_canceled);
    want = static_cast<std::size_t>(std::min<std::uint64_t>(want, cursor));
    cursor -= want;
    buffer.reserve_before(held, want);
    char* const at = buffer.end() - held - want;
    std::size_t got = 0;
    if (auto ec = pread(at, want, cursor, got)) return ec;
    if (got < want) {
      // Truncated meanwhile: what was read is followed directly by what was read before.
      std::memmove(at + (want - got), at, got);
    }
    held += got;
    const char* const first = buffer.end() - held;
    std::size_t scan = got;
    while (newlines <= n) {
      const void* lf = ::memrchr(first, '\n', scan);
      if (lf == nullptr) break;
      scan = static_cast<std::size_t>(static_cast<const char*>(lf) - first);
      ++newlines;
      if (newlines == n) nth = held - scan;
      if (newlines == n + 1) nth_next = held - scan;
    }
    want = chunk_size;
  }
  hint.needed = newlines > n ? nth_next : held;
  const std::string_view view(buffer.end() - held, held);
  if (view.empty()) return {};  // truncated to nothing while we read
  // The last n pieces of data.split('\n'), less the empty piece after a final LF.
  std::size_t start = 0;
  std::size_t text_end = held;
  std::size_t count = 0;
  if (view.back() == '\n') {
    out.final_newline = true;
    text_end = held - 1;
    count = std::min(n, newlines);
    if (newlines > n) start = held - nth_next + 1;
  } else {
    count = newlines < n ? newlines + 1 : n;
    if (newlines >= n) start = held - nth + 1;
  }
  out.text.assign(view.data() + start, text_end - start);
  out.line_count = count;
  return {};
}

}  // namespace

std::size_t first_read_size(const tail_hint& hint, std::size_t n, std::size_t chunk_size) noexcept {
  constexpr std::size_t guess_per_line = 160;
  constexpr std::size_t margin = 256;
  const std::size_t guess =
      hint.needed != 0 ? hint.needed + hint.needed / 8 + margin
                       : (n < chunk_size / guess_per_line ? (n + 1) * guess_per_line + margin : chunk_size);
  return std::min(guess, chunk_size);
}

std::error_code select_tail(const tail_pread& pread, std::uint64_t size, std::size_t n,
                            std::size_t chunk_size, const std::function<bool()>& abandoned, tail_hint& hint,
                            tail_selection& out) {
  out.text.clear();
  out.line_count = 0;
  out.final_newline = false;
  if (n == 0 || size == 0) return {};
  tail_buffer& buffer = thread_buffer();
  try {
    const auto ec = select_into(buffer, pread, size, n, chunk_size, abandoned, hint, out);
    buffer.trim();
    return ec;
  } catch (const std::bad_alloc&) {
    buffer.trim();
    throw;
  }
}

std::error_code select_tail_unsized(const tail_pread& pread, std::size_t n, std::size_t chunk_size,
                                    const std::function<bool()>& abandoned, tail_hint& hint,
                                    tail_selection& out) {
  out.text.clear();
  out.line_count = 0;
  out.final_newline = false;
  if (n == 0) return {};
  // Reads of a pseudo-file's size, whatever chunk_size asks for backwards.
  constexpr std::size_t min_step = 4096;
  constexpr std::size_t max_step = 65536;
  const std::size_t step = std::clamp(chunk_size, min_step, max_step);
  std::string kept;
  std::uint64_t offset = 0;
  std::size_t newlines = 0;  // in kept
  for (;;) {
    if (abandoned()) return std::make_error_code(std::errc::operation_canceled);
    const std::size_t old_size = kept.size();
    kept.resize(old_size + step);
    std::size_t got = 0;
    if (auto ec = pread(kept.data() + old_size, step, offset, got)) return ec;
    kept.resize(old_size + got);
    offset += got;
    newlines += static_cast<std::size_t>(
        std::count(kept.begin() + static_cast<std::ptrdiff_t>(old_size), kept.end(), '\n'));
    if (got < step) break;
    // Twice as many LFs as needed: drop what precedes the (n+1)-th from the end. Each
    // drop moves about n+1 lines and follows at least n+1 new ones: linear in all.
    if (newlines > 2 * (n + 1)) {
      std::size_t scan = kept.size();
      for (std::size_t seen = 0; seen < n + 1; ++seen) {
        scan = static_cast<std::size_t>(static_cast<const char*>(::memrchr(kept.data(), '\n', scan)) -
                                        kept.data());
      }
      kept.erase(0, scan);
      newlines = n + 1;
    }
  }
  const tail_pread from_memory = [&kept](char* buffer, std::size_t want, std::uint64_t at, std::size_t& got) {
    got = at >= kept.size() ? 0 : static_cast<std::size_t>(std::min<std::uint64_t>(want, kept.size() - at));
    std::memcpy(buffer, kept.data() + at, got);
    return std::error_code{};
  };
  return select_tail(from_memory, kept.size(), n, chunk_size, abandoned, hint, out);
}

}  // namespace sky_async::detail
