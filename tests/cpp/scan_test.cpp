// Scanning trees: exact counts, sizes and problems on built trees, with and without
// following symlinks; the root's cases; largest/max_problems/collect_files; a
// 10,000-level chain with bounded descriptors; cancellation and shutdown. Every case
// runs once per I/O backend.
#include <sky_async/scan.hpp>  // first: the header must compile on its own

#include "scan/scan_engine.hpp"
#include "test_support.hpp"

#include <sky_async/runtime.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <climits>

namespace sky_async {
inline void PrintTo(scan_problem_kind kind, std::ostream* out) { *out << to_string(kind); }
}  // namespace sky_async

namespace {

using namespace std::chrono_literals;
using namespace sky_async_test;
using sky_async::io_backend;
using sky_async::scan_options;
using sky_async::scan_problem_kind;
using sky_async::tree_scan;
using kind = scan_problem_kind;

// (kind, path, errno or 0): a problem in a form gtest prints and compares.
using problem_row = std::tuple<scan_problem_kind, std::string, int>;

std::vector<problem_row> rows(const tree_scan& scan) {
  std::vector<problem_row> out;
  for (const auto& p : scan.problems) out.emplace_back(p.kind, p.path, p.error.value());
  return out;
}

void check(int rc, const std::string& what) {
  if (rc != 0) throw std::system_error(errno, std::generic_category(), what);
}

void make_dir(const fs::path& path) { check(::mkdir(path.c_str(), 0755), "mkdir " + path.string()); }
void make_link(const std::string& target, const fs::path& path) {
  check(::symlink(target.c_str(), path.c_str()), "symlink " + path.string());
}
void make_fifo(const fs::path& path) { check(::mkfifo(path.c_str(), 0644), "mkfifo " + path.string()); }

// A socket file stays after its socket is closed.
void make_socket_file(const fs::path& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  const int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::close(fd);
  check(rc, "bind " + path.string());
}

// The tree most cases use (sizes in bytes):
//   root/a.txt 10, .hidden 5, empty/, d1/big.bin 5000, d1/d2/d3/f 100, d1/d2/up -> ../..,
//   "new\nline" 7, "bad\xffname" 3, "bad\xfe" dir with x 1, fifo, sock,
//   link_file -> a.txt, link_dir -> d1, nowhere -> missing, loop_a <-> loop_b,
//   devnull -> /dev/null, ext -> ../outside, ext2 -> ../outside
//   outside/o 20, outside/back -> ../root/d1
struct zoo {
  explicit zoo(const temp_dir& dir) : root((dir / "root").string()), outside((dir / "outside").string()) {
    make_dir(root);
    make_dir(outside);
    write_file(root + "/a.txt", std::string(10, 'a'));
    write_file(root + "/.hidden", std::string(5, 'h'));
    make_dir(root + "/empty");
    make_dir(root + "/d1");
    write_file(root + "/d1/big.bin", std::string(5000, 'b'));
    make_dir(root + "/d1/d2");
    make_dir(root + "/d1/d2/d3");
    write_file(root + "/d1/d2/d3/f", std::string(100, 'f'));
    make_link("../..", root + "/d1/d2/up");
    write_file(root + "/new\nline", std::string(7, 'n'));
    write_file(root + "/bad\xffname", "bad");
    make_dir(root + "/bad\xfe");
    write_file(root + "/bad\xfe/x", "x");
    make_fifo(root + "/fifo");
    make_socket_file(root + "/sock");
    make_link("a.txt", root + "/link_file");
    make_link("d1", root + "/link_dir");
    make_link("missing", root + "/nowhere");
    make_link("loop_b", root + "/loop_a");
    make_link("loop_a", root + "/loop_b");
    make_link("/dev/null", root + "/devnull");
    make_link("../outside", root + "/ext");
    make_link("../outside", root + "/ext2");
    write_file(outside + "/o", std::string(20, 'o'));
    make_link("../root/d1", outside + "/back");
  }
  std::string root;
  std::string outside;
};

class ScanTree : public on_each_io_backend {
 protected:
  tree_scan scan(const std::string& root, scan_options options = {}) {
    return run(sky_async::scan_tree(rt(), root, options));
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ScanTree, all_io_backends, io_backend_name);

TEST_P(ScanTree, CountsEveryKindOfEntryWithoutFollowingSymlinks) {
  const zoo z(dir_);
  const auto result = scan(z.root);
  ASSERT_FALSE(result.error) << describe(result.error);
  EXPECT_EQ(result.files, 7u);        // a.txt .hidden big.bin f new\nline bad\xffname bad\xfe/x
  EXPECT_EQ(result.directories, 5u);  // empty d1 d2 d3 bad\xfe (not the root)
  EXPECT_EQ(result.symlinks, 9u);
  EXPECT_EQ(result.special_files, 2u);  // fifo sock
  EXPECT_EQ(result.bytes, 10u + 5 + 5000 + 100 + 7 + 3 + 1);
  const std::string& r = z.root;
  const std::vector<problem_row> expected = {
      // d1/d2/up, a link to a directory that contains it, loops only when followed.
      {kind::invalid_utf8_name, r + "/bad\xfe", 0}, {kind::invalid_utf8_name, r + "/bad\xffname", 0},
      {kind::special_file, r + "/fifo", 0},         {kind::symlink_loop, r + "/loop_a", ELOOP},
      {kind::symlink_loop, r + "/loop_b", ELOOP},   {kind::broken_symlink, r + "/nowhere", ENOENT},
      {kind::special_file, r + "/sock", 0},
  };
  EXPECT_EQ(rows(result), expected);
  EXPECT_EQ(result.count(kind::symlink_loop), 2u);
  EXPECT_EQ(result.count(kind::special_file), 2u);
  EXPECT_EQ(result.count(kind::invalid_utf8_name), 2u);
  EXPECT_EQ(result.count(kind::broken_symlink), 1u);
  EXPECT_EQ(result.total_problems(), 7u);
  EXPECT_TRUE(result.file_paths.empty());
}

TEST_P(ScanTree, FollowingSymlinksCountsTargetsOnceAndStopsAtLoops) {
  const zoo z(dir_);
  const auto result = scan(z.root, {.follow_symlinks = true});
  ASSERT_FALSE(result.error) << describe(result.error);
  // + link_file (10 bytes) and ext/o (20 bytes); ext2 and link_dir lead to directories
  // scanned already, outside/back too; d1/d2/up is a loop.
  EXPECT_EQ(result.files, 9u);
  EXPECT_EQ(result.bytes, 10u + 5 + 5000 + 100 + 7 + 3 + 1 + 10 + 20);
  EXPECT_EQ(result.directories, 6u);    // + ext
  EXPECT_EQ(result.symlinks, 10u);      // + ext/back
  EXPECT_EQ(result.special_files, 3u);  // + devnull
  const std::string& r = z.root;
  const std::vector<problem_row> expected = {
      {kind::invalid_utf8_name, r + "/bad\xfe", 0}, {kind::invalid_utf8_name, r + "/bad\xffname", 0},
      {kind::symlink_loop, r + "/d1/d2/up", 0},     {kind::special_file, r + "/devnull", 0},
      {kind::special_file, r + "/fifo", 0},         {kind::symlink_loop, r + "/loop_a", ELOOP},
      {kind::symlink_loop, r + "/loop_b", ELOOP},   {kind::broken_symlink, r + "/nowhere", ENOENT},
      {kind::special_file, r + "/sock", 0},
  };
  EXPECT_EQ(rows(result), expected);
  // ext sorts before ext2, so the outside directory is scanned under ext.
  const auto all = scan(z.root, {.follow_symlinks = true, .collect_files = true}).file_paths;
  EXPECT_NE(std::find(all.begin(), all.end(), r + "/ext/o"), all.end());
  EXPECT_NE(std::find(all.begin(), all.end(), r + "/link_file"), all.end());
}

TEST_P(ScanTree, SameResultEveryTime) {
  const zoo z(dir_);
  for (bool follow : {false, true}) {
    const scan_options options{
        .follow_symlinks = follow, .largest = 4, .collect_files = true, .max_problems = 3};
    const auto first = scan(z.root, options);
    for (int i = 0; i < 5; ++i) {
      const auto again = scan(z.root, options);
      EXPECT_EQ(rows(again), rows(first));
      EXPECT_EQ(again.file_paths, first.file_paths);
      EXPECT_EQ(again.files, first.files);
      EXPECT_EQ(again.directories, first.directories);
    }
  }
}

TEST_P(ScanTree, LargestAreBiggestFirstThenByPath) {
  const auto root = dir_ / "t";
  make_dir(root);
  const std::vector<std::pair<std::string, std::size_t>> files = {{"a", 30}, {"b", 50}, {"c", 30}, {"d", 0},
                                                                  {"e", 70}, {"f", 30}, {"g", 10}};
  for (const auto& [name, size] : files) write_file(root / name, std::string(size, 'x'));
  const auto result = scan(root.string(), {.largest = 4});
  const std::string r = root.string();
  ASSERT_EQ(result.largest.size(), 4u);
  EXPECT_EQ(result.largest[0].path, r + "/e");
  EXPECT_EQ(result.largest[1].path, r + "/b");
  EXPECT_EQ(result.largest[2].path, r + "/a");
  EXPECT_EQ(result.largest[3].path, r + "/c");
  EXPECT_EQ(result.largest[0].size, 70u);
  EXPECT_EQ(result.largest[3].size, 30u);
  EXPECT_TRUE(scan(root.string(), {.largest = 0}).largest.empty());
  EXPECT_EQ(scan(root.string(), {.largest = 100}).largest.size(), files.size());
}

TEST_P(ScanTree, TooLargeFilesAreReportedWithTheirSize) {
  const zoo z(dir_);
  const auto result = scan(z.root, {.max_file_size = 99});
  std::vector<std::pair<std::string, std::uint64_t>> large;
  for (const auto& p : result.problems) {
    if (p.kind == kind::too_large) large.emplace_back(p.path, p.size);
  }
  const std::vector<std::pair<std::string, std::uint64_t>> expected = {{z.root + "/d1/big.bin", 5000},
                                                                       {z.root + "/d1/d2/d3/f", 100}};
  EXPECT_EQ(large, expected);
  EXPECT_EQ(scan(z.root, {.max_file_size = 100}).count(kind::too_large), 1u);  // over, not at
}

TEST_P(ScanTree, MaxProblemsKeepsTheFirstByPathAndCountsAll) {
  const auto root = dir_ / "broken";
  make_dir(root);
  for (int i = 0; i < 300; ++i) make_link("missing", root / ("l" + std::to_string(1000 + i)));
  const auto result = scan(root.string(), {.max_problems = 5});
  ASSERT_EQ(result.problems.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(result.problems[i].path, (root / ("l" + std::to_string(1000 + i))).string());
    EXPECT_EQ(result.problems[i].kind, kind::broken_symlink);
  }
  EXPECT_EQ(result.count(kind::broken_symlink), 300u);
  EXPECT_EQ(result.symlinks, 300u);
  EXPECT_TRUE(scan(root.string(), {.max_problems = 0}).problems.empty());
}

TEST_P(ScanTree, CollectFilesListsEveryRegularFileSorted) {
  const zoo z(dir_);
  const auto result = scan(z.root, {.collect_files = true});
  const std::string& r = z.root;
  std::vector<std::string> expected = {r + "/.hidden",     r + "/a.txt",      r + "/bad\xfe/x",
                                       r + "/bad\xffname", r + "/d1/big.bin", r + "/d1/d2/d3/f",
                                       r + "/new\nline"};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(result.file_paths, expected);
}

TEST_P(ScanTree, MissingRootIsTheErrorOfTheWholeCall) {
  const auto missing = (dir_ / "missing").string();
  const auto result = run(sky_async::async_scan_tree(rt(), missing, {}, asio::use_awaitable));
  EXPECT_EQ(result.error, std::errc::no_such_file_or_directory) << describe(result.error);
  EXPECT_EQ(result.files, 0u);
  try {
    scan(missing);
    ADD_FAILURE() << "no exception";
  } catch (const std::filesystem::filesystem_error& e) {
    EXPECT_EQ(e.path1(), missing);
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
}

TEST_P(ScanTree, RootThatIsAFileOrASpecialFile) {
  const auto file = dir_ / "file";
  write_file(file, std::string(42, 'x'));
  const auto result = scan(file.string(), {.max_file_size = 10, .collect_files = true});
  EXPECT_EQ(result.files, 1u);
  EXPECT_EQ(result.bytes, 42u);
  EXPECT_EQ(result.directories, 0u);
  ASSERT_EQ(result.largest.size(), 1u);
  EXPECT_EQ(result.largest[0].path, file.string());
  EXPECT_EQ(result.file_paths, std::vector<std::string>{file.string()});
  EXPECT_EQ(rows(result), (std::vector<problem_row>{{kind::too_large, file.string(), 0}}));

  const auto fifo = dir_ / "fifo";
  make_fifo(fifo);
  const auto special = scan(fifo.string());
  EXPECT_EQ(special.special_files, 1u);
  EXPECT_EQ(rows(special), (std::vector<problem_row>{{kind::special_file, fifo.string(), 0}}));
}

TEST_P(ScanTree, SymlinkAsTheRootIsFollowedAndPathsKeepItsName) {
  const zoo z(dir_);
  const auto link = (dir_ / "via").string();
  make_link("root", link);
  const auto through_link = scan(link, {.collect_files = true});
  const auto direct = scan(z.root, {.collect_files = true});
  EXPECT_EQ(through_link.files, direct.files);
  EXPECT_EQ(through_link.directories, direct.directories);
  EXPECT_EQ(through_link.file_paths.front().rfind(link + "/", 0), 0u) << through_link.file_paths.front();
  // A trailing slash is not doubled.
  const auto slashed = scan(z.root + "/", {.collect_files = true});
  EXPECT_EQ(slashed.file_paths, direct.file_paths);
}

TEST_P(ScanTree, NamesThatAreNotUtf8AreReported) {
  const auto root = dir_ / "names";
  make_dir(root);
  const std::vector<std::string> valid = {
      "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf"};
  const std::vector<std::string> invalid = {
      "\xff", "\xc0\x80", "\xc3", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
      "a\x80"};
  for (const auto& name : valid) write_file(root / name, "");
  for (const auto& name : invalid) write_file(root / name, "");
  std::vector<std::string> reported;
  for (const auto& p : scan(root.string()).problems) {
    EXPECT_EQ(p.kind, kind::invalid_utf8_name);
    reported.push_back(fs::path(p.path).filename().string());
  }
  auto expected = invalid;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(reported, expected);
}

// Directory descriptors this process has open on `root` or below it.
std::size_t fds_below(const std::string& root) {
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    char target[PATH_MAX + 1];
    const ssize_t n = ::readlink(entry.path().c_str(), target, PATH_MAX);
    if (n <= 0) continue;
    if (std::string_view(target, static_cast<std::size_t>(n)).substr(0, root.size()) == root) ++count;
  }
  return count;
}

// A chain root/d/d/.../d (depth levels) with a file at the bottom and, every 1,000
// levels, a sibling e/ holding x: its path is far over PATH_MAX, so it is reopened in pieces.
void make_chain(const std::string& root, int depth) {
  make_dir(root);
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (int level = 1; level <= depth; ++level) {
    check(::mkdirat(fd, "d", 0755), "mkdirat");
    if (level % 1000 == 0) {
      check(::mkdirat(fd, "e", 0755), "mkdirat e");
      const int x = ::openat(fd, "e/x", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      ::close(x);
    }
    const int next = ::openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(fd);
    fd = next;
  }
  const int leaf = ::openat(fd, "leaf", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  check(static_cast<int>(::write(leaf, "leaf!", 5) != 5), "write leaf");
  ::close(leaf);
  ::close(fd);
}

// fs::remove_all keeps a descriptor per level and needs paths under PATH_MAX: go down
// with one descriptor, then back up through "..", removing each level on the way.
void remove_chain(const std::string& root) {
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int depth = 0;
  for (int child; (child = ::openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0; ++depth) {
    ::close(fd);
    fd = child;
  }
  for (; depth > 0; --depth) {
    ::unlinkat(fd, "leaf", 0);
    ::unlinkat(fd, "e/x", 0);
    ::unlinkat(fd, "e", AT_REMOVEDIR);
    const int parent = ::openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(fd);
    fd = parent;
    ::unlinkat(fd, "d", AT_REMOVEDIR);
  }
  ::close(fd);
  fs::remove_all(root);
}

TEST_P(ScanTree, TenThousandLevelsDeepWithBoundedDescriptors) {
  constexpr int depth = 10000;
  const std::string root = (dir_ / "chain").string();
  make_chain(root, depth);
  const auto fds_before = open_fds();
  std::atomic<bool> done{false};
  std::size_t most = 0;
  std::thread sampler([&] {
    while (!done.load()) {
      most = std::max(most, fds_below(root));
      std::this_thread::sleep_for(50us);  // leave the cores to the scan
    }
  });
  tree_scan result;
  try {
    result = scan(root, {.collect_files = true});
  } catch (...) {
    done = true;
    sampler.join();
    remove_chain(root);
    throw;
  }
  done = true;
  sampler.join();
  remove_chain(root);
  EXPECT_EQ(result.directories, static_cast<std::uint64_t>(depth + depth / 1000));
  EXPECT_EQ(result.files, static_cast<std::uint64_t>(1 + depth / 1000));
  EXPECT_EQ(result.bytes, 5u);
  EXPECT_EQ(result.total_problems(), 0u);
  std::string leaf = root;
  for (int i = 0; i < depth; ++i) leaf += "/d";
  leaf += "/leaf";
  ASSERT_FALSE(result.largest.empty());
  EXPECT_EQ(result.largest[0].path, leaf);
  EXPECT_NE(std::find(result.file_paths.begin(), result.file_paths.end(), leaf), result.file_paths.end());
  EXPECT_LE(most, 2 * rt().threads()) << "directory descriptors open at once";
  EXPECT_EQ(open_fds(), fds_before);
}

// A tree of dirs x files that takes a while to scan.
std::string make_wide_tree(const temp_dir& dir, int dirs, int files) {
  const std::string root = (dir / "wide").string();
  make_dir(root);
  for (int d = 0; d < dirs; ++d) {
    const std::string sub = root + "/" + std::to_string(d);
    make_dir(sub);
    for (int f = 0; f < files; ++f) write_file(sub + "/" + std::to_string(f), "");
  }
  return root;
}

TEST_P(ScanTree, CancellationThroughSlotAbortsAndClosesEverything) {
  constexpr int depth = 3000;
  const std::string root = (dir_ / "chain").string();
  make_chain(root, depth);
  for (auto delay : {0ms, 1ms, 5ms}) {
    asio::io_context ctx;
    asio::cancellation_signal signal;
    const auto fds_before = open_fds();
    bool called = false;
    boost::system::error_code ec;
    sky_async::async_scan_tree(
        rt(), root, {},
        asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, [&](auto e, auto) {
                                       called = true;
                                       ec = e;
                                     })));
    std::this_thread::sleep_for(delay);
    signal.emit(asio::cancellation_type::terminal);
    ctx.run_for(10s);
    EXPECT_TRUE(called);
    EXPECT_EQ(ec, asio::error::operation_aborted) << ec.message();
    EXPECT_EQ(open_fds(), fds_before)
        << "descriptors left open after a cancellation " << delay.count() << " ms in";
  }
  remove_chain(root);
  // Still usable.
  const zoo z(dir_);
  EXPECT_EQ(scan(z.root).files, 7u);
}

TEST_P(ScanTree, RuntimeDestructorWithAScanInFlightDoesNotHang) {
  const std::string root = make_wide_tree(dir_, 100, 30);
  rt_.reset();
  asio::io_context ctx;
  const auto fds_before = open_fds();
  auto doomed = std::make_unique<sky_async::runtime>(sky_async::runtime_options{.backend = GetParam()});
  bool called = false;
  sky_async::async_scan_tree(*doomed, root, {}, asio::bind_executor(ctx, [&](auto, auto) { called = true; }));
  std::this_thread::sleep_for(1ms);
  doomed.reset();
  ctx.run_for(5s);
  EXPECT_TRUE(called);
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked";
}

TEST_P(ScanTree, WideTreeCountsAreExactWithAllWorkersBusy) {
  const std::string root = make_wide_tree(dir_, 200, 10);
  const auto result = scan(root, {.collect_files = true});
  EXPECT_EQ(result.directories, 200u);
  EXPECT_EQ(result.files, 2000u);
  EXPECT_EQ(result.file_paths.size(), 2000u);
  EXPECT_TRUE(std::is_sorted(result.file_paths.begin(), result.file_paths.end()));
  EXPECT_EQ(std::adjacent_find(result.file_paths.begin(), result.file_paths.end()), result.file_paths.end());
}

// As root, permissions do not stop us: a forked child drops to nobody first.
TEST_P(ScanTree, UnreadableDirectoriesAndFilesAreReported) {
  const std::string root = (dir_ / "perm").string();
  make_dir(root);
  ::chmod(dir_.path().c_str(), 0755);
  make_dir(root + "/locked");
  write_file(root + "/locked/inside", "x");
  write_file(root + "/secret", "s");
  write_file(root + "/open", "o");
  ::chmod((root + "/locked").c_str(), 0);
  ::chmod((root + "/secret").c_str(), 0);
  if (::geteuid() != 0) {
    if (::access((root + "/secret").c_str(), R_OK) == 0) GTEST_SKIP() << "this user can read mode-000 files";
    const auto result = scan(root);
    EXPECT_EQ(rows(result), (std::vector<problem_row>{{kind::unreadable_directory, root + "/locked", EACCES},
                                                      {kind::unreadable_file, root + "/secret", EACCES}}));
    return;
  }
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The child of a fork() of this multithreaded process starts a runtime of its own. Under
  // AddressSanitizer it can hang on the allocator's locks (seen once in CI); ThreadSanitizer
  // refuses new threads there ("dup thread with used id"). The plain build runs this case.
  GTEST_SKIP() << "a runtime in a forked child of a multithreaded process is not supported by the sanitizers";
#endif
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int status = 1;
    if (::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0) {
      try {
        sky_async::runtime child_rt(sky_async::runtime_options{.backend = GetParam()});
        const auto result = run(sky_async::scan_tree(child_rt, root));
        const std::vector<problem_row> expected = {{kind::unreadable_directory, root + "/locked", EACCES},
                                                   {kind::unreadable_file, root + "/secret", EACCES}};
        status = (rows(result) == expected && result.files == 2 && result.directories == 1) ? 0 : 3;
      } catch (...) {
        status = 4;
      }
    }
    ::_exit(status);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::chmod((root + "/locked").c_str(), 0755);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: could not drop privileges, 3: wrong result, 4: exception";
}

// Makes entries vanish on cue: while it lives, each scan that lists a path in `actions`
// runs that path's action once, between the listing and the stat or open of the entry.
class vanishing {
 public:
  explicit vanishing(std::map<std::string, std::function<void()>> actions) : actions_(std::move(actions)) {
    sky_async::detail::set_scan_entry_hook([this](const std::string& path) {
      std::function<void()> action;
      {
        std::lock_guard lock(mutex_);
        const auto found = actions_.find(path);
        if (found == actions_.end()) return;
        action = std::move(found->second);
        actions_.erase(found);
      }
      action();
    });
  }
  ~vanishing() { sky_async::detail::set_scan_entry_hook({}); }
  vanishing(const vanishing&) = delete;
  vanishing& operator=(const vanishing&) = delete;

 private:
  std::mutex mutex_;
  std::map<std::string, std::function<void()>> actions_;
};

std::function<void()> remove_all(const std::string& path) {
  return [path] { fs::remove_all(path); };
}
std::function<void()> replace_by_file(const std::string& path) {
  return [path] {
    fs::remove_all(path);
    write_file(path, "");
  };
}
std::function<void()> replace_by_symlink(const std::string& path) {
  return [path] {
    fs::remove_all(path);
    make_link(".", path);
  };
}

// The tree of tests/python/test_scan.py's build_changing_tree: what vanishes is neither
// counted nor a problem, only `vanished`.
TEST_P(ScanTree, EntriesThatVanishAfterTheirListingAreCountedNotReported) {
  const std::string root = (dir_ / "changing").string();
  make_dir(root);
  make_dir(root + "/keep_dir");
  write_file(root + "/keep", "abc");
  write_file(root + "/keep_dir/f", "12345");
  write_file(root + "/gone_file", std::string(100, 'x'));
  write_file(root + "/gone\xffname", "x");  // no invalid_utf8_name either
  make_dir(root + "/gone_dir");
  make_dir(root + "/gone_dir/deeper");
  write_file(root + "/gone_dir/inner", "y");
  make_link("keep", root + "/gone_link");
  make_dir(root + "/to_file");  // then ENOTDIR when opened as a directory
  make_dir(root + "/to_link");  // ENOTDIR too: O_NOFOLLOW | O_DIRECTORY
  // child is single's only subdirectory: held back, and opened relative to single.
  make_dir(root + "/single");
  make_dir(root + "/single/child");
  write_file(root + "/single/child/f", "z");
  for (bool follow : {false, true}) {
    SCOPED_TRACE(follow ? "following symlinks" : "not following symlinks");
    tree_scan result;
    {
      const vanishing changes({
          {root + "/gone_file", remove_all(root + "/gone_file")},
          {root + "/gone\xffname", remove_all(root + "/gone\xffname")},
          {root + "/gone_dir", remove_all(root + "/gone_dir")},
          {root + "/gone_link", remove_all(root + "/gone_link")},
          {root + "/to_file", replace_by_file(root + "/to_file")},
          {root + "/to_link", replace_by_symlink(root + "/to_link")},
          {root + "/single/child", remove_all(root + "/single/child")},
      });
      result = scan(root, {.follow_symlinks = follow, .collect_files = true});
    }
    EXPECT_EQ(rows(result), std::vector<problem_row>{});
    EXPECT_EQ(result.total_problems(), 0u);
    EXPECT_EQ(result.files, 2u);
    EXPECT_EQ(result.directories, 2u);  // keep_dir single
    EXPECT_EQ(result.symlinks, 0u);
    EXPECT_EQ(result.special_files, 0u);
    EXPECT_EQ(result.bytes, 3u + 5);
    EXPECT_EQ(result.vanished, 7u);
    EXPECT_EQ(result.file_paths, (std::vector<std::string>{root + "/keep", root + "/keep_dir/f"}));
    // What replaced two of them was not scanned: the next scan finds it.
    const auto again = scan(root, {.follow_symlinks = follow});
    EXPECT_EQ(again.files, 3u);
    EXPECT_EQ(again.symlinks, 1u);
    EXPECT_EQ(again.vanished, 0u);
    // to_link now points at the root: a loop only when followed.
    const auto loops = follow ? std::vector<problem_row>{{kind::symlink_loop, root + "/to_link", 0}}
                              : std::vector<problem_row>{};
    EXPECT_EQ(rows(again), loops);
    // The next round starts from the same tree.
    fs::remove(root + "/to_file");
    fs::remove(root + "/to_link");
    write_file(root + "/gone_file", std::string(100, 'x'));
    write_file(root + "/gone\xffname", "x");
    make_dir(root + "/gone_dir");
    make_link("keep", root + "/gone_link");
    make_dir(root + "/to_file");
    make_dir(root + "/to_link");
    make_dir(root + "/single/child");
  }
}

// getdents64 on a directory removed since it was opened fails with ENOENT: the end of its
// listing, as glibc's readdir treats it.
TEST_P(ScanTree, DirectoryRemovedWhileItIsListedEndsItsListing) {
  const std::string root = (dir_ / "root").string();
  const std::string big = root + "/big";
  make_dir(root);
  make_dir(big);
  // Names long enough that the listing takes several getdents64 calls; the first entry
  // listed, whichever it is, removes the whole directory.
  std::map<std::string, std::function<void()>> actions;
  constexpr int count = 3000;
  for (int i = 0; i < count; ++i) {
    const std::string path = big + "/" + std::to_string(10000 + i) + std::string(60, 'n');
    write_file(path, "");
    actions.emplace(path, remove_all(big));
  }
  tree_scan result;
  {
    const vanishing changes(std::move(actions));
    result = scan(root);
  }
  EXPECT_EQ(rows(result), std::vector<problem_row>{});
  EXPECT_EQ(result.files, 0u);
  EXPECT_EQ(result.directories, 1u);
  // The entries listed before the listing ended vanished; the rest were never listed.
  EXPECT_GE(result.vanished, 1u);
  EXPECT_LT(result.vanished, static_cast<std::uint64_t>(count));
}

// Symlinked directories are opened after the rest of the tree is done, so an entry below
// the root can remove the link's target in between.
TEST_P(ScanTree, FollowedSymlinkWhoseDirectoryVanishesIsNotAProblem) {
  const std::string root = (dir_ / "root").string();
  const std::string outside = (dir_ / "outside").string();
  make_dir(root);
  make_dir(root + "/sub");  // root's only subdirectory: listed after root, before the link
  write_file(root + "/sub/marker", "m");
  make_dir(outside);
  write_file(outside + "/o", "o");
  make_link("../outside", root + "/link");
  tree_scan result;
  {
    const vanishing changes({{root + "/sub/marker", remove_all(outside)}});
    result = scan(root, {.follow_symlinks = true});
  }
  EXPECT_EQ(rows(result), std::vector<problem_row>{});
  EXPECT_EQ(result.files, 1u);
  EXPECT_EQ(result.directories, 1u);  // sub; not the link's, which vanished
  EXPECT_EQ(result.symlinks, 1u);
  EXPECT_EQ(result.vanished, 1u);
}

TEST_P(ScanTree, EmptyDirectory) {
  const auto root = dir_ / "empty";
  make_dir(root);
  const auto result = scan(root.string(), {.collect_files = true});
  EXPECT_EQ(result.files + result.directories + result.symlinks + result.special_files + result.bytes, 0u);
  EXPECT_TRUE(result.problems.empty());
  EXPECT_TRUE(result.largest.empty());
}

// scan_options::excluded: an excluded entry is neither counted nor reported, and an excluded
// directory is not descended (the FIFO and the broken link in it are never met). The result
// is that of the same tree without the excluded paths.
TEST_P(ScanTree, ExcludedPathsArePrunedAndNotCounted) {
  const auto build = [](const std::string& root, bool with_excluded) {
    make_dir(root);
    write_file(root + "/keep.txt", std::string(10, 'k'));
    make_dir(root + "/src");
    write_file(root + "/src/main.c", std::string(30, 'm'));
    if (with_excluded) {
      write_file(root + "/src/build.log", std::string(500, 'l'));
      make_dir(root + "/node_modules");
      make_dir(root + "/node_modules/pkg");
      write_file(root + "/node_modules/pkg/index.js", std::string(7000, 'j'));
      make_fifo(root + "/node_modules/pkg/fifo");
      make_link("missing", root + "/node_modules/nowhere");
      make_link("src", root + "/src_link");
    }
  };
  const std::string pruned = (dir_ / "pruned").string();
  const std::string oracle = (dir_ / "oracle").string();
  build(pruned, true);
  build(oracle, false);
  const std::vector<std::string> excluded = {"src_link", "node_modules", "src/build.log", "not/there"};
  for (bool follow : {false, true}) {
    for (const std::string& root : {pruned, pruned + "/"}) {
      const auto result =
          scan(root, {.follow_symlinks = follow, .collect_files = true, .excluded = excluded});
      const auto expected = scan(oracle, {.follow_symlinks = follow, .collect_files = true});
      ASSERT_FALSE(result.error) << describe(result.error);
      EXPECT_EQ(result.files, expected.files);
      EXPECT_EQ(result.files, 2u);
      EXPECT_EQ(result.directories, expected.directories);
      EXPECT_EQ(result.symlinks, expected.symlinks);
      EXPECT_EQ(result.special_files, expected.special_files);
      EXPECT_EQ(result.bytes, 40u);
      EXPECT_EQ(result.total_problems(), 0u);
      EXPECT_EQ(rows(result), std::vector<problem_row>{});
      const std::string base = root.back() == '/' ? root : root + "/";
      EXPECT_EQ(result.file_paths, (std::vector<std::string>{base + "keep.txt", base + "src/main.c"}));
    }
  }
  // Without the list, the same tree has the problems the excluded directory hides.
  const auto whole = scan(pruned);
  EXPECT_EQ(whole.files, 4u);
  EXPECT_EQ(whole.count(kind::special_file), 1u);
  EXPECT_EQ(whole.count(kind::broken_symlink), 1u);
}

TEST(ScanProblemKind, NamesRoundTrip) {
  const char* names[] = {"unreadable_directory", "unreadable_file",   "broken_symlink", "symlink_loop",
                         "special_file",         "invalid_utf8_name", "too_large",      "stat_error"};
  for (std::size_t i = 0; i < sky_async::scan_problem_kind_count; ++i) {
    const auto k = static_cast<scan_problem_kind>(i);
    EXPECT_EQ(sky_async::to_string(k), names[i]);
    EXPECT_EQ(sky_async::parse_scan_problem_kind(names[i]), k);
  }
  EXPECT_EQ(sky_async::parse_scan_problem_kind("nope"), std::nullopt);
}

TEST(GlobalRuntime, ScanTreeUsesIt) {
  temp_dir dir;
  write_file(dir / "f", "123");
  const auto result = run(sky_async::scan_tree(dir.path()));
  EXPECT_EQ(result.files, 1u);
  EXPECT_EQ(result.bytes, 3u);
}

}  // namespace
