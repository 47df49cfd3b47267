// A log file as a stream of chunks of whole lines, like `tail -F`: the last lines (or the
// whole file), then, while following, every line appended afterwards, batched for
// throughput. The C++ twin of Python's sky_async.stream_log.
#pragma once

#include <sky_async/detail/async_operation.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace sky_async {

struct stream_log_options {
  // Start with the last `tail` lines, read backwards as tail_files reads them (the end of
  // a 10 GiB log costs kilobytes); 0 starts at the end of the file; std::nullopt reads the
  // whole file.
  std::optional<std::size_t> tail;
  // Keep delivering the lines appended afterwards (until finish() or close()); false
  // ends the stream at the end of the file as it is when the first chunk is asked for.
  bool follow = true;
  // A chunk never holds more bytes than this unless one line alone is longer. Must be > 0.
  std::size_t max_chunk_bytes = 8192;
  // While following, buffered lines are delivered at the latest this long after the
  // previous chunk: a line after a quiet spell goes out at once, and under a steady
  // stream chunks come at most once per max_delay.
  std::chrono::milliseconds max_delay{20};
};

namespace detail {
class log_stream_engine;  // src/tail/stream_log_engine.hpp

// One chunk, or the end of the stream (error eof, empty data).
struct log_chunk {
  boost::system::error_code error;
  std::string data;
};
using log_chunk_operation = basic_operation<log_chunk>;

std::shared_ptr<log_stream_engine> open_log_stream(runtime& rt, const std::filesystem::path& path,
                                                   const stream_log_options& options);
std::shared_ptr<log_chunk_operation> make_next_chunk_operation(
    const std::shared_ptr<log_stream_engine>& engine);
}  // namespace detail

// A followed log file. The file is opened, and its start found, by the constructor;
// reading and waiting run on one of the runtime's worker threads. Changes are noticed
// through one inotify instance per runtime, with one watch per file however many streams
// follow it (polling every 100 ms where inotify is unavailable). Like `tail -F` it
// survives truncation (reading restarts at offset 0 and a held partial line is dropped)
// and rotation, by rename or delete and re-create (the old file is read to its end, its
// unterminated last line delivered with an LF, then the new file is read from its start).
//
// The bytes are delivered as they are in the file (nothing decoded, no CR stripped), so
// the chunks of a file only appended to concatenate to the file from the start point on.
// Each chunk holds whole lines, each with its LF; a partial line is held until its LF
// arrives, and delivered as it is only when the stream ends (follow == false, or
// finish()), so that nothing written is lost.
//
// One chunk request at a time: async_next_chunk while another is pending completes at
// once with boost::asio::error::already_started. The stream must be destroyed before
// its runtime (a runtime that shuts down first closes it: pending requests complete
// with operation_aborted, later ones with eof).
class log_stream {
 public:
  using chunk_signature = detail::operation_signature<std::string>;

  // Throws std::filesystem::filesystem_error naming the path (a std::system_error with
  // the errno: no_such_file_or_directory for a missing file, EISDIR, errc::
  // not_a_regular_file for FIFOs, sockets and devices), std::invalid_argument for
  // max_chunk_bytes == 0, and std::system_error(operation_aborted) once the runtime is
  // shutting down.
  log_stream(runtime& rt, const std::filesystem::path& path, stream_log_options options = {});
  // On the process-wide runtime.
  explicit log_stream(const std::filesystem::path& path, stream_log_options options = {});

  // Closes the stream (see close()) and waits until its descriptors are closed, unless
  // called on the stream's own worker thread.
  ~log_stream();
  // A moved-from stream may only be destroyed or assigned to. Assigning closes the stream
  // assigned over as the destructor does.
  log_stream(log_stream&&) noexcept = default;
  log_stream& operator=(log_stream&& other) noexcept;
  log_stream(const log_stream&) = delete;
  log_stream& operator=(const log_stream&) = delete;

  // The next chunk. Completion signature void(boost::system::error_code, std::string):
  // a chunk of whole lines with no error; at the end of the stream (or once closed) an
  // empty string with boost::asio::error::eof, and every later call the same. Cancelling
  // through the token's cancellation slot closes the stream, as close() does: the
  // request completes with operation_aborted once every descriptor and watch is released.
  template <typename CompletionToken>
  auto async_next_chunk(CompletionToken&& token) {
    return detail::async_run_split<std::string, detail::log_chunk>(
        [engine = engine_] { return detail::make_next_chunk_operation(engine); },
        [](detail::log_chunk chunk) { return std::pair{chunk.error, std::move(chunk.data)}; },
        std::forward<CompletionToken>(token));
  }

  // The coroutine form: the next chunk, or std::nullopt at the end of the stream. Throws
  // boost::system::system_error (operation_aborted) when cancelled.
  boost::asio::awaitable<std::optional<std::string>> next_chunk();

  // "Until": read what is written so far, deliver it all (a final partial line
  // included), then end. Thread-safe; does nothing once the stream ended.
  void finish();

  // Closes the file and releases its watch, from any thread, without waiting: a pending
  // request completes with eof, and so does every later one. Idempotent.
  void close() noexcept;

 private:
  std::shared_ptr<detail::log_stream_engine> engine_;
};

}  // namespace sky_async
