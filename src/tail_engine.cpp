#include "tail_engine.hpp"

#include "file_reader.hpp"
#include "tail_select.hpp"

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

std::error_code read_tail(int fd, std::uint64_t size, std::size_t n, std::size_t chunk_size,
                          const std::function<bool()>& abandoned, tail_result& out) {
  const tail_pread read_at = [fd](char* buffer, std::size_t want, std::uint64_t offset, std::size_t& got) {
    return pread_full(fd, buffer, want, offset, got);
  };
  tail_selection selection;
  const auto ec = select_tail(read_at, size, n, chunk_size, abandoned, selection);
  out.lines = std::move(selection.lines);
  out.final_newline = selection.final_newline;
  return ec;
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
