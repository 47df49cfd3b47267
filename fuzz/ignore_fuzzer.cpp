// The parsers of the native gitignore engine (src/ignore/) on untrusted bytes: an index file
// and the lines of a .gitignore come from whatever repository a user points sky-async at.
//
// The first byte picks what the rest is:
//   0: an index (parse_index, SHA-1 or SHA-256 names): only std::invalid_argument escapes,
//      submodules are tracked entries, and every directory above a tracked path is known;
//   1: a glob and a path over a small alphabet (a, b, /, *, ?), compared with a backtracking
//      matcher written from gitignore(5)'s words: `*` any run, `?` one byte, neither
//      crossing '/' with pathname (globs with `**` are left out: git gives them meanings
//      of their own, with or without pathname, which the Python tests check against git);
//   2: an ignore-file line and a path: compiling and matching any bytes neither throws nor
//      reads outside them.
#include "fuzz_support.hpp"
#include "ignore/gitignore.hpp"
#include "ignore/patterns.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check_index(std::string_view data, std::size_t hash_size) {
  sky_async::ignore::index_paths index;
  try {
    index = sky_async::ignore::parse_index(data, "index", hash_size);
  } catch (const std::invalid_argument&) {
    return;
  }
  for (const std::string& gitlink : index.gitlinks) FUZZ_CHECK(index.files.contains(gitlink));
  for (const std::string& file : index.files) {
    std::string_view parent = file;
    for (std::size_t slash = parent.rfind('/'); slash != std::string_view::npos && slash > 0;
         slash = parent.rfind('/')) {
      parent = parent.substr(0, slash);
      FUZZ_CHECK(index.directories.contains(std::string(parent)));
    }
  }
}

// gitignore(5): "An asterisk `*` matches anything except a slash. The character `?` matches
// any one character except `/`." Without pathname both match '/' too.
bool oracle(std::string_view glob, std::string_view text, bool pathname) {
  if (glob.empty()) return text.empty();
  const char c = glob.front();
  if (c == '*') {
    for (std::size_t k = 0; k <= text.size(); ++k) {
      if (oracle(glob.substr(1), text.substr(k), pathname)) return true;
      if (k < text.size() && pathname && text[k] == '/') break;
    }
    return false;
  }
  if (text.empty()) return false;
  if (c == '?') return !(pathname && text.front() == '/') && oracle(glob.substr(1), text.substr(1), pathname);
  return c == text.front() && oracle(glob.substr(1), text.substr(1), pathname);
}

std::string small_alphabet(FuzzedDataProvider& input, std::string_view alphabet, std::size_t most) {
  std::string out;
  const std::size_t length = input.ConsumeIntegralInRange<std::size_t>(0, most);
  for (std::size_t i = 0; i < length && input.remaining_bytes() > 0; ++i) {
    out += alphabet[input.ConsumeIntegralInRange<std::size_t>(0, alphabet.size() - 1)];
  }
  return out;
}

void check_glob(FuzzedDataProvider& input) {
  const bool pathname = input.ConsumeBool();
  const std::string glob = small_alphabet(input, "ab/*?", 12);
  const std::string text = small_alphabet(input, "ab/", 12);
  // `**` as a whole component means any directories in git's wildmatch, with or without
  // pathname ("**/*" matches ""), which is past what the oracle knows.
  if (glob.find("**") != std::string::npos) return;
  const sky_async::ignore::wildmatch matcher(glob, pathname);
  FUZZ_CHECK(matcher.valid());
  FUZZ_CHECK(matcher.matches(text) == oracle(glob, text, pathname));
}

void check_line(FuzzedDataProvider& input) {
  const std::string base = input.ConsumeBool() ? "" : "sub/";
  const std::string line = input.ConsumeRandomLengthString(256);
  const std::string path = input.ConsumeRandomLengthString(256);
  const std::size_t slash = path.rfind('/');
  const std::string_view name =
      slash == std::string::npos ? std::string_view(path) : std::string_view(path).substr(slash + 1);
  const sky_async::ignore::pattern pattern = sky_async::ignore::compile_line(line, base);
  const bool as_dir = pattern.matches(path, name, true);
  const bool as_file = pattern.matches(path, name, false);
  // A line that matches a file matches the directory of that name too; a directory-only line
  // matches no file.
  FUZZ_CHECK(!as_file || as_dir);
  FUZZ_CHECK(!(pattern.directory_only && as_file));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider input(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      const std::size_t hash_size = (data[0] & 0x80) != 0 ? 32 : 20;
      check_index(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), hash_size);
      break;
    }
    case 1:
      check_glob(input);
      break;
    default:
      check_line(input);
      break;
  }
  return 0;
}
