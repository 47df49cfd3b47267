#include "mounts/mounts_walk.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sky_async::detail {

namespace {

// The home directory of a passwd entry (getpw*_r: the walk runs on worker threads).
std::optional<std::string> home_of(const char* name, uid_t uid) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  const int rc = name ? ::getpwnam_r(name, &entry, buffer.data(), buffer.size(), &found)
                      : ::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) return std::nullopt;
  return std::string(found->pw_dir);
}

// os.path.join(top, name) for a name without slashes.
std::string join(const std::string& top, const std::string& name) {
  if (top.empty() || top.back() == '/') return top + name;
  return top + '/' + name;
}

struct listing {
  std::vector<std::string> dirs;
  std::vector<bool> dir_is_link;  // parallel to dirs, after sorting
  std::vector<std::string> files;
  std::error_code error;
};

class dir_closer {
 public:
  explicit dir_closer(DIR* dir) : dir_(dir) {}
  ~dir_closer() { ::closedir(dir_); }
  dir_closer(const dir_closer&) = delete;
  dir_closer& operator=(const dir_closer&) = delete;

 private:
  DIR* dir_;
};

// os.walk's split of one directory: an entry is a "dir" when it is one after following
// symlinks (a symlinked directory is listed, and later not descended into); anything
// else -- files, symlinks to files, broken symlinks, FIFOs, sockets, devices -- is a "file".
listing list_directory(const std::string& path) {
  listing result;
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    result.error = {errno, std::system_category()};
    return result;
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    result.error = {errno, std::system_category()};
    ::close(fd);
    return result;
  }
  dir_closer closer(dir);
  std::vector<std::pair<std::string, bool>> dirs;
  for (;;) {
    errno = 0;
    // readdir is safe on a stream no other thread uses; readdir_r is deprecated in glibc.
    // cppcheck-suppress readdirCalled
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      if (errno != 0) result.error = {errno, std::system_category()};
      break;
    }
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = entry->d_type == DT_DIR;
    bool is_link = entry->d_type == DT_LNK;
    if (entry->d_type == DT_UNKNOWN) {
      struct stat st{};
      if (::fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        is_dir = S_ISDIR(st.st_mode);
        is_link = S_ISLNK(st.st_mode);
      }
    }
    if (is_link) {
      struct stat st{};
      is_dir = ::fstatat(fd, entry->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) {
      dirs.emplace_back(std::string(name), is_link);
    } else {
      result.files.emplace_back(name);
    }
  }
  // Bytewise (char_traits compares as unsigned char): Python's code point order for UTF-8 names.
  std::sort(dirs.begin(), dirs.end());
  std::sort(result.files.begin(), result.files.end());
  for (auto& [name, is_link] : dirs) {
    result.dirs.push_back(std::move(name));
    result.dir_is_link.push_back(is_link);
  }
  return result;
}

// SkyPilot 0.14.1's _FILE_MOUNT_BASENAMES_SKIP_HASH: gcloud's credential caches, which
// gcloud rewrites on every run; their names are fed but their content is not, so that a
// token refresh does not count as a changed mount (nor can such a file fail the digest).
bool content_skipped(std::string_view path) {
  const std::string_view name = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  for (const std::string_view skipped :
       {"credentials.db", "credentials.db-journal", "credentials.db-wal", "credentials.db-shm",
        "access_tokens.db", "access_tokens.db-journal", "access_tokens.db-wal", "access_tokens.db-shm"}) {
    if (name == skipped) return true;
  }
  return false;
}

class planner {
 public:
  planner(mounts_plan& plan, const std::atomic<bool>& stop) : plan_(plan), stop_(stop) {}

  void mount(const file_mount& m) {
    const std::string source = expand_user(m.source.native());
    bytes(m.destination);
    nul();
    struct stat st{};
    // os.path.isfile / isdir: stat follows symlinks; a failed stat (missing source, a
    // cloud URL) is neither and contributes nothing. A NUL byte makes Python return False.
    const bool exists = source.find('\0') == std::string::npos && ::stat(source.c_str(), &st) == 0;
    if (exists && S_ISREG(st.st_mode)) {
      bytes("file");
      if (!content_skipped(source)) file(source);
    } else if (exists && S_ISDIR(st.st_mode)) {
      bytes("dir");
      walk(source);
    }
    nul();
    nul();
  }

 private:
  // Top-down and depth-first like os.walk with sorted dirnames, iteratively so that a
  // deep tree cannot overflow the stack.
  void walk(const std::string& top) {
    std::vector<std::string> pending{top};
    while (!pending.empty() && !stop_.load(std::memory_order_relaxed)) {
      std::string path = std::move(pending.back());
      pending.pop_back();
      listing entries = list_directory(path);
      if (entries.error) {
        plan_.problems.push_back({path, entries.error});
        continue;
      }
      bytes(path);
      nul();
      for (const auto& name : entries.dirs) {
        bytes(name);
        nul();
      }
      nul();
      for (const auto& name : entries.files) {
        bytes(name);
        nul();
        if (!content_skipped(name)) file(join(path, name));
      }
      nul();
      for (std::size_t i = entries.dirs.size(); i-- > 0;) {
        if (!entries.dir_is_link[i]) pending.push_back(join(path, entries.dirs[i]));
      }
    }
  }

  void bytes(std::string_view data) {
    if (plan_.pieces.empty() || plan_.pieces.back().file != mounts_plan::no_file) plan_.pieces.emplace_back();
    plan_.pieces.back().bytes.append(data);
  }
  void nul() { bytes(std::string_view("\0", 1)); }
  // Always after bytes(), so the last piece has no file yet.
  void file(std::string path) {
    plan_.pieces.back().file = plan_.files.size();
    plan_.files.emplace_back(std::move(path));
  }

  mounts_plan& plan_;
  const std::atomic<bool>& stop_;
};

}  // namespace

std::string expand_user(const std::string& path) {
  if (path.empty() || path.front() != '~') return path;
  std::size_t end = path.find('/', 1);
  if (end == std::string::npos) end = path.size();
  std::string home;
  if (end == 1) {
    if (const char* env = std::getenv("HOME")) {
      home = env;
    } else {
      auto found = home_of(nullptr, ::getuid());
      if (!found) return path;
      home = std::move(*found);
    }
  } else {
    auto found = home_of(path.substr(1, end - 1).c_str(), 0);
    if (!found) return path;
    home = std::move(*found);
  }
  while (!home.empty() && home.back() == '/') home.pop_back();
  std::string expanded = home + path.substr(end);
  return expanded.empty() ? std::string("/") : expanded;
}

mounts_plan plan_file_mounts(std::vector<file_mount> mounts, const std::atomic<bool>& stop) {
  // sorted(file_mounts.items()): by destination, then source.
  std::sort(mounts.begin(), mounts.end(), [](const file_mount& a, const file_mount& b) {
    return std::tie(a.destination, a.source.native()) < std::tie(b.destination, b.source.native());
  });
  mounts_plan plan;
  planner walker(plan, stop);
  for (const auto& m : mounts) {
    if (stop.load(std::memory_order_relaxed)) break;
    walker.mount(m);
  }
  return plan;
}

}  // namespace sky_async::detail
