#include "scan/scan_engine.hpp"

#include "core/batch_operation.hpp"
#include "core/fd_budget.hpp"
#include "text/py_literals.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <queue>
#include <unordered_set>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sky_async::detail {

namespace {

// No O_NOFOLLOW here: a symlink named as the root, reached with follow_symlinks, or
// inside a long path opened piecewise is followed; directories found by listing add it.
constexpr int dir_open_flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;

// getdents64 buffer per worker: ~1,000 entries of short names per call.
constexpr std::size_t dirent_buffer_size = std::size_t{32} * 1024;

std::error_code errno_code(int value) noexcept { return {value, std::system_category()}; }

class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~unique_fd() { reset(); }
  void reset() noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_released();
    }
    fd_ = -1;
  }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Opens a directory by path. Paths longer than the kernel accepts in one call (the
// siblings pushed from deep in a 10,000-level chain) are opened in pieces under
// PATH_MAX, each relative to the previous one. errno is set on failure.
unique_fd open_directory_path(const std::string& path, bool follow_last) {
  const int last_flags = dir_open_flags | (follow_last ? 0 : O_NOFOLLOW);
  if (path.size() < PATH_MAX) return unique_fd(::open(path.c_str(), last_flags));
  unique_fd dir;
  std::size_t start = 0;
  while (start < path.size()) {
    std::size_t end = path.size();
    bool last = true;
    if (end - start >= PATH_MAX) {
      end = path.rfind('/', start + PATH_MAX - 1);
      if (end == std::string::npos || end < start) {
        errno = ENAMETOOLONG;
        return {};
      }
      last = false;
    }
    std::string piece = end == start ? std::string("/") : path.substr(start, end - start);
    unique_fd next(::openat(dir ? dir.get() : AT_FDCWD, piece.c_str(), last ? last_flags : dir_open_flags));
    if (!next) return {};
    dir = std::move(next);
    start = end + 1;
    // A piece after the first must be relative, or openat would ignore the directory.
    while (start < path.size() && path[start] == '/') ++start;
  }
  return dir;
}

// Out of descriptors (EMFILE/ENFILE): other work's files close soon, so the open waits
// for one (retry_while_out_of_descriptors, fd_budget.hpp), as the hash and tail engines
// do, instead of reporting a readable directory as unreadable (or failing the whole scan
// at its root) while a concurrent batch holds the descriptors. errno is that of the last
// attempt.
template <class Open, class Stopped>
unique_fd open_when_descriptors_free(Open open, Stopped stopped) {
  unique_fd fd;
  const std::error_code error = retry_while_out_of_descriptors(
      [&] {
        fd = open();
        return fd ? std::error_code() : errno_code(errno);
      },
      stopped);
  if (error) errno = error.value();
  return fd;
}

// As os.path.join: no separator is added after one that is already there.
std::string join_path(const std::string& dir, std::string_view name) {
  std::string path;
  path.reserve(dir.size() + 1 + name.size());
  path += dir;
  if (!dir.empty() && dir.back() != '/') path += '/';
  path += name;
  return path;
}

struct dir_id {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const dir_id&) const = default;
};

struct dir_id_hash {
  std::size_t operator()(const dir_id& id) const noexcept {
    return std::hash<std::uint64_t>()(static_cast<std::uint64_t>(id.ino) * 0x9e3779b97f4a7c15ULL ^
                                      static_cast<std::uint64_t>(id.dev));
  }
};

// A directory as reached, and the directories above it: a symlink to any of them is a
// loop. Shared by the pending subdirectories of a directory, so it costs one node per
// directory that still has pending work below it.
struct dir_node {
  dir_id id;
  std::shared_ptr<const dir_node> parent;

  dir_node(dir_id i, std::shared_ptr<const dir_node> p) : id(i), parent(std::move(p)) {}
  dir_node(const dir_node&) = delete;
  dir_node& operator=(const dir_node&) = delete;
  // Released by the plain recursive destructor: unlinking the chain iteratively would need
  // use_count(), which does not synchronise with other threads' releases (ThreadSanitizer
  // reports it). A release recurses once per level (about 100 bytes of stack each: a
  // 10,000-deep tree uses about 1 MiB of a worker's 8 MiB stack).
  ~dir_node() = default;

  bool contains(dir_id wanted) const noexcept {
    for (const dir_node* node = this; node != nullptr; node = node->parent.get()) {
      if (node->id == wanted) return true;
    }
    return false;
  }
};

dir_id id_of(const struct stat& st) noexcept { return {st.st_dev, st.st_ino}; }

// The hook set by set_scan_entry_hook (null when none); scanners copy it when they are made.
std::mutex& entry_hook_mutex() {
  static std::mutex mutex;
  return mutex;
}
std::shared_ptr<const scan_entry_hook>& entry_hook_locked() {
  static std::shared_ptr<const scan_entry_hook> hook;
  return hook;
}
std::shared_ptr<const scan_entry_hook> current_entry_hook() {
  std::lock_guard lock(entry_hook_mutex());
  return entry_hook_locked();
}

// Listed, then gone when stat'ed or opened: removed (ENOENT), or a directory replaced by a
// file or a symlink (ENOTDIR from an open with O_DIRECTORY).
bool vanished_since_listed(int error) noexcept { return error == ENOENT || error == ENOTDIR; }

// The process's effective credentials, to tell from a stat result whether a file is
// readable without a faccessat per file; only a "no" is confirmed with faccessat (which
// also sees ACLs that grant more than the mode bits).
class credentials {
 public:
  credentials() : uid_(::geteuid()), gid_(::getegid()) {
    const int count = ::getgroups(0, nullptr);
    if (count > 0) {
      groups_.resize(static_cast<std::size_t>(count));
      groups_.resize(static_cast<std::size_t>(std::max(0, ::getgroups(count, groups_.data()))));
    }
  }

  // CAP_DAC_OVERRIDE lets root read any file, whatever its mode.
  bool may_read(const struct stat& st) const noexcept {
    if (uid_ == 0) return true;
    if (st.st_uid == uid_) return (st.st_mode & S_IRUSR) != 0;
    if (st.st_gid == gid_ || std::find(groups_.begin(), groups_.end(), st.st_gid) != groups_.end()) {
      return (st.st_mode & S_IRGRP) != 0;
    }
    return (st.st_mode & S_IROTH) != 0;
  }

 private:
  uid_t uid_;
  gid_t gid_;
  std::vector<gid_t> groups_;
};

bool problem_before(const scan_problem& a, const scan_problem& b) noexcept {
  const int order = a.path.compare(b.path);
  return order < 0 || (order == 0 && a.kind < b.kind);
}

// Bigger first, then by path.
bool file_before(const scanned_file& a, const scanned_file& b) noexcept {
  return a.size > b.size || (a.size == b.size && a.path < b.path);
}

// A found entry: the path is built only when something keeps it.
struct entry_ref {
  const std::string* dir;  // nullptr for the root, whose name is its path
  std::string_view name;
  int dir_fd;
  const char* at_name;  // what *at() calls take with dir_fd

  std::string path() const { return dir != nullptr ? join_path(*dir, name) : std::string(name); }
};

// One piece (the whole scan), no load: it runs on every worker that has a directory to
// list, and ends when they are all idle with nothing left to list (drained()).
class tree_scanner final : public batch_operation<tree_scanner, tree_scan> {
 public:
  tree_scanner(runtime_impl& rt, std::string root, const scan_options& options)
      : batch_operation(rt),
        root_(std::move(root)),
        options_(options),
        excluded_(options.excluded.begin(), options.excluded.end()),
        relative_start_(root_.size() + (root_.empty() || root_.back() != '/' ? 1 : 0)),
        entry_hook_(current_entry_hook()) {}

  void start(completion done) override {
    participants_ = std::vector<participant>(runtime().thread_count());
    const std::size_t first = runtime().first_worker_for(1) % participants_.size();
    {
      std::lock_guard lock(mutex_);
      participants_[first].scheduled = true;
      active_ = 1;
    }
    if (launch(std::move(done), 0, 1)) {
      boost::asio::post(runtime().worker_at(first).context(),
                        [self = shared_from_this(), first] { self->begin(first); });
    } else {
      piece_done();  // nothing may start
    }
    started();
  }

 private:
  // Workers notice the flag at their next entry, close what they hold and go idle; the
  // last one ends the scan (drained()).
  void stop() noexcept override {
    std::vector<pending_dir> dropped;  // released outside the lock
    std::priority_queue<pending_link> dropped_links;
    {
      std::lock_guard lock(mutex_);
      dropped.swap(stack_);
      dropped_links.swap(links_);
    }
  }

  struct pending_dir {
    std::string path;
    std::shared_ptr<const dir_node> parent;
    bool via_link = false;  // opened following the symlink; already marked visited
  };

  struct pending_link {
    std::string path;
    dir_id target;
    std::shared_ptr<const dir_node> parent;
    // priority_queue pops the greatest: make that the smallest path.
    bool operator<(const pending_link& other) const noexcept { return path > other.path; }
  };

  // A directory being listed.
  struct cursor {
    unique_fd fd;
    std::string path;
    std::shared_ptr<const dir_node> node;
    // The last subdirectory found so far, held back to be opened relative to this one
    // once it is listed (depth first, and no PATH_MAX limit down a deep chain); the
    // others are pushed for any worker as they are found.
    std::string held;
    bool has_held = false;
  };

  // One worker's share of the scan; touched only on that worker's thread, except
  // `scheduled`, which is guarded by mutex_.
  struct participant {
    std::uint64_t files = 0;
    std::uint64_t directories = 0;
    std::uint64_t symlinks = 0;
    std::uint64_t special_files = 0;
    std::uint64_t bytes = 0;
    std::uint64_t vanished = 0;              // entries other than directories
    std::uint64_t vanished_directories = 0;  // counted in `directories` by their listing
    std::array<std::uint64_t, scan_problem_kind_count> problem_counts{};
    std::vector<scan_problem> problems;  // max-heap by problem_before: the last kept on top
    std::vector<scanned_file> largest;   // max-heap by file_before: the smallest kept on top
    std::vector<std::string> file_paths;
    std::optional<cursor> current;
    // A directory whose open was refused for lack of descriptors, on an io_uring worker:
    // the slice ended to let the worker's ring close files, and fd_waiter calls it back.
    std::optional<pending_dir> parked;
    fd_retry parked_retry;  // that open's way through the shortage
    std::unique_ptr<char[]> buffer;
    bool scheduled = false;
  };

  bool stopping() const noexcept { return cancelled(); }

  void post_slice(std::size_t i) {
    boost::asio::post(runtime().worker_at(i).context(),
                      [self = shared_from_this(), i] { self->run_slice(i); });
  }

  // The first slice: the root.
  void begin(std::size_t i) {
    participant& p = participants_[i];
    if (!stopping()) scan_root(p);
    run_slice(i);
  }

  void scan_root(participant& p) {
    struct stat st{};
    if (::stat(root_.c_str(), &st) != 0) {
      root_error_ = errno_code(errno);
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      unique_fd fd = open_when_descriptors_free([&] { return open_directory_path(root_, true); },
                                                [this] { return stopping(); });
      if (!fd) {
        root_error_ = errno_code(errno);
        return;
      }
      enter(p, std::move(fd), root_, nullptr, false);
      return;
    }
    const entry_ref root{nullptr, root_, AT_FDCWD, root_.c_str()};
    if (S_ISREG(st.st_mode)) {
      on_regular_file(p, root, st);
    } else {
      ++p.special_files;
      add_problem(p, scan_problem_kind::special_file, root_);
    }
  }

  void run_slice(std::size_t i) {
    participant& p = participants_[i];
    const auto deadline = std::chrono::steady_clock::now() + scan_slice_length;
    for (;;) {
      if (stopping()) {
        p.current.reset();  // closes its descriptor
        p.parked.reset();
      }
      if (p.current) {
        list_some(p);
      } else if (p.parked) {
        pending_dir dir = std::move(*p.parked);
        p.parked.reset();
        if (!open_pending(i, p, std::move(dir), true)) return;
      } else {
        std::optional<pending_dir> next;
        {
          std::unique_lock lock(mutex_);
          if (stack_.empty() || stopping()) {
            p.scheduled = false;
            const bool last = --active_ == 0;
            lock.unlock();
            if (last) drained();
            return;
          }
          next.emplace(std::move(stack_.back()));
          stack_.pop_back();
        }
        if (!open_pending(i, p, std::move(*next), false)) return;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        post_slice(i);
        return;
      }
    }
  }

  // Opens `dir` and makes it p's current directory (or records why it could not be
  // opened); true. False: participant i is out of descriptors on an io_uring worker, where
  // waiting would also stop the worker's ring from closing the files that other work holds
  // (so no descriptor of ours would ever be released); the directory is parked and the
  // slice must end: fd_waiter runs it again once a descriptor was released, or soon.
  bool open_pending(std::size_t i, participant& p, pending_dir dir, bool retrying) {
    fd_waiter* const waits = runtime().worker_at(i).fd_waits();
    if (waits == nullptr) {
      unique_fd fd = open_when_descriptors_free([&] { return open_directory_path(dir.path, dir.via_link); },
                                                [this] { return stopping(); });
      if (!fd) {
        directory_not_opened(p, std::move(dir.path), errno);
        return true;
      }
      enter(p, std::move(fd), std::move(dir.path), std::move(dir.parent), dir.via_link);
      return true;
    }
    if (!retrying) p.parked_retry = fd_retry();
    p.parked_retry.attempting();
    unique_fd fd = open_directory_path(dir.path, dir.via_link);
    if (!fd) {
      const int error = errno;
      if (!stopping() && p.parked_retry.should_retry(error)) {
        p.parked.emplace(std::move(dir));
        waits->wait(p.parked_retry, [self = shared_from_this(), i] { self->run_slice(i); });
        return false;
      }
      directory_not_opened(p, std::move(dir.path), error);
      return true;
    }
    enter(p, std::move(fd), std::move(dir.path), std::move(dir.parent), dir.via_link);
    return true;
  }

  // Makes an opened directory p's current one.
  void enter(participant& p, unique_fd fd, std::string path, std::shared_ptr<const dir_node> parent,
             bool already_visited) {
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) {
      add_problem(p, scan_problem_kind::unreadable_directory, std::move(path), errno_code(errno));
      return;
    }
    const dir_id id = id_of(st);
    if (options_.follow_symlinks && !already_visited) {
      std::lock_guard lock(mutex_);
      // Scanned already through a symlink (or a bind mount): once is enough.
      if (!visited_.insert(id).second) return;
    }
    if (!p.buffer) p.buffer.reset(new char[dirent_buffer_size]);
    p.current.emplace(cursor{
        std::move(fd), std::move(path), std::make_shared<const dir_node>(id, std::move(parent)), {}, false});
  }

  // One getdents64 call's worth of entries of p's current directory.
  void list_some(participant& p) {
    cursor& c = *p.current;
    const ssize_t got = ::getdents64(c.fd.get(), p.buffer.get(), dirent_buffer_size);
    if (got < 0) {
      if (errno == EINTR) return;
      // Removed since it was opened (rmdir of an emptied directory): the end of its listing.
      if (errno == ENOENT) {
        finish_directory(p);
        return;
      }
      add_problem(p, scan_problem_kind::unreadable_directory, c.path, errno_code(errno));
      finish_directory(p);
      return;
    }
    if (got == 0) {
      finish_directory(p);
      return;
    }
    for (ssize_t offset = 0; offset < got;) {
      const auto* entry = reinterpret_cast<const struct dirent64*>(p.buffer.get() + offset);
      offset += entry->d_reclen;
      const char* name = entry->d_name;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
      visit(p, c, name, entry->d_type);
      if (stopping()) return;
    }
  }

  // Whether the entry `name` of the directory `dir` is one of scan_options::excluded.
  bool excluded(const std::string& dir, std::string_view name) const {
    // `dir` is the root, or the root joined with names: its part after the root's is the
    // directory's path relative to the root.
    std::string relative;
    if (dir.size() > relative_start_) {
      relative.reserve(dir.size() - relative_start_ + 1 + name.size());
      relative.append(dir, relative_start_);
      relative += '/';
    }
    relative += name;
    return excluded_.contains(relative);
  }

  void visit(participant& p, cursor& c, const char* name, unsigned char type) {
    // Left out: not even stat'ed, so nothing about it or below it is counted or reported.
    if (!excluded_.empty() && excluded(c.path, name)) return;
    const entry_ref entry{&c.path, name, c.fd.get(), name};
    if (entry_hook_) (*entry_hook_)(entry.path());
    struct stat st{};
    int stat_error = 0;
    if (type == DT_UNKNOWN || type == DT_REG) {
      // Regular files need their size; DT_UNKNOWN (some file systems) needs the type.
      if (::fstatat(c.fd.get(), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        stat_error = errno;
        if (stat_error == ENOENT) {
          ++p.vanished;
          return;
        }
      } else {
        type = IFTODT(st.st_mode);
      }
    }
    // A symlink's target is resolved (into st) before anything is reported, in case the link
    // itself is gone.
    int target_error = 0;
    if (stat_error == 0 && type == DT_LNK && ::fstatat(c.fd.get(), name, &st, 0) != 0) {
      target_error = errno;
      struct stat link{};
      if ((target_error == ENOENT || target_error == ENOTDIR) &&  // no target, or no link any more
          ::fstatat(c.fd.get(), name, &link, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
        ++p.vanished;
        return;
      }
    }
    if (!is_valid_utf8(entry.name)) add_problem(p, scan_problem_kind::invalid_utf8_name, entry.path());
    if (stat_error != 0) {
      add_problem(p, scan_problem_kind::stat_error, entry.path(), errno_code(stat_error));
      return;
    }
    switch (type) {
      case DT_DIR:
        ++p.directories;
        if (c.has_held) push_dir({join_path(c.path, c.held), c.node, false});
        c.held = entry.name;
        c.has_held = true;
        return;
      case DT_REG:
        on_regular_file(p, entry, st);
        return;
      case DT_LNK:
        on_symlink(p, c, entry, st, target_error);
        return;
      default:
        ++p.special_files;
        add_problem(p, scan_problem_kind::special_file, entry.path());
        return;
    }
  }

  void on_regular_file(participant& p, const entry_ref& entry, const struct stat& st) {
    const auto size = static_cast<std::uint64_t>(st.st_size);
    ++p.files;
    p.bytes += size;
    offer_largest(p, entry, size);
    if (options_.collect_files) p.file_paths.push_back(entry.path());
    if (options_.max_file_size != 0 && size > options_.max_file_size) {
      add_problem(p, scan_problem_kind::too_large, entry.path(), {}, size);
    }
    if (!credentials_.may_read(st) && ::faccessat(entry.dir_fd, entry.at_name, R_OK, AT_EACCESS) != 0 &&
        errno != ENOENT) {  // ENOENT: removed since its stat, nothing left to read
      add_problem(p, scan_problem_kind::unreadable_file, entry.path(), errno_code(errno));
    }
  }

  // `target` is the link's stat(2), or `error` its failure.
  void on_symlink(participant& p, cursor& c, const entry_ref& entry, const struct stat& target, int error) {
    ++p.symlinks;
    if (error != 0) {
      const auto kind = error == ELOOP                          ? scan_problem_kind::symlink_loop
                        : (error == ENOENT || error == ENOTDIR) ? scan_problem_kind::broken_symlink
                                                                : scan_problem_kind::stat_error;
      add_problem(p, kind, entry.path(), errno_code(error));
      return;
    }
    if (S_ISDIR(target.st_mode)) {
      const dir_id id = id_of(target);
      // A link to a directory that contains it (`/usr/bin/X11 -> .`) loops only when
      // followed; not followed, it is copied as a link (rsync -a), which is no problem.
      if (!options_.follow_symlinks) return;
      if (c.node->contains(id)) {
        add_problem(p, scan_problem_kind::symlink_loop, entry.path());
      } else {
        std::lock_guard lock(mutex_);
        links_.push(pending_link{entry.path(), id, c.node});
      }
      return;
    }
    if (!options_.follow_symlinks) return;
    if (S_ISREG(target.st_mode)) {
      on_regular_file(p, entry, target);
    } else {
      ++p.special_files;
      add_problem(p, scan_problem_kind::special_file, entry.path());
    }
  }

  // Opens the held subdirectory relative to the finished one and makes it current.
  void finish_directory(participant& p) {
    cursor c = std::move(*p.current);
    p.current.reset();
    if (!c.has_held || stopping()) return;
    unique_fd child(::openat(c.fd.get(), c.held.c_str(), dir_open_flags | O_NOFOLLOW));
    const int error = errno;
    c.fd.reset();
    std::string path = join_path(c.path, c.held);
    if (!child && out_of_descriptors(error)) {
      // Opened later by its path, as the other subdirectories are, which waits for a
      // descriptor the way open_pending does (and this directory's was just released).
      push_dir({std::move(path), std::move(c.node), false});
      return;
    }
    if (!child) {
      directory_not_opened(p, std::move(path), error);
      return;
    }
    enter(p, std::move(child), std::move(path), std::move(c.node), false);
  }

  // A listed directory that could not be opened is a problem unless it has vanished since.
  void directory_not_opened(participant& p, std::string path, int error) {
    if (vanished_since_listed(error)) {
      ++p.vanished_directories;
      return;
    }
    add_problem(p, scan_problem_kind::unreadable_directory, std::move(path), errno_code(error));
  }

  void push_dir(pending_dir dir) {
    std::lock_guard lock(mutex_);
    stack_.push_back(std::move(dir));
    wake_one_locked();
  }

  void wake_one_locked() {
    for (std::size_t j = 0; j < participants_.size(); ++j) {
      if (!participants_[j].scheduled) {
        participants_[j].scheduled = true;
        ++active_;
        post_slice(j);
        return;
      }
    }
  }

  // Every worker is idle and the stack is empty. With follow_symlinks the symlinked
  // directories found so far are taken one at a time, smallest path first, each
  // scanned to the end before the next is looked at: which path a directory reached
  // twice is scanned under then does not depend on timing.
  void drained() {
    {
      std::lock_guard lock(mutex_);
      while (!stopping() && !links_.empty()) {
        pending_link link = links_.top();
        links_.pop();
        if (!visited_.insert(link.target).second) continue;
        ++link_directories_;
        stack_.push_back({std::move(link.path), std::move(link.parent), true});
        wake_one_locked();
        return;
      }
    }
    piece_done();
  }

  void add_problem(participant& p, scan_problem_kind kind, std::string path, std::error_code error = {},
                   std::uint64_t size = 0) {
    ++p.problem_counts[static_cast<std::size_t>(kind)];
    const std::size_t keep = options_.max_problems;
    if (keep == 0) return;
    scan_problem problem{kind, std::move(path), error, size};
    auto& heap = p.problems;
    if (heap.size() < keep) {
      heap.push_back(std::move(problem));
      std::push_heap(heap.begin(), heap.end(), problem_before);
    } else if (problem_before(problem, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), problem_before);
      heap.back() = std::move(problem);
      std::push_heap(heap.begin(), heap.end(), problem_before);
    }
  }

  void offer_largest(participant& p, const entry_ref& entry, std::uint64_t size) {
    const std::size_t keep = options_.largest;
    if (keep == 0) return;
    auto& heap = p.largest;
    if (heap.size() < keep) {
      heap.push_back({entry.path(), size});
      std::push_heap(heap.begin(), heap.end(), file_before);
      return;
    }
    if (size < heap.front().size) return;  // the common case: no path is built
    scanned_file candidate{entry.path(), size};
    if (!file_before(candidate, heap.front())) return;
    std::pop_heap(heap.begin(), heap.end(), file_before);
    heap.back() = std::move(candidate);
    std::push_heap(heap.begin(), heap.end(), file_before);
  }

  tree_scan take_result() override {
    tree_scan result;
    std::uint64_t vanished_directories = 0;
    if (root_error_) {
      result.error = root_error_;
    } else {
      for (participant& p : participants_) {
        result.files += p.files;
        result.directories += p.directories;
        result.symlinks += p.symlinks;
        result.special_files += p.special_files;
        result.bytes += p.bytes;
        result.vanished += p.vanished + p.vanished_directories;
        vanished_directories += p.vanished_directories;
        for (std::size_t k = 0; k < scan_problem_kind_count; ++k)
          result.problem_counts[k] += p.problem_counts[k];
        std::move(p.problems.begin(), p.problems.end(), std::back_inserter(result.problems));
        std::move(p.largest.begin(), p.largest.end(), std::back_inserter(result.largest));
        std::move(p.file_paths.begin(), p.file_paths.end(), std::back_inserter(result.file_paths));
        p = participant{};
      }
      result.directories += link_directories_;
      result.directories -= vanished_directories;  // counted by their listing, then gone
      std::sort(result.problems.begin(), result.problems.end(), problem_before);
      if (result.problems.size() > options_.max_problems) result.problems.resize(options_.max_problems);
      std::sort(result.largest.begin(), result.largest.end(), file_before);
      if (result.largest.size() > options_.largest) result.largest.resize(options_.largest);
      std::sort(result.file_paths.begin(), result.file_paths.end());
    }
    return result;
  }

  const std::string root_;
  const scan_options options_;
  const std::unordered_set<std::string> excluded_;  // options_.excluded, to look entries up
  const std::size_t relative_start_;                // where an entry's path relative to the root starts
  const credentials credentials_;
  const std::shared_ptr<const scan_entry_hook> entry_hook_;  // null: none (the usual case)
  std::vector<participant> participants_;
  std::error_code root_error_;  // written by the first slice, read after the last

  std::mutex mutex_;
  // Guarded by mutex_:
  std::vector<pending_dir> stack_;  // LIFO: depth first overall, so it stays small
  std::priority_queue<pending_link> links_;
  std::unordered_set<dir_id, dir_id_hash> visited_;  // with follow_symlinks only
  std::size_t active_ = 0;                           // participants with a slice posted or running
  std::uint64_t link_directories_ = 0;
};

}  // namespace

void set_scan_entry_hook(scan_entry_hook hook) {
  auto next = hook ? std::make_shared<const scan_entry_hook>(std::move(hook)) : nullptr;
  {
    std::lock_guard lock(entry_hook_mutex());
    entry_hook_locked().swap(next);
  }
  // The previous hook is released out of the lock: releasing it may take a lock of its own
  // (the Python one takes the GIL) that a thread starting a scan holds while it waits for ours.
}

std::shared_ptr<scan_operation> make_tree_scanner(runtime_impl& rt, std::string root,
                                                  const scan_options& options) {
  return std::make_shared<tree_scanner>(rt, std::move(root), options);
}

}  // namespace sky_async::detail
