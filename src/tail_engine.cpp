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

std::error_code read_tail(int fd, std::uint64_t size, std::size_t n, std::size_t chunk_size,
                          const std::function<bool()>& abandoned, tail_result& out) {
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
    if (auto ec = pread_full(fd, buffer.data() + begin - want, want, cursor, got)) return ec;
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

std::error_code tail_path_blocking(const char* path, std::size_t n, std::size_t chunk_size,
                                   const std::function<bool()>& abandoned, tail_result& out) {
  scoped_fd fd;
  struct stat st{};
  if (auto ec = open_regular_file(path, abandoned, fd, st)) return ec;
  try {
    return read_tail(fd.get(), static_cast<std::uint64_t>(st.st_size), n, chunk_size, abandoned, out);
  } catch (const std::bad_alloc&) {
    // A chunk_size or n so large that the region read does not fit in memory.
    out.lines.clear();
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
  outstanding_.store(count, std::memory_order_relaxed);
  const std::size_t threads = runtime_.thread_count();
  jobs_ = std::min({threads, count, options_.concurrency ? options_.concurrency : threads});
  if (jobs_ != 0) {
    first_worker_ = runtime_.first_worker_for(jobs_);
    for (std::size_t j = 0; j < jobs_; ++j) {
      runtime_.worker_at(first_worker_ + j).load.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!runtime_.register_operation(shared_from_this())) {
    // The runtime is shutting down: nothing may start.
    cancel();
    if (count == 0) complete();
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
  while (auto index = claim()) {
    tail_result& result = results_[*index];
    const auto ec = tail_path_blocking(paths_[*index].c_str(), n_, options_.chunk_size, abandoned, result);
    finish(*index, ec);
    if (std::chrono::steady_clock::now() >= deadline) {
      boost::asio::post(runtime_.worker_at(worker).context(),
                        [self = shared_from_this(), worker] { self->run_job(worker); });
      return;
    }
  }
}

void tail_batch::finish(std::size_t index, std::error_code error) {
  tail_result& result = results_[index];
  if (error) {
    result.lines.clear();
    result.final_newline = false;
  }
  result.error = error;
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
