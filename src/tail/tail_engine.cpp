#include "tail/tail_engine.hpp"

#include "core/fd_budget.hpp"
#include "core/file_reader.hpp"
#include "tail/tail_select.hpp"

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

}  // namespace

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
  if (fd_ >= 0) {
    ::close(fd_);
    fd_released();
  }
  fd_ = -1;
  failed_ = false;
}

bool directory_cache::give_up() noexcept {
  const bool closed = fd_ >= 0;
  if (closed) {
    ::close(fd_);
    fd_released();
  }
  fd_ = -1;
  failed_ = true;
  return closed;
}

std::pair<int, const char*> directory_cache::locate(const char* path) {
  if (!enabled_) return {AT_FDCWD, path};
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

std::error_code tail_path_once(const char* path, std::size_t n, std::size_t chunk_size,
                               const std::function<bool()>& abandoned, directory_cache& directories,
                               fd_retry& retry, tail_hint& hint, tail_text& out) {
  const auto [at, name] = directories.locate(path);
  scoped_fd fd;
  struct stat st{};
  retry.attempting();
  if (auto ec = open_regular_file_at(at, name, path, fd, st)) return ec;
  const tail_pread read_at = [raw = fd.get()](char* buffer, std::size_t want, std::uint64_t offset,
                                              std::size_t& got) {
    return pread_full(raw, buffer, want, offset, got);
  };
  try {
    // A size of 0 is also what /proc and /sys files report, content or not: read forwards.
    if (st.st_size == 0) return select_tail_unsized(read_at, n, chunk_size, abandoned, hint, out);
    return select_tail(read_at, static_cast<std::uint64_t>(st.st_size), n, chunk_size, abandoned, hint, out);
  } catch (const std::bad_alloc&) {
    // A chunk_size or n so large that the region read does not fit in memory.
    out.text.clear();
    out.line_count = 0;
    return std::make_error_code(std::errc::not_enough_memory);
  }
}

// ---------------------------------------------------------------------------------------------
// tail_batch

tail_batch::tail_batch(runtime_impl& rt, std::vector<std::filesystem::path> paths, std::size_t n,
                       tail_options options)
    : batch_operation(rt), paths_(std::move(paths)), n_(n), options_(options), results_(paths_.size()) {}

void tail_batch::start(completion done) {
  const std::size_t count = paths_.size();
  const std::size_t threads = runtime().thread_count();
  const std::size_t jobs = std::min({threads, count, options_.concurrency ? options_.concurrency : threads});
  // Each job holds one file at a time; what the bound leaves over lets some of them keep
  // their directory open too (with the default, every one).
  const std::size_t descriptors = options_.concurrency ? options_.concurrency : 2 * jobs;
  const std::size_t directory_holders = std::min(jobs, descriptors - jobs);
  jobs_.resize(jobs);
  for (std::size_t j = 0; j < jobs; ++j) jobs_[j].holds_directory = j < directory_holders;
  if (!launch(std::move(done), jobs, count + jobs)) {
    // Nothing may start: the files finished as cancelled in stop(), and no job will run.
    for (std::size_t j = 0; j < jobs; ++j) piece_done();
  } else {
    for (std::size_t j = 0; j < jobs; ++j) {
      boost::asio::post(worker_at(j).context(), [self = shared_from_this(), j] { self->run_job(j); });
    }
  }
  started();
}

void tail_batch::stop() noexcept {
  for (;;) {
    const std::size_t index = next_.fetch_add(1, std::memory_order_relaxed);
    if (index >= paths_.size()) break;
    finish(index, canceled);
  }
}

std::optional<std::size_t> tail_batch::claim() noexcept {
  if (cancelled()) return std::nullopt;
  if (next_.load(std::memory_order_relaxed) >= paths_.size()) return std::nullopt;
  const std::size_t index = next_.fetch_add(1, std::memory_order_relaxed);
  if (index >= paths_.size()) return std::nullopt;
  return index;
}

void tail_batch::run_job(std::size_t j) {
  job& self_job = jobs_[j];
  worker& w = worker_at(j);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
  const std::function<bool()> abandoned = [this] { return cancelled(); };
  {
    tail_hint hint{needed_.load(std::memory_order_relaxed)};
    directory_cache directories(self_job.holds_directory);
    for (;;) {
      std::optional<std::size_t> index = std::exchange(self_job.waiting, std::nullopt);
      if (index && cancelled()) {
        finish(*index, canceled);
        index.reset();
      }
      if (!index) {
        index = claim();
        if (!index) break;
        self_job.retry = {};
      }
      tail_text& result = results_[*index];
      const auto ec = tail_path_once(paths_[*index].c_str(), n_, options_.chunk_size, abandoned, directories,
                                     self_job.retry, hint, result);
      if (ec && ec.category() == std::system_category() && out_of_descriptors(ec.value())) {
        self_job.waiting = index;
        // The directory held beside it is a descriptor that this very open can have.
        if (directories.give_up()) continue;
        if (self_job.retry.should_retry(ec.value())) {
          needed_.store(hint.needed, std::memory_order_relaxed);
          if (fd_waiter* waits = w.fd_waits()) {
            waits->wait(self_job.retry, [self = shared_from_this(), j] { self->run_job(j); });
            return;
          }
          self_job.retry.wait();
          continue;
        }
        self_job.waiting.reset();
      }
      needed_.store(hint.needed, std::memory_order_relaxed);
      finish(*index, ec);
      if (std::chrono::steady_clock::now() >= deadline) {
        boost::asio::post(w.context(), [self = shared_from_this(), j] { self->run_job(j); });
        return;
      }
    }
  }
  piece_done();  // this job has ended, its directory closed
}

void tail_batch::finish(std::size_t index, std::error_code error) {
  tail_text& result = results_[index];
  if (error) {
    result.text.clear();
    result.line_count = 0;
    result.final_newline = false;
  }
  result.error = error;
  piece_done();
}

}  // namespace sky_async::detail
