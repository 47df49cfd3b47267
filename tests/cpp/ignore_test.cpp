// git's ignore rules in C++ (src/ignore/): wildmatch's edge cases, one line's trimming and
// anchoring, the index reader, and the listing on small trees. The Python tests
// (tests/python/test_gitignore.py) compare the same engine with git itself on random
// repositories; these pin the rules down one by one.
#include "test_support.hpp"

#include "ignore/gitignore.hpp"
#include "ignore/patterns.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <sys/stat.h>

namespace {

using sky_async::ignore::compile_line;
using sky_async::ignore::index_paths;
using sky_async::ignore::list_ignored;
using sky_async::ignore::listing_request;
using sky_async::ignore::parse;
using sky_async::ignore::read_gitlinks;
using sky_async::ignore::read_index;
using sky_async::ignore::wildmatch;
using sky_async_test::temp_dir;
using sky_async_test::write_file;
namespace fs = std::filesystem;

bool path_match(std::string_view pattern, std::string_view text) {
  return wildmatch(pattern, true).matches(text);
}
bool name_match(std::string_view pattern, std::string_view text) {
  return wildmatch(pattern, false).matches(text);
}

// --- wildmatch ------------------------------------------------------------------------------

TEST(Wildmatch, LeadingDoubleStarSlashMatchesAnyNumberOfDirectories) {
  EXPECT_TRUE(path_match("**/foo", "foo"));
  EXPECT_TRUE(path_match("**/foo", "a/foo"));
  EXPECT_TRUE(path_match("**/foo", "a/b/foo"));
  EXPECT_FALSE(path_match("**/foo", "afoo"));
  EXPECT_FALSE(path_match("**/foo", "a/foo/b"));
}

TEST(Wildmatch, TrailingSlashDoubleStarMatchesEverythingInside) {
  EXPECT_TRUE(path_match("abc/**", "abc/x"));
  EXPECT_TRUE(path_match("abc/**", "abc/x/y"));
  EXPECT_FALSE(path_match("abc/**", "abc"));
  EXPECT_FALSE(path_match("abc/**", "abcd/x"));
}

TEST(Wildmatch, MiddleDoubleStarMatchesZeroOrMoreDirectories) {
  EXPECT_TRUE(path_match("a/**/b", "a/b"));
  EXPECT_TRUE(path_match("a/**/b", "a/x/b"));
  EXPECT_TRUE(path_match("a/**/b", "a/x/y/b"));
  EXPECT_FALSE(path_match("a/**/b", "a/xb"));
  EXPECT_FALSE(path_match("a/**/b", "a/x/bc"));
}

TEST(Wildmatch, DoubleStarInsideAComponentIsOneStar) {
  EXPECT_TRUE(path_match("a**b", "axyb"));
  EXPECT_FALSE(path_match("a**b", "a/b"));
  EXPECT_FALSE(path_match("x**/y", "x/z/y"));
  EXPECT_TRUE(path_match("x**/y", "xz/y"));
}

TEST(Wildmatch, StarAndQuestionMarkStayInOneComponentOnlyInPathnameMode) {
  EXPECT_FALSE(path_match("a*c", "ab/c"));
  EXPECT_TRUE(name_match("a*c", "ab/c"));
  EXPECT_FALSE(path_match("a?c", "a/c"));
  EXPECT_TRUE(name_match("a?c", "a/c"));
  EXPECT_TRUE(path_match("*", ""));
  EXPECT_TRUE(path_match("*.log", ".log"));
}

TEST(Wildmatch, BackslashEscapesTheNextByteAndAFinalOneMatchesNothing) {
  EXPECT_TRUE(path_match("\\*", "*"));
  EXPECT_FALSE(path_match("\\*", "a"));
  EXPECT_TRUE(path_match("\\[x]", "[x]"));
  EXPECT_TRUE(path_match("a\\b", "ab"));
  EXPECT_FALSE(wildmatch("ab\\", true).valid());
  EXPECT_FALSE(path_match("ab\\", "ab\\"));
}

TEST(Wildmatch, BracketNegationRangesAndLiteralCloser) {
  EXPECT_TRUE(path_match("[!a-z]", "A"));
  EXPECT_TRUE(path_match("[!a-z]", "1"));
  EXPECT_FALSE(path_match("[!a-z]", "b"));
  EXPECT_TRUE(path_match("[^a]", "b"));
  EXPECT_FALSE(path_match("[^a]", "a"));
  EXPECT_FALSE(path_match("[!a]", "/"));  // never '/' in pathname mode
  EXPECT_TRUE(name_match("[!a]", "/"));
  EXPECT_TRUE(path_match("[]]", "]"));
  EXPECT_TRUE(path_match("[!]]", "a"));
  EXPECT_FALSE(path_match("[!]]", "]"));
  EXPECT_TRUE(path_match("[a-]", "-"));
  EXPECT_TRUE(path_match("[\\]]", "]"));
  EXPECT_FALSE(path_match("[z-a]", "m"));  // an empty range
}

TEST(Wildmatch, CharacterClassesAreGitsAsciiOnes) {
  EXPECT_TRUE(path_match("[[:alpha:]]", "x"));
  EXPECT_FALSE(path_match("[[:alpha:]]", "1"));
  EXPECT_FALSE(path_match("[[:alpha:]]", "\xc3"));  // no locale: bytes above 127 are in no class
  EXPECT_TRUE(path_match("[[:digit:]x]", "x"));
  EXPECT_TRUE(path_match("[[:space:]]", "\t"));
  EXPECT_TRUE(path_match("[[:xdigit:]][[:upper:]]", "fA"));
  EXPECT_FALSE(wildmatch("[[:nope:]]", true).valid());
  EXPECT_TRUE(path_match("[[:a]", "["));  // no ":]" before the "]": a plain '['
}

TEST(Wildmatch, AnUnclosedBracketMatchesNothing) {
  EXPECT_FALSE(wildmatch("[ab", true).valid());
  EXPECT_FALSE(path_match("[ab", "[ab"));
  EXPECT_FALSE(path_match("[ab", "a"));
  EXPECT_FALSE(wildmatch("a[[:alpha:", true).valid());
}

TEST(Wildmatch, ManyStarsStayLinear) {
  // Backtracking would take 2^n steps here; the set of states takes n * m.
  const std::string pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
  EXPECT_FALSE(name_match(pattern, std::string(4000, 'a')));
  EXPECT_TRUE(name_match(pattern, std::string(4000, 'a') + "b"));
}

// --- one line ----------------------------------------------------------------------------------

TEST(IgnoreLine, TrailingSpacesGoUnlessEscaped) {
  const auto lines = parse("a  \nb\\ \\ \nc\\\n d\r\n", "");
  ASSERT_EQ(lines.size(), 4U);
  EXPECT_TRUE(lines[0].matches("a", "a", false));
  EXPECT_FALSE(lines[0].matches("a ", "a ", false));
  EXPECT_TRUE(lines[1].matches("b  ", "b  ", false));
  EXPECT_FALSE(lines[2].matches("c\\", "c\\", false));  // a final backslash: nothing
  EXPECT_TRUE(lines[3].matches(" d", " d", false));
}

TEST(IgnoreLine, CommentsBlankLinesAndTheByteOrderMarkAreSkipped) {
  const auto lines = parse("\xef\xbb\xbf#c\n\n\\#h\n\\!b\n", "");
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_TRUE(lines[0].matches("#h", "#h", false));
  EXPECT_TRUE(lines[1].matches("!b", "!b", false));
  EXPECT_FALSE(lines[1].negative);
}

TEST(IgnoreLine, BangNegates) {
  const auto line = compile_line("!keep.log", "");
  EXPECT_TRUE(line.negative);
  EXPECT_TRUE(line.matches("x/keep.log", "keep.log", false));
}

TEST(IgnoreLine, ATrailingSlashMatchesDirectoriesOnly) {
  const auto line = compile_line("out/", "");
  EXPECT_TRUE(line.directory_only);
  EXPECT_TRUE(line.matches("d/out", "out", true));
  EXPECT_FALSE(line.matches("d/out", "out", false));
}

TEST(IgnoreLine, ASlashAnchorsToTheBaseElseTheNameMatchesAtAnyDepth) {
  const auto anywhere = compile_line("*.o", "sub");
  EXPECT_TRUE(anywhere.matches("sub/x/y.o", "y.o", false));
  const auto top = compile_line("/top.txt", "");
  EXPECT_TRUE(top.matches("top.txt", "top.txt", false));
  EXPECT_FALSE(top.matches("x/top.txt", "top.txt", false));
  const auto below = compile_line("x/*.c", "sub");
  EXPECT_TRUE(below.matches("sub/x/a.c", "a.c", false));
  EXPECT_FALSE(below.matches("x/a.c", "a.c", false));
  EXPECT_FALSE(below.matches("sub/y/x/a.c", "a.c", false));
  EXPECT_FALSE(below.matches("subx/a.c", "a.c", false));
}

// --- the index -----------------------------------------------------------------------------

struct index_entry {
  std::string path;
  std::uint32_t mode = 0100644;
};

void put32(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

// An index of `entries` (sorted, as git writes them) in `version` 2 or 4, SHA-1.
std::string make_index(const std::vector<index_entry>& entries, std::uint32_t version) {
  std::string out = "DIRC";
  put32(out, version);
  put32(out, static_cast<std::uint32_t>(entries.size()));
  std::string previous;
  for (const auto& entry : entries) {
    const std::size_t start = out.size();
    out.append(24, '\0');  // ctime, mtime, dev, ino
    put32(out, entry.mode);
    out.append(12, '\0');  // uid, gid, size
    out.append(20, '\x11');
    const auto length = static_cast<std::uint16_t>(std::min<std::size_t>(entry.path.size(), 0xfff));
    out += static_cast<char>(length >> 8);
    out += static_cast<char>(length & 0xff);
    if (version == 4) {
      std::size_t common = 0;
      while (common < previous.size() && common < entry.path.size() &&
             previous[common] == entry.path[common]) {
        ++common;
      }
      out += static_cast<char>(previous.size() - common);  // under 128 here: one byte
      out += entry.path.substr(common);
      out += '\0';
      previous = entry.path;
    } else {
      out += entry.path;
      out.append(8 - (out.size() - start) % 8, '\0');
    }
  }
  out.append(20, '\0');  // the checksum, which the reader does not check
  return out;
}

class IndexReader : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(IndexReader, ReadsFilesGitlinksAndEveryDirectoryAbove) {
  const temp_dir dir;
  write_file(dir / "index",
             make_index({{"a/b/c.txt"}, {"a/b/d.txt"}, {"mod", 0160000}, {"top"}}, GetParam()));
  const index_paths index = read_index((dir / "index").string(), 20);
  EXPECT_EQ(index.files, (std::unordered_set<std::string>{"a/b/c.txt", "a/b/d.txt", "mod", "top"}));
  EXPECT_EQ(index.gitlinks, (std::unordered_set<std::string>{"mod"}));
  EXPECT_EQ(index.directories, (std::unordered_set<std::string>{"a", "a/b"}));
}

TEST_P(IndexReader, GitlinksAloneComeInTheIndexsOrder) {
  const temp_dir dir;
  write_file(
      dir / "index",
      make_index({{"a/b/c.txt"}, {"a/mod", 0160000}, {"b"}, {"lib", 0160000}, {"z", 0160000}}, GetParam()));
  EXPECT_EQ(read_gitlinks((dir / "index").string(), 20), (std::vector<std::string>{"a/mod", "lib", "z"}));
}

INSTANTIATE_TEST_SUITE_P(Versions, IndexReader, ::testing::Values(2U, 4U));

TEST(IndexReaderErrors, MissingIsEmptyAndAnythingElseIsNotAnIndex) {
  const temp_dir dir;
  EXPECT_TRUE(read_index((dir / "none").string(), 20).files.empty());
  EXPECT_TRUE(read_gitlinks((dir / "none").string(), 20).empty());
  write_file(dir / "bad", "NOPE00000000");
  EXPECT_THROW(read_index((dir / "bad").string(), 20), std::invalid_argument);
  write_file(dir / "v9", std::string("DIRC\0\0\0\x09\0\0\0\0", 12));
  EXPECT_THROW(read_index((dir / "v9").string(), 20), std::invalid_argument);
  std::string cut = make_index({{"a/b/c.txt"}}, 2);
  cut.resize(40);
  write_file(dir / "cut", cut);
  EXPECT_THROW(read_index((dir / "cut").string(), 20), std::invalid_argument);
  EXPECT_THROW(read_gitlinks((dir / "cut").string(), 20), std::invalid_argument);
  EXPECT_THROW(read_gitlinks((dir / "v9").string(), 20), std::invalid_argument);
  try {
    read_index(dir.path().string(), 20);  // a directory: git cannot read it either
    ADD_FAILURE() << "no error";
  } catch (const sky_async::ignore::file_error& e) {
    EXPECT_EQ(e.code(), EISDIR);
    EXPECT_EQ(e.path(), dir.path().string());
  }
}

// --- the listing ---------------------------------------------------------------------------

listing_request request_for(const fs::path& top, std::string prefix = "") {
  listing_request request;
  request.top = fs::canonical(top).string();
  request.prefix = std::move(prefix);
  request.index_path = (top / ".git" / "index").string();
  return request;
}

void make_files(const fs::path& top, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    fs::create_directories((top / name).parent_path());
    if (name.ends_with('/')) continue;
    write_file(top / name, "x");
  }
}

using listing = std::optional<std::vector<std::string>>;

TEST(IgnoreListing, ListsWhatGitListsOnASmallTree) {
  const temp_dir dir;
  const fs::path top = dir / "repo";
  make_files(top, {".git/", ".gitignore", "a.log", "keep.log", "build/x", "src/b.log", "src/c.txt",
                   "logs/only.log", "empty/", "src/.gitignore", "src/deeper/d.tmp", "src/deeper/e"});
  write_file(top / ".gitignore", "*.log\nbuild/\n!keep.log\n");
  write_file(top / "src" / ".gitignore", "*.tmp\n");
  ASSERT_EQ(::mkfifo((top / "pipe.log").c_str(), 0600), 0);  // never listed
  EXPECT_EQ(list_ignored(request_for(top)),
            listing({{"a.log", "build/", "logs/", "logs/only.log", "src/b.log", "src/deeper/d.tmp"}}));
}

TEST(IgnoreListing, TrackedPathsAreNotListedAndTrackedDirectoriesAreEntered) {
  const temp_dir dir;
  const fs::path top = dir / "repo";
  make_files(top, {".git/", ".gitignore", "t.log", "n.log", "build/kept", "build/other", "mod/inner"});
  write_file(top / ".gitignore", "*.log\nbuild/\nmod/\n");
  write_file(top / ".git" / "index", make_index({{"build/kept"}, {"mod", 0160000}, {"t.log"}}, 2));
  EXPECT_EQ(list_ignored(request_for(top)), listing({{"build/other", "n.log"}}));
}

TEST(IgnoreListing, ExcludeFilesAreWeakerThanGitignoreFiles) {
  const temp_dir dir;
  const fs::path top = dir / "repo";
  make_files(top, {".git/", ".gitignore", "a.tmp", "b.bak", "c.bak"});
  write_file(top / ".gitignore", "!c.bak\n");
  write_file(dir / "exclude", "*.tmp\n");
  write_file(dir / "global", "*.bak\n");
  auto request = request_for(top);
  request.exclude_files = {(dir / "exclude").string(), (dir / "missing").string(), (dir / "global").string()};
  EXPECT_EQ(list_ignored(request), listing({{"a.tmp", "b.bak"}}));
}

TEST(IgnoreListing, ASubdirectoryAndWhereGitFails) {
  const temp_dir dir;
  const fs::path top = dir / "repo";
  make_files(top, {".git/", ".gitignore", "sub/a.log", "sub/b", "skipped/c/d"});
  write_file(top / ".gitignore", "*.log\nskipped/\n");
  EXPECT_EQ(list_ignored(request_for(top, "sub")), listing({{"a.log"}}));
  EXPECT_EQ(list_ignored(request_for(top, "skipped")), listing({{"./"}}));
  EXPECT_EQ(list_ignored(request_for(top, "skipped/c")), std::nullopt);
}

TEST(IgnoreListing, ADeepChainIsWalkedWithoutRecursion) {
  const temp_dir dir;
  const fs::path top = dir / "repo";
  fs::create_directories(top / ".git");
  write_file(top / ".gitignore", "*.log\n");
  std::string chain;
  for (int level = 0; level < 400; ++level) chain += "d/";
  fs::create_directories(top / chain);
  write_file(top / chain / "x.log", "x");
  write_file(top / chain / "keep", "x");  // not ignored: no directory of the chain is listed whole
  EXPECT_EQ(list_ignored(request_for(top)), listing({{chain + "x.log"}}));
}

}  // namespace
