#include "tail/inotify_hub.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include <sys/inotify.h>
#include <unistd.h>

namespace sky_async::detail {

namespace {

// The file was written to, moved, deleted, or its link count or mode changed.
constexpr std::uint32_t file_events = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF;
// A name in the directory came or went (a rotation), or the directory itself moved.
constexpr std::uint32_t directory_events =
    IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_MOVE_SELF;

std::atomic<bool> polling_forced{false};

void add_all(const std::unordered_set<log_watcher*>& readers, std::unordered_set<log_watcher*>& woken) {
  woken.insert(readers.begin(), readers.end());
}

}  // namespace

void force_log_polling(bool on) noexcept { polling_forced.store(on, std::memory_order_relaxed); }

bool inotify_hub::open() {
  if (polling_forced.load(std::memory_order_relaxed)) return false;
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return false;
  fd_.emplace(worker_.context(), fd);
  ++generation_;
  wait();
  return true;
}

void inotify_hub::close() {
  files_.clear();
  dirs_.clear();
  // Destroying it closes the descriptor (and every watch) and aborts its wait.
  fd_.reset();
  ++generation_;
}

bool inotify_hub::subscribe(log_watcher& watcher) {
  if (!fd_ && !open()) return false;
  const int wd = ::inotify_add_watch(fd_->native_handle(), watcher.directory.c_str(), directory_events);
  if (wd < 0) {
    if (readers_ == 0) close();
    return false;
  }
  watcher.dir_wd = wd;
  dirs_[wd][watcher.name].insert(&watcher);
  ++readers_;
  watch_file(watcher);
  return true;
}

void inotify_hub::watch_file(log_watcher& watcher) {
  drop_file(watcher);
  if (!fd_) return;
  const int wd = ::inotify_add_watch(fd_->native_handle(), watcher.watched_path.c_str(), file_events);
  if (wd >= 0) files_[wd].insert(&watcher);
  watcher.file_wd = wd;
}

void inotify_hub::drop_file(log_watcher& watcher) {
  const int wd = watcher.file_wd;
  watcher.file_wd = -1;
  const auto it = files_.find(wd);
  if (it == files_.end()) return;  // never watched, or dropped by the kernel
  it->second.erase(&watcher);
  if (it->second.empty()) {
    files_.erase(it);
    ::inotify_rm_watch(fd_->native_handle(), wd);
  }
}

void inotify_hub::unsubscribe(log_watcher& watcher) {
  if (!fd_) return;
  drop_file(watcher);
  const auto dir = dirs_.find(watcher.dir_wd);
  if (dir != dirs_.end()) {
    const auto named = dir->second.find(watcher.name);
    if (named != dir->second.end()) {
      named->second.erase(&watcher);
      if (named->second.empty()) dir->second.erase(named);
    }
    if (dir->second.empty()) {
      dirs_.erase(dir);
      ::inotify_rm_watch(fd_->native_handle(), watcher.dir_wd);
    }
  }
  watcher.dir_wd = -1;
  if (--readers_ == 0) close();
}

inotify_hub::counts inotify_hub::watch_counts() const noexcept {
  return {fd_ ? 1U : 0U, files_.size(), dirs_.size(), readers_};
}

void inotify_hub::wait() {
  fd_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  [this, generation = generation_](const boost::system::error_code& ec) {
                    if (ec || generation != generation_) return;
                    dispatch();
                    // A reader woken may have left, and closed the instance with it.
                    if (fd_ && generation == generation_) wait();
                  });
}

void inotify_hub::dispatch() {
  std::unordered_set<log_watcher*> woken;
  alignas(inotify_event) std::array<char, std::size_t{64} * 1024> buffer{};
  for (;;) {
    const ssize_t got = ::read(fd_->native_handle(), buffer.data(), buffer.size());
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      break;  // EAGAIN: every event read
    }
    std::size_t offset = 0;
    while (offset + sizeof(inotify_event) <= static_cast<std::size_t>(got)) {
      inotify_event event{};
      std::memcpy(&event, buffer.data() + offset, sizeof event);
      const char* name = buffer.data() + offset + sizeof(inotify_event);
      offset += sizeof(inotify_event) + event.len;
      if ((event.mask & IN_Q_OVERFLOW) != 0) {  // events were lost: every reader looks
        for (const auto& [wd, readers] : files_) add_all(readers, woken);
        for (const auto& [wd, names] : dirs_) {
          for (const auto& [n, readers] : names) add_all(readers, woken);
        }
        continue;
      }
      if (const auto file = files_.find(event.wd); file != files_.end()) {
        add_all(file->second, woken);
        if ((event.mask & IN_IGNORED) != 0) {  // the kernel dropped the watch
          for (log_watcher* reader : file->second) reader->file_wd = -1;
          files_.erase(file);
        }
        continue;
      }
      const auto dir = dirs_.find(event.wd);
      if (dir == dirs_.end()) continue;
      if ((event.mask & (IN_IGNORED | IN_MOVE_SELF)) != 0) {  // the directory went away or moved
        for (const auto& [n, readers] : dir->second) add_all(readers, woken);
        if ((event.mask & IN_IGNORED) != 0) {
          for (const auto& [n, readers] : dir->second) {
            for (log_watcher* reader : readers) reader->dir_wd = -1;
          }
          dirs_.erase(dir);
        }
        continue;
      }
      if (event.len == 0) continue;
      const auto named = dir->second.find(std::string(name, ::strnlen(name, event.len)));
      if (named != dir->second.end()) add_all(named->second, woken);
    }
  }
  // Woken after the routing: a reader's wake-up may watch its new file (a rotation).
  for (log_watcher* reader : std::vector<log_watcher*>(woken.begin(), woken.end())) reader->on_change();
}

}  // namespace sky_async::detail
