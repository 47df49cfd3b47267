// One inotify instance per runtime, shared by every log_stream: the readers of
// sky_async::log_stream wake up on its events. It lives on the runtime's first worker
// (worker::local), whose io_context watches its descriptor, and is touched only there.
//
// One instance per reader would not scale: fs.inotify.max_user_instances is 128 by
// default. Here each file has one watch however many readers follow it (the kernel gives
// the same watch descriptor for every inotify_add_watch of one inode on one instance, so
// readers are counted per watch descriptor and the watch removed with the last one), and
// each directory one watch, whose events wake only the readers of the name they concern
// (a rotation: the name now names another file). The instance is closed when its last
// reader leaves, so that an idle runtime holds no descriptor for it. A lost event queue
// (IN_Q_OVERFLOW) wakes every reader. The C++ twin of python/sky_async/_tail/inotify_hub.py.
#pragma once

#include "core/runtime_impl.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace sky_async::detail {

// One reader's interest in a file: `path`, and its name in its directory.
class log_watcher {
 public:
  // Something happened to the file or to its name; on the hub's worker thread.
  virtual void on_change() = 0;

  std::string watched_path;  // as opened
  std::string directory;     // the absolute directory holding it
  std::string name;          // its name there
  int file_wd = -1;
  int dir_wd = -1;

 protected:
  log_watcher() = default;
  ~log_watcher() = default;
  log_watcher(const log_watcher&) = default;
  log_watcher& operator=(const log_watcher&) = default;
};

class inotify_hub {
 public:
  explicit inotify_hub(worker& w) noexcept : worker_(w) {}

  // Watches the reader's directory and file; false where inotify is unavailable (ENOSYS,
  // the instance or watch limits, a directory it may not read): the reader then polls.
  bool subscribe(log_watcher& watcher);
  // Watches the file the reader's path names now (after a rotation); a missing one is
  // seen coming back through the directory's watch.
  void watch_file(log_watcher& watcher);
  void unsubscribe(log_watcher& watcher);

  struct counts {
    std::size_t instances = 0;  // 0 or 1
    std::size_t file_watches = 0;
    std::size_t directory_watches = 0;
    std::size_t readers = 0;
  };
  counts watch_counts() const noexcept;

 private:
  bool open();
  void close();
  void wait();
  void dispatch();
  void drop_file(log_watcher& watcher);

  worker& worker_;
  std::optional<boost::asio::posix::stream_descriptor> fd_;
  std::unordered_map<int, std::unordered_set<log_watcher*>> files_;  // file wd -> readers
  // directory wd -> name -> readers
  std::unordered_map<int, std::unordered_map<std::string, std::unordered_set<log_watcher*>>> dirs_;
  std::size_t readers_ = 0;
  // Tells the wait of a closed instance from the wait of the next one.
  std::uint64_t generation_ = 0;
};

// Tests only: makes every new log_stream poll, as where inotify is unavailable.
void force_log_polling(bool on) noexcept;

}  // namespace sky_async::detail
