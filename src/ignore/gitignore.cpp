#include "ignore/gitignore.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sky_async::ignore {

file_error::file_error(int code, const std::string& path)
    : std::runtime_error(path + ": " + std::strerror(code)), code_(code), path_(path) {}

namespace {

// --- files -----------------------------------------------------------------------------

class descriptor {
 public:
  explicit descriptor(int fd) : fd_(fd) {}
  ~descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  descriptor(const descriptor&) = delete;
  descriptor& operator=(const descriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The content of the file at `path` (at most `limit` bytes), or the errno that stopped it.
int read_file(const std::string& path, bool follow, std::string& out, std::size_t limit = SIZE_MAX) {
  out.clear();
  const descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
  if (fd.get() < 0) return errno;
  char buffer[65536];
  while (out.size() < limit) {
    const ssize_t got = ::read(fd.get(), buffer, std::min(sizeof buffer, limit - out.size()));
    if (got < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (got == 0) break;
    out.append(buffer, static_cast<std::size_t>(got));
  }
  return 0;
}

bool stat_is_directory(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join(std::string_view directory, std::string_view name) {
  // os.path.join's rule: an absolute name replaces the directory.
  if (name.starts_with('/')) return std::string(name);
  std::string out(directory);
  if (!out.empty() && !out.ends_with('/')) out += '/';
  out += name;
  return out;
}

std::string_view strip_whitespace(std::string_view text) {
  constexpr std::string_view spaces = " \t\n\r\v\f";
  const std::size_t first = text.find_first_not_of(spaces);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(spaces) - first + 1);
}

// Whether `path` looks like a git directory, as git decides before using one.
bool is_git_directory(const std::string& path) {
  std::string head;
  if (read_file(join(path, "HEAD"), true, head, 256) != 0) return false;
  const bool hex40 = head.size() >= 40 && std::all_of(head.begin(), head.begin() + 40, [](char c) {
                       return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                     });
  if (!head.starts_with("ref:") && !hex40) return false;
  std::string common = path;
  std::string commondir;
  if (read_file(join(path, "commondir"), true, commondir) == 0)
    common = join(path, strip_whitespace(commondir));
  return stat_is_directory(join(common, "objects")) && stat_is_directory(join(common, "refs"));
}

// Whether `worktree/.git` names a git directory (a directory, or a "gitdir:" file).
bool is_repository(const std::string& worktree) {
  const std::string dot_git = join(worktree, ".git");
  struct stat st{};
  if (::stat(dot_git.c_str(), &st) != 0) return false;
  if (S_ISDIR(st.st_mode)) return is_git_directory(dot_git);
  if (!S_ISREG(st.st_mode)) return false;
  std::string content;
  if (read_file(dot_git, true, content, 4096) != 0 || !content.starts_with("gitdir: ")) return false;
  return is_git_directory(join(worktree, strip_whitespace(std::string_view(content).substr(8))));
}

// --- the index -------------------------------------------------------------------------

[[noreturn]] void not_an_index(const std::string& path) {
  throw std::invalid_argument(path + ": not a git index");
}

std::uint32_t be32(std::string_view data, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at);
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::uint16_t be16(std::string_view data, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at);
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// The index file's bytes, or std::nullopt when there is none (a repository without a
// commit or an add); file_error when it cannot be read.
std::optional<std::string> read_index_file(const std::string& path) {
  std::string data;
  if (const int error = read_file(path, true, data); error != 0) {
    if (error == ENOENT) return std::nullopt;
    throw file_error(error, path);
  }
  return data;
}

}  // namespace

index_paths read_index(const std::string& path, std::size_t hash_size) {
  const auto data = read_index_file(path);
  return data ? parse_index(*data, path, hash_size) : index_paths{};
}

namespace {

// Calls on_entry(kind, name) for each entry of the index in `view`, in the index's order:
// kind is the mode's file type bits (0040000 for a sparse-index directory "dir/",
// 0160000 for a gitlink), name the entry's path.
template <typename OnEntry>
void for_each_entry(std::string_view view, const std::string& path, std::size_t hash_size,
                    OnEntry&& on_entry) {
  if (view.size() < 12 || !view.starts_with("DIRC")) not_an_index(path);
  const std::uint32_t version = be32(view, 4);
  const std::uint32_t count = be32(view, 8);
  if (version < 2 || version > 4) {
    throw std::invalid_argument(path + ": index version " + std::to_string(version) + " is not supported");
  }
  const std::size_t fixed = 40 + hash_size;  // ctime to the object name; the flags follow
  std::size_t offset = 12;
  std::string name;  // the entry's path (version 4 keeps the previous one's prefix)
  for (std::uint32_t n = 0; n < count; ++n) {
    const std::size_t start = offset;
    if (view.size() < start + fixed + 2) not_an_index(path);
    const std::uint32_t mode = be32(view, start + 24);
    offset += fixed;
    const std::uint16_t flags = be16(view, offset);
    offset += 2;
    if (version >= 3 && (flags & 0x4000) != 0) offset += 2;  // extended flags
    if (version == 4) {
      // git's offset varint: 7 bits a byte, the high bit continues, and each
      // continuation adds one before shifting.
      std::uint64_t strip = 0;
      for (bool first = true;; first = false) {
        if (offset >= view.size() || strip > (std::uint64_t{1} << 48)) not_an_index(path);
        const auto byte = static_cast<unsigned char>(view[offset++]);
        strip = first ? (byte & 0x7fU) : (((strip + 1) << 7) | (byte & 0x7fU));
        if ((byte & 0x80U) == 0) break;
      }
      const std::size_t nul = view.find('\0', offset);
      if (nul == std::string_view::npos || strip > name.size()) not_an_index(path);
      name.resize(name.size() - strip);
      name.append(view.substr(offset, nul - offset));
      offset = nul + 1;
    } else {
      const std::size_t length = flags & 0xfffU;  // 0xfff: that long or longer
      std::size_t nul = offset + length;
      if (length == 0xfff) nul = view.find('\0', offset + 0xfff);
      if (nul == std::string_view::npos || nul > view.size()) not_an_index(path);
      name.assign(view.substr(offset, nul - offset));
      offset = start + ((nul - start) / 8 + 1) * 8;  // 1 to 8 NULs pad to 8 bytes
    }
    on_entry(mode & 0170000U, std::string_view(name));
  }
}

}  // namespace

index_paths parse_index(std::string_view view, const std::string& path, std::size_t hash_size) {
  index_paths index;
  if (view.size() >= 12) {
    // A bad count cannot ask for more than the bytes can hold.
    index.files.reserve(std::min<std::size_t>(be32(view, 8), view.size() / (40 + hash_size + 2)));
  }
  std::string parent_of_previous;
  for_each_entry(view, path, hash_size, [&](std::uint32_t kind, std::string_view entry) {
    if (kind == 0040000U) {  // a sparse-index directory entry ("dir/")
      while (entry.ends_with('/')) entry.remove_suffix(1);
      index.directories.emplace(entry);
    } else {
      index.files.emplace(entry);
      if (kind == 0160000U) index.gitlinks.emplace(entry);
    }
    std::size_t slash = entry.rfind('/');
    if (slash == std::string_view::npos || slash == 0) return;
    std::string_view parent = entry.substr(0, slash);
    if (parent == parent_of_previous) return;  // sorted: the last entry's directory, already added
    parent_of_previous.assign(parent);
    // Every directory above it; once one is known, so are those above that one.
    while (index.directories.emplace(parent).second) {
      slash = parent.rfind('/');
      if (slash == std::string_view::npos || slash == 0) break;
      parent = parent.substr(0, slash);
    }
  });
  return index;
}

std::vector<std::string> read_gitlinks(const std::string& path, std::size_t hash_size) {
  const auto data = read_index_file(path);
  if (!data) return {};
  std::vector<std::string> gitlinks;
  for_each_entry(*data, path, hash_size, [&](std::uint32_t kind, std::string_view entry) {
    if (kind == 0160000U) gitlinks.emplace_back(entry);
  });
  return gitlinks;
}

namespace {

// --- the walk --------------------------------------------------------------------------

// What a path is, for git's listing, in git's order: when a directory's contents are summed
// up, the most significant wins.
enum state : int { none, recurse, excluded, untracked };

// The rules that apply in a directory, in the order git tries them (the deepest
// .gitignore first, the last line of a file first), split by what they can match.
struct rule_set {
  std::vector<const pattern*> files;        // lines that can match a non-directory
  std::vector<const pattern*> directories;  // every line that can match something
};
using rules_ptr = std::shared_ptr<const rule_set>;

// `ordered` (tried first) then `after`.
rules_ptr make_rules(std::span<const pattern* const> ordered, const rule_set* after) {
  auto rules = std::make_shared<rule_set>();
  for (const pattern* p : ordered) {
    if (p->how == pattern::test::never) continue;
    rules->directories.push_back(p);
    if (!p->directory_only) rules->files.push_back(p);
  }
  if (after != nullptr) {
    rules->files.insert(rules->files.end(), after->files.begin(), after->files.end());
    rules->directories.insert(rules->directories.end(), after->directories.begin(), after->directories.end());
  }
  return rules;
}

// `patterns` at the end of `out`, the last line first.
void append_reversed(std::vector<const pattern*>& out, const std::vector<pattern>& patterns) {
  const auto start = static_cast<std::ptrdiff_t>(out.size());
  for (const pattern& p : patterns) out.push_back(&p);
  std::reverse(out.begin() + start, out.end());
}

// Whether the first of `rules` that matches excludes the path.
bool excludes(const std::vector<const pattern*>& rules, std::string_view path, std::string_view name) {
  for (const pattern* p : rules) {
    if (p->hits(path, name)) return !p->negative;
  }
  return false;
}

// A directory's entries, read at once (the directory is closed before its subdirectories
// are opened). Entries git never looks at (FIFOs, sockets, devices) are left out.
struct listing {
  struct entry {
    std::size_t offset;
    std::size_t length;
    bool is_dir;
  };
  std::string names;
  std::vector<entry> entries;
  bool has_gitignore = false;

  std::string_view name(const entry& e) const { return std::string_view(names).substr(e.offset, e.length); }
};

// Unreadable, it has no entries (git warns and goes on). getdents64 straight into
// `buffer` (reused for every directory): opendir's DIR would allocate, stat and fcntl
// once a directory.
void read_directory(const std::string& path, listing& out, std::vector<std::uint64_t>& buffer) {
  const descriptor fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return;
  char* const bytes = reinterpret_cast<char*>(buffer.data());
  while (true) {
    const ssize_t got = ::getdents64(fd.get(), bytes, buffer.size() * sizeof(std::uint64_t));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return;
    for (ssize_t at = 0; at < got;) {
      const auto* found = reinterpret_cast<const dirent64*>(bytes + at);
      at += found->d_reclen;
      const std::string_view name(found->d_name);
      if (name == "." || name == "..") continue;
      if (name == ".gitignore") out.has_gitignore = true;
      unsigned char type = found->d_type;
      if (type == DT_UNKNOWN) {
        struct stat st{};
        if (::fstatat(fd.get(), found->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        type = S_ISDIR(st.st_mode)   ? DT_DIR
               : S_ISREG(st.st_mode) ? DT_REG
               : S_ISLNK(st.st_mode) ? DT_LNK
                                     : DT_FIFO;
      }
      if (type != DT_DIR && type != DT_REG && type != DT_LNK) continue;
      out.entries.push_back({out.names.size(), name.size(), type == DT_DIR});
      out.names.append(name);
    }
  }
}

struct frame {
  std::string absolute;  // its path, as opened
  std::string prefix;    // its path from the top, with a trailing '/' ("" at the top)
  listing entries;
  std::size_t next = 0;
  bool excluded = false;  // itself, or a directory above, excluded: so is every entry
  rules_ptr rules;
  int state = none;     // the most significant state of its entries so far
  std::string pending;  // the subdirectory being walked, with its '/', while it is
  bool pending_tracked = false;
};

class lister {
 public:
  explicit lister(const listing_request& request)
      : request_(request), index_(read_index(request.index_path, request.hash_size)) {
    std::string data;
    for (const std::string& path : request.exclude_files) {
      global_.push_back(read_file(path, true, data) == 0 ? parse(data, "") : std::vector<pattern>{});
    }
  }

  std::optional<std::vector<std::string>> run() {
    if (!list()) return std::nullopt;
    std::sort(found_.begin(), found_.end());
    const std::string prefix = request_.prefix.empty() ? std::string() : request_.prefix + '/';
    std::vector<std::string> out;
    out.reserve(found_.size());
    for (std::string& path : found_) {
      if (!path.starts_with(prefix)) continue;
      out.push_back(path.size() == prefix.size() ? std::string("./") : path.substr(prefix.size()));
    }
    return out;
  }

 private:
  // The patterns of the .gitignore of `directory` (from the top), not followed if a link.
  const std::vector<pattern>& patterns_of(const std::string& directory) {
    std::string data;
    const std::string path =
        join(directory.empty() ? request_.top : join(request_.top, directory), ".gitignore");
    per_dir_.push_back(read_file(path, false, data) == 0 ? parse(data, directory) : std::vector<pattern>{});
    return per_dir_.back();
  }

  // The rules below the .gitignore lists `stack` (top first), then the global ones.
  rules_ptr rules_of(const std::vector<const std::vector<pattern>*>& stack) const {
    std::vector<const pattern*> ordered;
    for (std::size_t k = stack.size(); k-- > 0;) append_reversed(ordered, *stack[k]);
    for (const auto& patterns : global_) append_reversed(ordered, patterns);
    return make_rules(ordered, nullptr);
  }

  // False where git fails. Runs down from the top to the directory listed, as git checks a
  // subdirectory it is run in: each directory on the way must be one git would enter.
  bool list() {
    std::vector<const std::vector<pattern>*> stack{&patterns_of("")};
    const std::string& prefix = request_.prefix;
    if (prefix.empty()) {
      walk(request_.top, "", rules_of(stack), false);
      return true;
    }
    bool excluded_above = false;
    std::size_t slash = 0;
    while (true) {
      const std::size_t end = prefix.find('/', slash);
      const bool last = end == std::string::npos;
      const std::string path = prefix.substr(0, end);
      const std::string_view name = std::string_view(path).substr(slash);
      const std::string absolute = join(request_.top, path);
      if (name == ".git" || !stat_is_directory(absolute)) return true;
      bool is_excluded = excluded_above;
      if (!is_excluded) {
        const rules_ptr rules = rules_of(stack);
        is_excluded = excludes(rules->directories, path, name);
      }
      if (index_.directories.contains(path)) {
        // tracked below: entered whatever the rules say
      } else if (index_.gitlinks.contains(path)) {
        return true;
      } else if (!last) {
        if (is_excluded) return false;
        if (is_repository(absolute)) return true;  // git does not enter it: nothing printed
      } else if (is_excluded) {
        found_.push_back(path + '/');
        return true;
      } else {
        stack.push_back(&patterns_of(path));
        if (walk(absolute, path + '/', rules_of(stack), false) == excluded) found_.push_back(path + '/');
        return true;
      }
      excluded_above = is_excluded;
      if (!is_excluded) stack.push_back(&patterns_of(path));
      if (last) break;
      slash = end + 1;
    }
    walk(join(request_.top, prefix), prefix + '/', excluded_above ? make_rules({}, nullptr) : rules_of(stack),
         excluded_above);
    return true;
  }

  std::unique_ptr<frame> enter(std::string absolute, std::string prefix, const rules_ptr& rules,
                               bool is_excluded, bool own_rules) {
    auto out = std::make_unique<frame>();
    read_directory(absolute, out->entries, buffer_);
    out->absolute = std::move(absolute);
    out->excluded = is_excluded;
    out->rules = rules;
    if (own_rules && !is_excluded && out->entries.has_gitignore) {
      std::string directory(std::string_view(prefix).substr(0, prefix.size() - 1));
      const std::vector<pattern>& mine = patterns_of(directory);
      if (!mine.empty()) {
        std::vector<const pattern*> ordered;
        append_reversed(ordered, mine);
        out->rules = make_rules(ordered, rules.get());
      }
    }
    out->prefix = std::move(prefix);
    return out;
  }

  // Lists the excluded paths under `directory` (`prefix` is its path from the top, with
  // its '/') and returns the most significant state of its entries.
  int walk(const std::string& directory, const std::string& prefix, const rules_ptr& rules,
           bool excluded_above) {
    std::vector<std::unique_ptr<frame>> frames;
    frames.push_back(enter(directory, prefix, rules, excluded_above, false));
    std::string path;
    while (true) {
      frame& f = *frames.back();
      std::unique_ptr<frame> child;
      while (f.next < f.entries.entries.size()) {
        const listing::entry& e = f.entries.entries[f.next++];
        const std::string_view name = f.entries.name(e);
        if (name == ".git") continue;
        path.assign(f.prefix);
        path.append(name);
        if (!e.is_dir) {
          if (index_.files.contains(path)) continue;
          if (f.excluded || excludes(f.rules->files, path, name)) {
            found_.push_back(path);
            f.state = std::max<int>(f.state, excluded);
          } else {
            f.state = std::max<int>(f.state, untracked);
          }
          continue;
        }
        const bool is_excluded = f.excluded || excludes(f.rules->directories, path, name);
        if (index_.directories.contains(path)) {  // tracked below: entered whatever the rules say
          f.pending = path + '/';
          f.pending_tracked = true;
          child = enter(join(f.absolute, name), f.pending, f.rules, is_excluded, true);
          break;
        }
        if (index_.gitlinks.contains(path)) continue;
        if (!is_excluded) {
          std::string absolute = join(f.absolute, name);
          if (!is_repository(absolute)) {
            f.pending = path + '/';
            f.pending_tracked = false;
            child = enter(std::move(absolute), f.pending, f.rules, false, true);
            break;
          }
        }
        if (is_excluded) {  // a directory, or an untracked nested repository, as a whole
          found_.push_back(path + '/');
          f.state = std::max<int>(f.state, excluded);
        } else {
          f.state = std::max<int>(f.state, untracked);
        }
      }
      if (child) {
        frames.push_back(std::move(child));
        continue;
      }
      int done = f.state;
      frames.pop_back();
      if (frames.empty()) return done;
      frame& parent = *frames.back();
      if (parent.pending_tracked) {
        parent.state = std::max({parent.state, static_cast<int>(recurse), done});
      } else {
        if (done == none) done = untracked;  // nothing inside: an untracked directory
        parent.state = std::max(parent.state, done);
        if (done == excluded) found_.push_back(parent.pending);
      }
    }
  }

  const listing_request& request_;
  index_paths index_;
  std::vector<std::vector<pattern>> global_;
  std::deque<std::vector<pattern>> per_dir_;  // a deque: the rules point into its lists
  std::vector<std::string> found_;
  std::vector<std::uint64_t> buffer_ = std::vector<std::uint64_t>(4096);  // 32 KiB for getdents64
};

}  // namespace

std::optional<std::vector<std::string>> list_ignored(const listing_request& request) {
  return lister(request).run();
}

}  // namespace sky_async::ignore
