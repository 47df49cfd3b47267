// The lines of git's ignore files, compiled: git's wildmatch on bytes, and one line's
// pattern (negation, directory-only, anchoring) as sky_async._upload.gitignore reads it.
// The rules are written from git's documentation (gitignore(5), and the glob rules of
// wildmatch that it describes) and checked against git itself by the Python tests.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sky_async::ignore {

// A wildmatch pattern compiled into steps over bytes; a full match is needed. With
// `pathname`, `*`, `?` and `[...]` never match '/', and `**` as a whole component crosses
// directories (`**/` matches any number of directories, none included). Malformed (an
// unclosed `[`, an unknown `[:class:]`, a final `\`), it matches nothing.
class wildmatch {
 public:
  wildmatch() = default;
  wildmatch(std::string_view pattern, bool pathname);

  bool valid() const { return valid_; }
  bool matches(std::string_view text) const;

 private:
  enum class op : std::uint8_t {
    byte,       // this byte, then the next step
    one_of,     // a byte of sets_[set], then the next step
    many,       // any run of bytes of sets_[set] (none included)
    dirs_open,  // `**/`: skip it, or go into dirs_in
    dirs_in,    // inside `**/`: any byte stays, a '/' may also end it
  };
  struct step {
    op kind;
    unsigned char byte;
    std::uint16_t set;
  };

  bool compile(std::string_view pattern, bool pathname);
  // The set of the bracket expression at pattern[start] ('['); the index after it, or 0
  // when it is malformed.
  std::size_t bracket(std::string_view pattern, std::size_t start, bool pathname);
  std::uint16_t add_set(const std::bitset<256>& set);

  std::vector<step> steps_;
  std::vector<std::bitset<256>> sets_;
  bool valid_ = false;
};

// One line of an ignore file, compiled.
struct pattern {
  // How it is tested: never, by the name's bytes, by the name's end, by wildmatch on the
  // name, by the path's bytes, or by wildmatch on the path after `literal` (its base).
  enum class test : std::uint8_t { never, name_equal, name_suffix, name_match, path_equal, path_match };

  bool negative = false;
  bool directory_only = false;
  // No '/' but a trailing one: it matches a name at any depth.
  bool basename_only = false;
  test how = test::never;
  // The bytes the name_* and path_* tests compare with: the name, the name's end, the whole
  // path from the top, or the base's path with its '/' (empty for the top's base).
  std::string literal;
  wildmatch matcher;

  // Whether the line matches `path` (from the top of the work tree), whose last component
  // is `name`, ignoring negation and directory_only.
  bool hits(std::string_view path, std::string_view name) const;
  // The same, and a directory-only line matches only a directory.
  bool matches(std::string_view path, std::string_view name, bool is_dir) const {
    return (is_dir || !directory_only) && hits(path, name);
  }
};

// One line, after the file's trimming; `base` is the directory of its .gitignore from the
// top (empty for the top's, info/exclude and core.excludesFile).
pattern compile_line(std::string_view line, std::string_view base);

// The patterns of an ignore file's content, as git reads it: a UTF-8 BOM, a trailing CR
// and unescaped trailing spaces dropped, blank and '#' lines skipped.
std::vector<pattern> parse(std::string_view data, std::string_view base);

}  // namespace sky_async::ignore
