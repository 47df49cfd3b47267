// The last lines of files: one, or many at once, read backwards in chunks so that the
// cost depends on the lines asked for, not on the size of the file.
#pragma once

#include <sky_async/detail/async_operation.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace sky_async {

struct tail_options {
  // Bytes per backward read (SkyPilot's read_last_n_lines default). Must be > 0.
  std::size_t chunk_size = 8192;
  // Descriptors open at once for this call, directories included: each file costs one
  // (and about chunk_size bytes plus the lines it holds), and a descriptor left over lets
  // a file's directory stay open to open the next ones there relative to it. 0 means one
  // file per runtime thread, each with its directory (two descriptors per thread).
  // Out of descriptors (EMFILE), an open waits for one of the library's own to close, and
  // fails with EMFILE once none closed for 2 s (per shortage, not per file).
  std::size_t concurrency = 0;
};

// The last lines of one file, selected exactly as SkyPilot's read_last_n_lines selects
// them: the bytes read are split on LF (0x0A) only; when they end with LF the empty
// piece after it is not a line; the result is the last (at most n) pieces. A file of
// size 0 at open, which is also what /proc and /sys files report, is read forwards to
// its end (keeping about the last n lines in memory), so that those give their lines.
//
// `lines` hold the raw bytes of each line WITHOUT its LF and WITHOUT any decoding: a
// CR before the LF (CRLF files) is kept, as is every other byte. Callers that want
// SkyPilot's strings decode each line, strip trailing CRs from the decoded text, and
// append '\n' to every line but the last (the Python layer does exactly that).
struct tail_result {
  std::vector<std::string> lines;
  // Whether the bytes read ended with LF. With it, `lines` re-joined with LF plus a
  // final LF reproduce `tail -n N` byte for byte; without it, with no final LF.
  bool final_newline = false;
  std::error_code error;
  bool ok() const noexcept { return !error; }
};

using tail_signature = detail::operation_signature<std::vector<tail_result>>;

namespace detail {
using tail_operation = basic_operation<std::vector<tail_result>>;

// Throws std::invalid_argument when options.chunk_size is 0 (never for paths:
// per-file problems are reported in the results).
std::shared_ptr<tail_operation> make_tail_operation(runtime& rt, std::vector<std::filesystem::path> paths,
                                                    std::size_t n, tail_options options);
}  // namespace detail

// Reads the last `n` lines of every path, concurrently, and completes with one result
// per path in input order: one failing file never loses the others' lines.
//
// Like SkyPilot, the size is taken once when a file is opened and reading stops after
// n + 1 LFs (or at the start of the file), so a 10 GiB log with short lines costs a
// few kilobytes; a file truncated while it is read gives short reads, never an error.
// Unlike SkyPilot, which would block in open() until a writer appears, FIFOs, sockets
// and devices fail at once with errc::not_a_regular_file; directories fail with
// EISDIR; n == 0 still opens and checks the file (its errors are reported) but reads
// nothing.
//
// Completion signature void(boost::system::error_code, std::vector<tail_result>); the
// error is operation_aborted when the operation was cancelled through the token's
// cancellation slot, and it completes only after every file it opened is closed.
template <typename CompletionToken>
auto async_tail_files(runtime& rt, std::vector<std::filesystem::path> paths, std::size_t n,
                      tail_options options, CompletionToken&& token) {
  return detail::async_run<std::vector<tail_result>>(
      [&rt, paths = std::move(paths), n, options]() mutable {
        return detail::make_tail_operation(rt, std::move(paths), n, options);
      },
      std::forward<CompletionToken>(token));
}

inline boost::asio::awaitable<std::vector<tail_result>> tail_files(runtime& rt,
                                                                   std::vector<std::filesystem::path> paths,
                                                                   std::size_t n, tail_options options = {}) {
  co_return co_await async_tail_files(rt, std::move(paths), n, options, boost::asio::use_awaitable);
}

// On the process-wide runtime.
inline boost::asio::awaitable<std::vector<tail_result>> tail_files(std::vector<std::filesystem::path> paths,
                                                                   std::size_t n, tail_options options = {}) {
  return tail_files(runtime::global(), std::move(paths), n, options);
}

// The last `n` lines of one file (raw bytes, as in tail_result::lines); throws
// std::filesystem::filesystem_error naming the path on failure.
boost::asio::awaitable<std::vector<std::string>> read_last_n_lines(runtime& rt, std::filesystem::path path,
                                                                   std::size_t n,
                                                                   std::size_t chunk_size = 8192);
boost::asio::awaitable<std::vector<std::string>> read_last_n_lines(std::filesystem::path path, std::size_t n,
                                                                   std::size_t chunk_size = 8192);

}  // namespace sky_async
