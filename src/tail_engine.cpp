#include "tail_engine.hpp"

#include "file_reader.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sky_async::detail {

namespace {

const std::error_code canceled = std::make_error_code(std::errc::operation_canceled);

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

// Reads up to `want` bytes at `offset`, fewer only at EOF (a concurrent truncation).
std::error_code pread_full(int fd, char* buffer, std::size_t want, std::uint64_t offset, std::size_t& got) {
  got = 0;
  while (got < want) {
    const ssize_t r = ::pread(fd, buffer + got, want - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        // O_NONBLOCK (kept from the open, for FIFOs) on a file system that honours it.
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        continue;
      }
      return last_error();
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return {};
}

class scoped_fd {
 public:
  explicit scoped_fd(int fd) noexcept : fd_(fd) {}
  ~scoped_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  scoped_fd(const scoped_fd&) = delete;
  scoped_fd& operator=(const scoped_fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace

namespace {

// The job's read buffer, kept between files (one per worker thread: a file is read from
// start to end within one turn of a job). Bytes are read into it from its end towards
// its start, so the file's tail ends up in file order without moving what is held.
class tail_buffer {
 public:
  char* end() noexcept { return data_.get() + capacity_; }
  // Room for `more` bytes before the `held` bytes at the end; may move them.
  void reserve_before(std::size_t held, std::size_t more) {
    if (held + more <= capacity_) return;
    const std::size_t grown = std::max({held + more, 2 * capacity_, std::size_t{16384}});
    auto larger = std::make_unique_for_overwrite<char[]>(grown);
    std::memcpy(larger.get() + grown - held, end() - held, held);
    data_ = std::move(larger);
    capacity_ = grown;
  }
  // A huge n or chunk_size grew it: do not keep that much per worker.
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

thread_local tail_buffer job_buffer;

// Bytes for the first read: what the previous file needed plus a margin; before any
// file, a guess of 160 bytes per line (the lines of typical logs are 80-200 bytes).
std::size_t first_read_size(const tail_hint& hint, std::size_t n, std::size_t chunk_size) noexcept {
  constexpr std::size_t guess_per_line = 160;
  constexpr std::size_t margin = 256;
  const std::size_t guess =
      hint.needed != 0 ? hint.needed + hint.needed / 8 + margin
                       : (n < chunk_size / guess_per_line ? (n + 1) * guess_per_line + margin : chunk_size);
  return std::min(guess, chunk_size);
}

}  // namespace

std::error_code read_tail(int fd, std::uint64_t size, std::size_t n, std::size_t chunk_size,
                          const std::function<bool()>& abandoned, tail_hint& hint, tail_text& out) {
  out.text.clear();
  out.line_count = 0;
  out.final_newline = false;
  if (n == 0 || size == 0) return {};

  // Backwards, as SkyPilot does: stop once more than n LFs were seen, so that the
  // first (possibly partial) piece is never one of the n selected. Each chunk is scanned
  // for LFs backwards as it arrives (memrchr is vectorised), up to the (n+1)-th from the
  // end: those give both the stop and the selection, in one pass over the bytes.
  tail_buffer& buffer = job_buffer;
  std::size_t held = 0;
  std::uint64_t cursor = size;
  std::size_t newlines = 0;
  std::size_t nth = 0;       // distance from the end of the n-th LF from the end
  std::size_t nth_next = 0;  // ... and of the (n+1)-th
  std::size_t want = first_read_size(hint, n, chunk_size);
  while (cursor > 0 && newlines <= n) {
    if (abandoned()) return canceled;
    want = static_cast<std::size_t>(std::min<std::uint64_t>(want, cursor));
    cursor -= want;
    buffer.reserve_before(held, want);
    char* const at = buffer.end() - held - want;
    std::size_t got = 0;
    if (auto ec = pread_full(fd, at, want, cursor, got)) return ec;
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
  buffer.trim();
  return {};
}

tail_result to_tail_result(tail_text&& text) {
  tail_result result;
  result.final_newline = text.final_newline;
  result.error = text.error;
  result.lines.reserve(text.line_count);
  const std::string_view view(text.text);
  std::size_t begin = 0;
  for (std::size_t i = 0; i < text.line_count; ++i) {
    const std::size_t lf = i + 1 == text.line_count ? view.size() : view.find('\n', begin);
    result.lines.emplace_back(view.substr(begin, lf - begin));
    begin = lf + 1;
  }
  return result;
}

void directory_cache::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  failed_ = false;
}

std::pair<int, const char*> directory_cache::locate(const char* path) {
  const std::string_view whole(path);
  const std::size_t slash = whole.rfind('/');
  if (slash == std::string_view::npos || slash + 1 == whole.size()) return {AT_FDCWD, path};
  const std::string_view directory = whole.substr(0, slash == 0 ? 1 : slash);
  if (directory != directory_) {
    reset();
    directory_.assign(directory);
    return {AT_FDCWD, path};
  }
  if (fd_ < 0 && !failed_) {
    fd_ = ::open(directory_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    failed_ = fd_ < 0;
  }
  if (fd_ < 0) return {AT_FDCWD, path};
  return {fd_, path + slash + 1};
}

std::error_code tail_path_blocking(const char* path, std::size_t n, std::size_t chunk_size,
                                   const std::function<bool()>& abandoned, directory_cache& directories,
                                   tail_hint& hint, tail_text& out) {
  const auto [at, name] = directories.locate(path);
  int raw = ::openat(at, name, read_open_flags);
  for (int attempt = 0; raw < 0 && (errno == EMFILE || errno == ENFILE) && attempt < 2000; ++attempt) {
    if (abandoned()) return canceled;
    ::usleep(1000);
    raw = ::openat(at, name, read_open_flags);
  }
  if (raw < 0) return open_error(path, errno);
  const scoped_fd fd(raw);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return last_error();
  if (auto ec = check_regular_file(st)) return ec;
  try {
    return read_tail(fd.get(), static_cast<std::uint64_t>(st.st_size), n, chunk_size, abandoned, hint, out);
  } catch (const std::bad_alloc&) {
    // A chunk_size or n so large that the region read does not fit in memory.
    job_buffer.trim();
    out.text.clear();
    out.line_count = 0;
    return std::make_error_code(std::errc::not_enough_memory);
  }
}

// ---------------------------------------------------------------------------------------------
// tail_batch

tail_batch::tail_batch(runtime_impl& rt, std::vector<std::filesystem::path> paths, std::size_t n,
                       tail_options options)
    : runtime_(rt), paths_(std::move(paths)), n_(n), options_(options), results_(paths_.size()) {}

void tail_batch::start(completion done) {
  completion_ = std::move(done);
  const std::size_t count = paths_.size();
  const std::size_t threads = runtime_.thread_count();
  jobs_ = std::min({threads, count, options_.concurrency ? options_.concurrency : threads});
  // The batch completes once every file is finished and every job has ended (closed
  // the directory it held): the caller sees no descriptor of ours after completion.
  outstanding_.store(count + jobs_, std::memory_order_relaxed);
  if (jobs_ != 0) {
    first_worker_ = runtime_.first_worker_for(jobs_);
    for (std::size_t j = 0; j < jobs_; ++j) {
      runtime_.worker_at(first_worker_ + j).load.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!runtime_.register_operation(shared_from_this())) {
    // The runtime is shutting down: nothing may start (and no job will run).
    cancel();
    if (count == 0) complete();
    for (std::size_t j = 0; j < jobs_; ++j) release();
    return;
  }
  if (count == 0) {
    complete();
    return;
  }
  for (std::size_t j = 0; j < jobs_; ++j) {
    const std::size_t w = first_worker_ + j;
    boost::asio::post(runtime_.worker_at(w).context(), [self = shared_from_this(), w] { self->run_job(w); });
  }
}

void tail_batch::cancel() noexcept {
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
  // Files nobody claimed yet finish here, as cancelled; files being read notice the
  // flag before their next read and finish once closed.
  for (;;) {
    const std::size_t index = next_.fetch_add(1, std::memory_order_relaxed);
    if (index >= paths_.size()) break;
    finish(index, canceled);
  }
}

std::optional<std::size_t> tail_batch::claim() noexcept {
  if (stopping()) return std::nullopt;
  if (next_.load(std::memory_order_relaxed) >= paths_.size()) return std::nullopt;
  const std::size_t index = next_.fetch_add(1, std::memory_order_relaxed);
  if (index >= paths_.size()) return std::nullopt;
  return index;
}

void tail_batch::run_job(std::size_t worker) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
  const std::function<bool()> abandoned = [this] { return stopping(); };
  {
    tail_hint hint{needed_.load(std::memory_order_relaxed)};
    directory_cache directories;
    while (auto index = claim()) {
      tail_text& result = results_[*index];
      const auto ec = tail_path_blocking(paths_[*index].c_str(), n_, options_.chunk_size, abandoned,
                                         directories, hint, result);
      needed_.store(hint.needed, std::memory_order_relaxed);
      finish(*index, ec);
      if (std::chrono::steady_clock::now() >= deadline) {
        boost::asio::post(runtime_.worker_at(worker).context(),
                          [self = shared_from_this(), worker] { self->run_job(worker); });
        return;
      }
    }
  }
  release();  // this job has ended, its directory closed
}

void tail_batch::finish(std::size_t index, std::error_code error) {
  tail_text& result = results_[index];
  if (error) {
    result.text.clear();
    result.line_count = 0;
    result.final_newline = false;
  }
  result.error = error;
  release();
}

void tail_batch::release() {
  if (outstanding_.fetch_sub(1, std::memory_order_acq_rel) == 1) complete();
}

void tail_batch::complete() {
  for (std::size_t j = 0; j < jobs_; ++j) {
    runtime_.worker_at(first_worker_ + j).load.fetch_sub(1, std::memory_order_relaxed);
  }
  jobs_ = 0;
  runtime_.unregister_operation(this);
  auto done = std::move(completion_);
  done(stopping(), std::move(results_));
}

}  // namespace sky_async::detail
