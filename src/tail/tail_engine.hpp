// The tail_files engine. Each file costs a handful of cheap syscalls (open, fstat, one
// or two preads of the end, close), so a batch is worked through by a few jobs on the
// runtime's workers with plain blocking syscalls, one file at a time per job: that
// bounds the descriptors held to the number of jobs. Measured against openat/read/close
// through an io_uring ring for 1,000 small files, the ring saved 1-17 % of the I/O
// (bench/results/cpp_tail_io.txt), under 5 % of a whole call from Python: not worth a
// second per-file state machine beside this one, which the threads backend needs anyway.
//
// Per file the engine produces a tail_text: the selected lines as one string, so that a
// file costs one allocation however many lines it has (the Python binding splits it
// while building the str objects; the public tail_result is split from it).
#pragma once

#include "core/batch_operation.hpp"
#include "core/runtime_impl.hpp"
#include "tail/tail_select.hpp"

#include <sky_async/tail.hpp>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace sky_async::detail {

// One file's last lines as read (tail_select.hpp): the selection, or the error.
struct tail_text : tail_selection {
  std::error_code error;
  bool ok() const noexcept { return !error; }
};

// tail_text -> tail_result: the text split on LF.
tail_result to_tail_result(tail_text&& text);

// Where a job opens its files from: consecutive files of one directory (the usual
// batch: a job's logs) are opened relative to that directory, so that the kernel walks
// only their last component instead of the whole path (about a tenth of an open
// for a path two or three levels deep, bench/results/cpp_tail_io.txt). The directory
// is opened (O_PATH) at the second file in a row there; if that fails, or for a path
// without a directory part, files are opened by their whole path, so errors are
// exactly open(2)'s. A cache made with `enabled` false (the job has no descriptor to
// spare for a directory) always gives whole paths.
class directory_cache {
 public:
  explicit directory_cache(bool enabled) : enabled_(enabled) {}
  directory_cache(const directory_cache&) = delete;
  directory_cache& operator=(const directory_cache&) = delete;
  ~directory_cache() { reset(); }

  // The directory fd (or AT_FDCWD) and the name to pass to openat(2) for `path`.
  std::pair<int, const char*> locate(const char* path);
  // Out of descriptors: closes the directory (if open, true) and opens by whole paths
  // until the directory changes, so that the next open can have its descriptor.
  bool give_up() noexcept;

 private:
  void reset() noexcept;

  bool enabled_;
  std::string directory_;  // the previous path's directory part
  int fd_ = -1;
  bool failed_ = false;  // opening directory_ failed: whole paths until it changes
};

// open (open_regular_file_at, relative to `directories`, one attempt told to `retry`) +
// fstat + check + select_tail with pread + close, all blocking syscalls. An open refused
// for lack of descriptors (EMFILE/ENFILE) is returned as such: the caller asks `retry`
// whether and when to try again.
std::error_code tail_path_once(const char* path, std::size_t n, std::size_t chunk_size,
                               const std::function<bool()>& abandoned, directory_cache& directories,
                               fd_retry& retry, tail_hint& hint, tail_text& out);

using tail_text_operation = basic_operation<std::vector<tail_text>>;

// tail_files with the lines of each file as one tail_text (what the Python binding uses).
std::shared_ptr<tail_text_operation> make_tail_text_operation(runtime_impl& rt,
                                                              std::vector<std::filesystem::path> paths,
                                                              std::size_t n, tail_options options);

class tail_batch final : public batch_operation<tail_batch, std::vector<tail_text>> {
 public:
  tail_batch(runtime_impl& rt, std::vector<std::filesystem::path> paths, std::size_t n, tail_options options);

  // Pieces: one per file, and one per job (it ends once it has closed the directory it
  // held: the caller sees no descriptor of ours after completion). Workers: one per job.
  void start(completion done) override;

 private:
  // One of the jobs working through the batch, one file at a time.
  struct job {
    // Whether it may keep a directory open beside its file (directory_cache).
    bool holds_directory = false;
    // A file it claimed whose open waits for a descriptor, and that wait.
    std::optional<std::size_t> waiting;
    fd_retry retry;
  };

  // One job's turn on its worker: files until none is left or about 2 ms passed, then
  // it posts itself again so that other work queued on the worker gets in. Out of
  // descriptors, it waits for one: blocking on a threads worker, and on an io_uring
  // worker (which must not block: its ring completes our closes) by ending its turn
  // until fd_waiter calls it back.
  void run_job(std::size_t j);
  std::optional<std::size_t> claim() noexcept;
  void finish(std::size_t index, std::error_code error);
  // Files nobody claimed yet finish here, as cancelled; files being read notice the
  // flag before their next read and finish once closed.
  void stop() noexcept override;
  std::vector<tail_text> take_result() override { return std::move(results_); }

  std::vector<std::filesystem::path> paths_;
  std::size_t n_;
  tail_options options_;
  std::vector<tail_text> results_;
  // Descriptors open at once are at most options_.concurrency (0: two per job): each
  // job holds its file, and the jobs with one to spare a directory too.
  std::vector<job> jobs_;

  std::atomic<std::size_t> next_{0};
  // Shared by the jobs (relaxed): a hint is a guess, any value gives the same lines.
  std::atomic<std::size_t> needed_{0};
};

}  // namespace sky_async::detail
