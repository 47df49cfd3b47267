#include "tail/stream_log_engine.hpp"

#include "tail/tail_select.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <future>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

namespace sky_async::detail {

namespace {

using clock = std::chrono::steady_clock;

// The smallest read (what is new is usually a few lines) and the largest.
constexpr std::size_t min_read = std::size_t{64} * 1024;
constexpr std::size_t max_read = std::size_t{1024} * 1024;
// The most read in one turn on the worker: bounds the memory a stream holds while it goes
// through a large backlog (tail = nullopt of a big log), and lets other handlers in.
constexpr std::size_t turn_budget = std::size_t{4} * 1024 * 1024;
// Without inotify, how often a waiting stream looks at its file (SkyPilot's
// log_streamer sleeps as long).
constexpr auto poll_interval = std::chrono::milliseconds(100);
// With inotify, on a file system where events can be missed (NFS, SMB, FUSE, 9p: a change
// made by another machine raises no event), how often a waiting stream looks anyway.
constexpr auto recheck_interval = std::chrono::milliseconds(1000);

// statfs f_type of the file systems where inotify sees every change (local ones: the
// kernel makes every change itself), as in _tail/inotify_hub.py.
bool inotify_reliable(const std::string& directory) noexcept {
  struct statfs fs{};
  if (::statfs(directory.c_str(), &fs) != 0) return false;
  switch (static_cast<std::uint32_t>(fs.f_type)) {
    case 0xEF53U:      // ext2, ext3, ext4
    case 0x58465342U:  // xfs
    case 0x9123683EU:  // btrfs
    case 0x01021994U:  // tmpfs
    case 0x858458F6U:  // ramfs
    case 0x794C7630U:  // overlayfs (containers)
    case 0x2FC12FC1U:  // zfs
    case 0xF2F52010U:  // f2fs
    case 0xCA451A4EU:  // bcachefs
    case 0x52654973U:  // reiserfs
    case 0x3153464AU:  // jfs
      return true;
    default:
      return false;
  }
}

boost::system::error_code errno_code(int error) noexcept { return {error, boost::system::system_category()}; }

// Where the last `lines` lines of the file start (its end for 0): tail_files's selection.
std::uint64_t backlog_start(int fd, std::uint64_t size, std::size_t lines,
                            const std::filesystem::path& path) {
  if (lines == 0 || size == 0) return size;
  const tail_pread pread = [fd](char* buffer, std::size_t want, std::uint64_t offset, std::size_t& got) {
    got = 0;
    while (got < want) {
      const ssize_t n = ::pread(fd, buffer + got, want - got, static_cast<off_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return std::error_code(errno, std::system_category());
      }
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    return std::error_code();
  };
  tail_hint hint;
  tail_selection selection;
  if (auto ec = select_tail(pread, size, lines, 8192, [] { return false; }, hint, selection)) {
    throw std::filesystem::filesystem_error("stream_log", path, ec);
  }
  if (selection.line_count == 0) return size;
  const std::uint64_t length = selection.text.size() + (selection.final_newline ? 1 : 0);
  return size > length ? size - length : 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// next_chunk_request

void next_chunk_request::start(completion done) {
  done_ = std::move(done);
  engine_->serve(shared_from_this());
}

void next_chunk_request::cancel() noexcept {
  cancelled_.store(true);
  engine_->cancel();
}

void next_chunk_request::complete(bool cancelled, log_chunk chunk) {
  auto done = std::move(done_);
  done(cancelled, std::move(chunk));
}

// ---------------------------------------------------------------------------------------------
// log_stream_engine

log_stream_engine::log_stream_engine(runtime_impl& rt, const std::filesystem::path& path,
                                     const stream_log_options& options)
    : batch_operation(rt), display_path_(path), options_(options) {
  struct stat st{};
  if (auto ec = open_regular_file(path.c_str(), [] { return false; }, fd_, st)) {
    throw std::filesystem::filesystem_error("stream_log", path, ec);
  }
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  offset_ = options.tail ? backlog_start(fd_.get(), size, *options.tail, path) : 0;
  ending_ = !options.follow;
  const std::filesystem::path absolute = std::filesystem::absolute(path).lexically_normal();
  watched_path = path.string();
  directory = absolute.parent_path().string();
  name = absolute.filename().string();
  worker_ = &rt.worker_at(0);  // where the runtime's inotify_hub lives
}

void log_stream_engine::open() {
  start([this](bool, bool) {
    {
      std::lock_guard lock(closed_mutex_);
      closed_signalled_ = true;
    }
    closed_changed_.notify_all();
  });
  if (!registered_.load()) {
    throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                            "stream_log: runtime shut down");
  }
}

void log_stream_engine::start(completion done) {
  if (launch(std::move(done), 0, 1)) {
    registered_.store(true);
    boost::asio::post(worker_->context(), [self = shared_from_this()] { self->begin(); });
  } else {
    fd_.reset();
    piece_done();  // the stream never starts
  }
  started();
}

// post() may only throw bad_alloc, where terminating is the right outcome.
// NOLINTNEXTLINE(bugprone-exception-escape)
void log_stream_engine::stop() noexcept {
  // Before registration (launch() refused it), start() itself ends the stream.
  if (registered_.load()) {
    boost::asio::post(worker_->context(), [self = shared_from_this()] { self->close_on_worker(); });
  }
}

void log_stream_engine::close_by_user() noexcept {
  closed_by_user_.store(true);
  cancel();
}

void log_stream_engine::wait_closed() {
  std::unique_lock lock(closed_mutex_);
  // Closed already (by the runtime's shutdown, perhaps: its workers may be gone).
  if (closed_signalled_) return;
  if (worker_->context().get_executor().running_in_this_thread()) return;
  closed_changed_.wait(lock, [this] { return closed_signalled_; });
}

void log_stream_engine::serve(std::shared_ptr<next_chunk_request> request) {
  boost::asio::post(worker_->context(), [self = shared_from_this(), request = std::move(request)] {
    self->serve_on_worker(request);
  });
}

void log_stream_engine::finish() {
  boost::asio::post(worker_->context(), [self = shared_from_this()] { self->finish_on_worker(); });
}

void log_stream_engine::begin() {
  if (closed_) return;
  timer_.emplace(worker_->context());
  // Before the first read: whatever changes after it wakes the stream.
  if (ending_) return;
  subscribed_ = worker_->local<inotify_hub>().subscribe(*this);
  if (!subscribed_) {
    recheck_ = poll_interval;
  } else if (!inotify_reliable(directory)) {
    recheck_ = recheck_interval;
  }
}

void log_stream_engine::close_on_worker() {
  if (closed_) return;
  closed_ = true;
  release();
  if (request_) {
    auto request = std::move(request_);
    request->complete(request->cancel_requested() || !closed_by_user_.load(), {boost::asio::error::eof, {}});
  }
  piece_done();
}

void log_stream_engine::release() {
  if (released_) return;
  released_ = true;
  waiting_ = false;
  ++wait_generation_;
  timer_.reset();
  if (subscribed_) worker_->local<inotify_hub>().unsubscribe(*this);
  subscribed_ = false;
  fd_.reset();
  held_.clear();
  held_.shrink_to_fit();
  pending_.clear();
  pending_.shrink_to_fit();
  pending_pos_ = 0;
}

void log_stream_engine::serve_on_worker(const std::shared_ptr<next_chunk_request>& request) {
  if (closed_ || released_) {
    request->complete(request->cancel_requested(), {boost::asio::error::eof, {}});
    return;
  }
  if (request_) {
    request->complete(false, {boost::asio::error::already_started, {}});
    return;
  }
  request_ = request;
  advance();
}

void log_stream_engine::finish_on_worker() {
  if (ending_ || released_) return;
  ending_ = true;
  need_read_ = true;
  if (waiting_) {
    stop_waiting();
    advance();
  }
}

void log_stream_engine::on_change() {
  auto self = shared_from_this();  // a wake-up may end the stream
  woken_ = true;
  if (waiting_) {
    stop_waiting();
    advance();
  }
}

void log_stream_engine::stop_waiting() {
  waiting_ = false;
  ++wait_generation_;
  if (timer_) timer_->cancel();
}

void log_stream_engine::advance() {
  while (request_ && !released_) {
    if (pending_size() >= options_.max_chunk_bytes) return deliver(take_chunk());
    if (woken_) {
      woken_ = false;
      need_read_ = true;
    }
    if (need_read_ || behind_) {
      need_read_ = false;
      read_some();
      if (read_error_) return end(read_error_);
      if (behind_ && pending_size() < options_.max_chunk_bytes) {
        // More to read: the next turn comes after the handlers queued meanwhile.
        boost::asio::post(worker_->context(), [self = shared_from_this()] { self->advance(); });
        return;
      }
      continue;
    }
    if (ending_) {
      if (!partial_taken_) {
        partial_taken_ = true;
        pending_ += held_;
        held_.clear();
      }
      if (pending_size() != 0) return deliver(take_chunk());
      return end({});
    }
    if (pending_size() == 0) return wait_until(std::nullopt);
    if (!last_yield_) return deliver(take_chunk());
    const auto deadline = *last_yield_ + options_.max_delay;
    if (clock::now() >= deadline) return deliver(take_chunk());
    return wait_until(deadline);
  }
}

void log_stream_engine::wait_until(std::optional<clock::time_point> deadline) {
  if (recheck_) {
    const auto look = clock::now() + *recheck_;
    deadline = deadline ? std::min(*deadline, look) : look;
  }
  waiting_ = true;
  if (!deadline) return;
  timer_->expires_at(*deadline);
  timer_->async_wait(
      [self = shared_from_this(), generation = wait_generation_](const boost::system::error_code& ec) {
        if (ec || generation != self->wait_generation_ || !self->waiting_) return;
        self->waiting_ = false;
        // A deadline for a chunk needs no read, but a poll does, and a read costs little.
        self->need_read_ = true;
        self->advance();
      });
}

void log_stream_engine::deliver(std::string chunk) {
  last_yield_ = clock::now();
  auto request = std::move(request_);
  request->complete(false, {{}, std::move(chunk)});
}

void log_stream_engine::end(boost::system::error_code error) {
  auto request = std::move(request_);
  release();
  request->complete(false, {error ? error : boost::system::error_code(boost::asio::error::eof), {}});
}

std::string log_stream_engine::take_chunk() {
  const std::size_t available = pending_size();
  const std::size_t max = options_.max_chunk_bytes;
  std::size_t length = available;
  if (available > max) {
    // As many whole lines as fit, at least one.
    const std::size_t last = pending_.rfind('\n', pending_pos_ + max - 1);
    if (last != std::string::npos && last >= pending_pos_) {
      length = last + 1 - pending_pos_;
    } else {
      const std::size_t first = pending_.find('\n', pending_pos_);
      length = first == std::string::npos ? available : first + 1 - pending_pos_;
    }
  }
  std::string chunk = pending_.substr(pending_pos_, length);
  pending_pos_ += length;
  if (pending_pos_ == pending_.size()) {
    pending_.clear();
    pending_pos_ = 0;
  } else if (pending_pos_ > pending_.size() / 2) {
    pending_.erase(0, pending_pos_);
    pending_pos_ = 0;
  }
  return chunk;
}

void log_stream_engine::feed(const char* data, std::size_t size) {
  const std::string_view bytes(data, size);
  const std::size_t last = bytes.rfind('\n');
  if (last == std::string_view::npos) {
    held_.append(bytes);
    return;
  }
  pending_ += held_;
  pending_.append(bytes.substr(0, last + 1));
  held_.assign(bytes.substr(last + 1));
}

void log_stream_engine::read_some() {
  woken_ = false;  // what this read finds covers the events so far
  behind_ = false;
  std::size_t budget = turn_budget;
  if (!read_new(budget)) {
    behind_ = !read_error_;
    return;
  }
  struct stat st{};
  // Gone (deleted or moved away, a rotation in progress): keep reading the old file
  // until a new one appears.
  if (::stat(watched_path.c_str(), &st) != 0) return;
  if (st.st_dev != dev_ || st.st_ino != ino_) switch_file(budget);
}

bool log_stream_engine::read_new(std::size_t& budget) {
  struct stat st{};
  if (::fstat(fd_.get(), &st) != 0) {
    read_error_ = errno_code(errno);
    return false;
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < offset_) {  // truncated: start again from the top, dropping the partial line
    offset_ = 0;
    held_.clear();
  }
  std::vector<char> buffer;
  for (;;) {
    const std::size_t want = std::clamp<std::size_t>(
        size > offset_ ? static_cast<std::size_t>(size - offset_) : 0, min_read, max_read);
    buffer.resize(std::min(want, budget + 1));
    const ssize_t got = ::pread(fd_.get(), buffer.data(), buffer.size(), static_cast<off_t>(offset_));
    if (got < 0) {
      if (errno == EINTR) continue;
      read_error_ = errno_code(errno);
      return false;
    }
    if (got == 0) return true;
    const auto n = static_cast<std::size_t>(got);
    offset_ += n;
    feed(buffer.data(), n);
    if (n > budget) return false;  // the file grows while we read: the rest next turn
    budget -= n;
    if (budget == 0) return false;
  }
}

void log_stream_engine::switch_file(std::size_t& budget) {
  scoped_fd fd;
  struct stat st{};
  if (open_regular_file_at(AT_FDCWD, watched_path.c_str(), watched_path.c_str(), fd, st)) {
    return;  // gone again, or not a regular file (yet): try at the next wake-up
  }
  // The old file to its end first; its partial line can never be completed.
  if (!read_new(budget)) {
    behind_ = !read_error_;
    return;
  }
  if (!held_.empty()) {
    pending_ += held_;
    pending_ += '\n';
    held_.clear();
  }
  fd_.reset(fd.release());
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  offset_ = 0;
  if (subscribed_) {
    worker_->local<inotify_hub>().watch_file(*this);
    need_read_ = true;  // what changed before the new watch
  }
  if (!read_new(budget)) behind_ = !read_error_;
}

inotify_hub::counts log_watch_counts(runtime& rt) {
  worker& first = impl_of(rt).worker_at(0);
  std::promise<inotify_hub::counts> counts;
  auto result = counts.get_future();
  boost::asio::post(first.context(),
                    [&first, &counts] { counts.set_value(first.local<inotify_hub>().watch_counts()); });
  return result.get();
}

}  // namespace sky_async::detail
