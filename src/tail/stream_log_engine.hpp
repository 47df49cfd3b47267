// The engine of sky_async::log_stream: one open log file followed on the runtime's first
// worker, woken by the runtime's inotify_hub, serving one chunk request at a time. The
// C++ twin of python/sky_async/_tail/stream_log.py (the chunking) and follow.py (the
// reading, truncation and rotation).
//
// The stream is an operation registered with the runtime for its whole life (one piece,
// no load): the runtime's shutdown closes it and waits for it. Reads are plain pread(2)
// calls on the worker, in both I/O backends: a wake-up reads the few lines just written,
// from the page cache, and a large backlog is read at most turn_budget bytes per turn, so
// the worker's other handlers get in between. Every member but the
// atomics is touched only on the worker's thread once start() has posted begin().
#pragma once

#include "core/batch_operation.hpp"
#include "core/file_reader.hpp"
#include "core/runtime_impl.hpp"
#include "tail/inotify_hub.hpp"

#include <sky_async/stream_log.hpp>

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <sys/types.h>

namespace sky_async::detail {

// One async_next_chunk: handed to the engine, completed by it exactly once.
class next_chunk_request final : public log_chunk_operation,
                                 public std::enable_shared_from_this<next_chunk_request> {
 public:
  explicit next_chunk_request(std::shared_ptr<log_stream_engine> engine) noexcept
      : engine_(std::move(engine)) {}

  void start(completion done) override;
  // Closes the stream: the request completes as cancelled once it is closed.
  void cancel() noexcept override;

  bool cancel_requested() const noexcept { return cancelled_.load(); }
  // On the engine's worker thread.
  void complete(bool cancelled, log_chunk chunk);

 private:
  std::shared_ptr<log_stream_engine> engine_;
  completion done_;
  std::atomic<bool> cancelled_{false};
};

class log_stream_engine final : public batch_operation<log_stream_engine, bool>, private log_watcher {
 public:
  // Opens the file and finds where reading starts (the last options.tail lines), on the
  // caller's thread. Throws std::filesystem::filesystem_error naming the path.
  log_stream_engine(runtime_impl& rt, const std::filesystem::path& path, const stream_log_options& options);

  // Registers the stream; throws std::system_error(operation_aborted) during shutdown.
  void open();
  void start(completion done) override;

  // From any thread.
  void serve(std::shared_ptr<next_chunk_request> request);
  void finish();
  // close(): cancel() as the user's close, so that a pending request ends with eof.
  void close_by_user() noexcept;
  // Waits until the stream's descriptors are released (at once on its worker's thread,
  // which cannot wait for itself).
  void wait_closed();

 private:
  void begin();
  void stop() noexcept override;  // NOLINT(bugprone-exception-escape): see its definition
  bool take_result() override { return true; }
  void close_on_worker();
  void on_change() override;
  void serve_on_worker(const std::shared_ptr<next_chunk_request>& request);
  void finish_on_worker();

  // The next step while a request is pending: a chunk, a read, the end, or a wait.
  void advance();
  void wait_until(std::optional<std::chrono::steady_clock::time_point> deadline);
  void stop_waiting();
  void deliver(std::string chunk);
  void end(boost::system::error_code error);
  // Releases the descriptor, the watch and the timer (the stream ended or closed).
  void release();

  // Reads what is new, up to a budget per turn (behind_ when there is more), and looks
  // for a rotation. follow.py's _Follower.poll.
  void read_some();
  bool read_new(std::size_t& budget);
  void switch_file(std::size_t& budget);
  void feed(const char* data, std::size_t size);
  std::size_t pending_size() const noexcept { return pending_.size() - pending_pos_; }
  std::string take_chunk();

  worker* worker_ = nullptr;
  std::filesystem::path display_path_;
  stream_log_options options_;
  scoped_fd fd_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::uint64_t offset_ = 0;
  // The start of a line whose LF has not arrived yet.
  std::string held_;
  // Complete lines not yet delivered: pending_ from pending_pos_ on.
  std::string pending_;
  std::size_t pending_pos_ = 0;

  std::shared_ptr<next_chunk_request> request_;
  std::optional<boost::asio::steady_timer> timer_;
  std::uint64_t wait_generation_ = 0;
  std::optional<std::chrono::steady_clock::time_point> last_yield_;  // none: the first goes out at once
  boost::system::error_code read_error_;
  // How often a waiting stream looks at its file without an event: without inotify, and
  // on file systems where inotify can miss changes; none where it sees them all.
  std::optional<std::chrono::milliseconds> recheck_;
  bool subscribed_ = false;
  bool need_read_ = true;
  bool behind_ = false;
  bool woken_ = false;
  bool waiting_ = false;
  bool ending_ = false;
  bool partial_taken_ = false;
  bool released_ = false;
  bool closed_ = false;

  std::atomic<bool> registered_{false};
  std::atomic<bool> closed_by_user_{false};
  std::mutex closed_mutex_;
  std::condition_variable closed_changed_;
  bool closed_signalled_ = false;  // under closed_mutex_
};

// Tests only: the inotify hub of `rt` as its worker sees it (waits for the worker).
inotify_hub::counts log_watch_counts(runtime& rt);

}  // namespace sky_async::detail
