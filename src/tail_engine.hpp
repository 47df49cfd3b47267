// The tail_files engine. Each file costs a handful of cheap syscalls (open, fstat, one
// or two preads of the end, close), so a batch is worked through by a few jobs on the
// runtime's workers with plain blocking syscalls, one file at a time per job: that
// bounds the descriptors held to the number of jobs. Measured against openat/read/close
// through an io_uring ring for 1,000 small files, the ring saved 1-17 % of the I/O
// (bench/results/cpp_tail_io.txt), under 5 % of a whole call from Python: not worth a
// second per-file state machine beside this one, which the threads backend needs anyway.
#pragma once

#include "runtime_impl.hpp"

#include <sky_async/tail.hpp>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace sky_async::detail {

// The selection of SkyPilot's read_last_n_lines on an open regular file of `size`
// bytes (the size seen at open). Reads backwards in `chunk_size` blocks until more
// than n LFs were seen or the start is reached; a read cut short by a concurrent
// truncation just contributes fewer bytes. Returns operation_canceled once
// `abandoned()` is true (asked before every read).
std::error_code read_tail(int fd, std::uint64_t size, std::size_t n, std::size_t chunk_size,
                          const std::function<bool()>& abandoned, tail_result& out);

// open + fstat + check + read_tail + close with blocking syscalls. An open refused for
// lack of descriptors (EMFILE/ENFILE) is retried for about 2 s, since other jobs'
// files close within microseconds.
std::error_code tail_path_blocking(const char* path, std::size_t n, std::size_t chunk_size,
                                   const std::function<bool()>& abandoned, tail_result& out);

class tail_batch final : public tail_operation, public std::enable_shared_from_this<tail_batch> {
 public:
  tail_batch(runtime_impl& rt, std::vector<std::filesystem::path> paths, std::size_t n, tail_options options);

  void start(completion done) override;
  void cancel() noexcept override;

 private:
  // One job's turn on its worker: files until none is left or about 2 ms passed, then
  // it posts itself again so that other work queued on the worker gets in.
  void run_job(std::size_t worker);
  std::optional<std::size_t> claim() noexcept;
  void finish(std::size_t index, std::error_code error);
  void complete();
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

  runtime_impl& runtime_;
  std::vector<std::filesystem::path> paths_;
  std::size_t n_;
  tail_options options_;
  std::vector<tail_result> results_;
  completion completion_;
  std::size_t jobs_ = 0;
  std::size_t first_worker_ = 0;

  std::atomic<std::size_t> next_{0};
  std::atomic<std::size_t> outstanding_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace sky_async::detail
