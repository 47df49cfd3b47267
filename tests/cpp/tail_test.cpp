// Tail of files: SkyPilot's selection of the last lines (against a whole-file oracle),
// per-file errors, special files, many files, bounded reads of huge files, truncation
// while reading, cancellation and read_last_n_lines. Every case runs once per I/O
// backend; the io_uring ones are skipped where io_uring is unavailable.
#include <sky_async/tail.hpp>  // first: the header must compile on its own

#include "fd_exhaustion.hpp"
#include "tail/tail_select.hpp"
#include "test_support.hpp"

#include <sky_async/error.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using namespace sky_async_test;
using sky_async::io_backend;
using sky_async::tail_options;
using sky_async::tail_result;
using lines_t = std::vector<std::string>;

// The definition, on the whole content at once: split on LF, drop the empty piece
// after a final LF, keep the last n pieces.
tail_result oracle(const std::string& data, std::size_t n) {
  tail_result out;
  if (n == 0 || data.empty()) return out;
  lines_t pieces;
  std::size_t start = 0;
  for (;;) {
    const std::size_t lf = data.find('\n', start);
    if (lf == std::string::npos) {
      pieces.push_back(data.substr(start));
      break;
    }
    pieces.push_back(data.substr(start, lf - start));
    start = lf + 1;
  }
  if (pieces.back().empty()) {
    pieces.pop_back();
    out.final_newline = true;
  }
  const std::size_t keep = std::min(n, pieces.size());
  out.lines.assign(pieces.end() - static_cast<std::ptrdiff_t>(keep), pieces.end());
  return out;
}

// The total bytes this process has read through read(2)/pread(2), all threads.
std::uint64_t bytes_read_by_process() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  throw std::runtime_error("no rchar in /proc/self/io");
}

class TailFiles : public on_each_io_backend {
 protected:
  std::vector<tail_result> tail(std::vector<std::filesystem::path> paths, std::size_t n,
                                tail_options options = {}) {
    auto results = run(sky_async::tail_files(rt(), paths, n, options));
    EXPECT_EQ(results.size(), paths.size());
    for (const auto& r : results) {
      if (!r.ok()) {
        EXPECT_TRUE(r.lines.empty()) << "lines alongside " << describe(r.error);
      }
    }
    return results;
  }

  std::filesystem::path file(const std::string& name, const std::string& data) {
    const auto path = dir_ / name;
    write_file(path, data);
    return path;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, TailFiles, all_io_backends, io_backend_name);

#define EXPECT_TAIL(result, expected_lines, expected_final_newline) \
  do {                                                              \
    const tail_result& r_ = (result);                               \
    EXPECT_TRUE(r_.ok()) << describe(r_.error);                     \
    EXPECT_EQ(r_.lines, (expected_lines));                          \
    EXPECT_EQ(r_.final_newline, (expected_final_newline));          \
  } while (false)

TEST_P(TailFiles, ReferenceExamplesGiveRawLinesWithCRsKept) {
  struct example {
    std::string data;
    std::size_t n;
    lines_t lines;
    bool final_newline;
  };
  const std::vector<example> examples = {
      {"line1\nline2\nline3\n", 2, {"line2", "line3"}, true},
      {"a\nb\n", 5, {"a", "b"}, true},
      {"a\nb", 5, {"a", "b"}, false},
      {"only one line\n", 5, {"only one line"}, true},
      {"\n", 1, {""}, true},
      {"\n\n", 5, {"", ""}, true},
      {"x\n\ny\n", 2, {"", "y"}, true},
      {"a\rb\n", 1, {"a\rb"}, true},
      {"a\r\nb\r\n", 5, {"a\r", "b\r"}, true},
      {"a\r\r\n", 1, {"a\r\r"}, true},
      {"v\x0bw\x0cx\n", 3, {"v\x0bw\x0cx"}, true},
      {std::string("n\0ul\n", 5), 1, {std::string("n\0ul", 4)}, true},
      {"\xef\xbb\xbf"
       "bom\n\xff\xfe\n",
       5,
       {"\xef\xbb\xbf"
        "bom",
        "\xff\xfe"},
       true},
      {"a\nb\n", 0, {}, false},
      {"", 3, {}, false},
  };
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const auto& e = examples[i];
    const auto path = file("e" + std::to_string(i), e.data);
    auto results = tail({path}, e.n);
    SCOPED_TRACE("example " + std::to_string(i));
    EXPECT_TAIL(results[0], e.lines, e.final_newline);
  }
}

TEST_P(TailFiles, MatchesTheWholeFileOracleForEveryChunkSize) {
  std::mt19937_64 random(11);
  for (int round = 0; round < 150; ++round) {
    // Short alphabets make LFs and CRs frequent, so lines are short and often empty.
    const std::string alphabet = round % 2 ? "ab\n" : "x\r\n\n\xff";
    std::string data(random() % 300, '\0');
    for (auto& c : data) c = alphabet[random() % alphabet.size()];
    const std::size_t n = random() % 12;
    const std::size_t chunk = 1 + random() % 40;
    const auto path = file("r" + std::to_string(round), data);
    auto results = tail({path}, n, {.chunk_size = chunk});
    const auto expected = oracle(data, n);
    SCOPED_TRACE("round " + std::to_string(round) + " n " + std::to_string(n) + " chunk " +
                 std::to_string(chunk));
    EXPECT_TAIL(results[0], expected.lines, expected.final_newline);
  }
}

// Each job sizes a file's first read by what the previous file needed (the engine's
// tail_hint): files whose lines are much longer, or much shorter, than their
// predecessors' must still give exactly the oracle's lines, whatever the chunk size.
TEST_P(TailFiles, BatchesMixingLineLengthsMatchTheOracle) {
  std::mt19937_64 random(5);
  const std::size_t line_lengths[] = {0, 3, 40, 150, 700, 5000, 20000};
  std::vector<std::filesystem::path> paths;
  std::vector<std::string> contents;
  for (int i = 0; i < 120; ++i) {
    const std::size_t length = line_lengths[random() % std::size(line_lengths)];
    std::string data;
    const std::size_t lines = random() % 30;
    for (std::size_t l = 0; l < lines; ++l) {
      data.append(length == 0 ? 0 : random() % (2 * length), static_cast<char>('a' + l % 26));
      data += '\n';
    }
    if (random() % 3 == 0) data += "partial";
    paths.push_back(file("mixed" + std::to_string(i), data));
    contents.push_back(std::move(data));
  }
  for (const std::size_t chunk : {std::size_t{1000}, std::size_t{8192}, std::size_t{100000}}) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{10}, std::size_t{25}}) {
      for (const std::size_t concurrency : {std::size_t{1}, std::size_t{0}}) {
        const auto results = tail(paths, n, {.chunk_size = chunk, .concurrency = concurrency});
        for (std::size_t i = 0; i < paths.size(); ++i) {
          SCOPED_TRACE("file " + std::to_string(i) + " n " + std::to_string(n) + " chunk " +
                       std::to_string(chunk));
          const auto expected = oracle(contents[i], n);
          EXPECT_TAIL(results[i], expected.lines, expected.final_newline);
        }
      }
    }
  }
}

// A file whose lines need megabytes grows the worker's read buffer; it is released
// after that file, and the next, small files are still right.
TEST_P(TailFiles, HugeLinesThenSmallFilesMatchTheOracle) {
  const std::string huge = std::string(3 << 20, 'h') + "\n" + std::string(2 << 20, 'i') + "\nend";
  const std::string small = "a\nb\r\nc\n";
  const auto results =
      tail({file("huge", huge), file("small", small), file("huge2", huge)}, 2, {.concurrency = 1});
  const auto big = oracle(huge, 2);
  EXPECT_TAIL(results[0], big.lines, big.final_newline);
  EXPECT_TAIL(results[1], (lines_t{"b\r", "c"}), true);
  EXPECT_TAIL(results[2], big.lines, big.final_newline);
}

TEST_P(TailFiles, ManyFilesKeepInputOrderWithPerFileErrors) {
  std::vector<std::filesystem::path> paths;
  std::vector<std::string> contents;
  for (int i = 0; i < 500; ++i) {
    std::ostringstream data;
    for (int line = 0; line <= i % 37; ++line) data << "file " << i << " line " << line << '\n';
    contents.push_back(data.str());
    paths.push_back(file("f" + std::to_string(i), contents.back()));
    if (i % 100 == 7) paths.push_back(dir_ / "missing");
  }
  for (std::size_t concurrency : {0, 1, 3, 64}) {
    auto results = tail(paths, 3, {.concurrency = concurrency});
    std::size_t file_index = 0;
    for (std::size_t i = 0; i < paths.size(); ++i) {
      if (paths[i].filename() == "missing") {
        EXPECT_EQ(results[i].error, std::errc::no_such_file_or_directory) << describe(results[i].error);
        continue;
      }
      const auto expected = oracle(contents[file_index++], 3);
      EXPECT_TAIL(results[i], expected.lines, expected.final_newline);
    }
  }
}

// Consecutive files of one directory are opened relative to it (the engine's
// directory_cache): runs of files per directory, directories that do not exist or are
// not directories, symlinked directories, relative paths, "/x", "d//f", "d/." and a
// trailing slash must all give what opening the whole path gives.
TEST_P(TailFiles, PathsAcrossDirectoriesGiveWhatTheWholePathGives) {
  namespace fs = std::filesystem;
  fs::create_directories(dir_ / "a" / "b");
  fs::create_directory(dir_ / "c");
  fs::create_directory_symlink(dir_ / "a", dir_ / "link");
  struct cwd_guard {
    fs::path old = fs::current_path();
    ~cwd_guard() { fs::current_path(old); }
  } restore;
  fs::current_path(dir_.path());
  std::vector<fs::path> paths;
  std::vector<std::string> contents;  // empty: expect `errors` below instead
  std::vector<std::errc> errors;
  auto add = [&](const fs::path& path, std::string data) {
    paths.push_back(path);
    contents.push_back(std::move(data));
    errors.push_back(std::errc{});
  };
  auto add_error = [&](const fs::path& path, std::errc error) {
    paths.push_back(path);
    contents.emplace_back();
    errors.push_back(error);
  };
  for (int i = 0; i < 4; ++i) {
    const std::string tag = std::to_string(i);
    for (const char* where : {"a", "a/b", "c"}) {
      for (int k = 0; k < 3; ++k) {
        const std::string data = std::string(where) + " " + tag + " " + std::to_string(k) + "\nlast\n";
        write_file(dir_ / where / ("f" + tag + std::to_string(k)), data);
        add(dir_ / where / ("f" + tag + std::to_string(k)), data);
      }
    }
    add(dir_ / "link" / "b" / ("f" + tag + "0"), "a/b " + tag + " 0\nlast\n");
    add(dir_ / "link" / "b" / ("f" + tag + "1"), "a/b " + tag + " 1\nlast\n");
    add(fs::path("a") / ("f" + tag + "2"), "a " + tag + " 2\nlast\n");  // relative to the cwd
    add(fs::path("a") / "." / ".." / "c" / ("f" + tag + "0"), "c " + tag + " 0\nlast\n");
    add(fs::path((dir_ / "c").string() + "//f" + tag + "1"), "c " + tag + " 1\nlast\n");
    add_error(dir_ / "nowhere" / "x", std::errc::no_such_file_or_directory);
    add_error(dir_ / "nowhere" / "y", std::errc::no_such_file_or_directory);
    add_error(dir_ / "a" / "f00" / "z", std::errc::not_a_directory);
    add_error(dir_ / "a" / "f00" / "w", std::errc::not_a_directory);
    add_error(fs::path((dir_ / "a" / "f00").string() + "/"), std::errc::not_a_directory);
    add_error(dir_ / "a" / ".", std::errc::is_a_directory);
  }
  add_error("/", std::errc::is_a_directory);
  add_error("/proc", std::errc::is_a_directory);
  for (const std::size_t concurrency : {std::size_t{1}, std::size_t{0}}) {
    const auto results = tail(paths, 5, {.concurrency = concurrency});
    for (std::size_t i = 0; i < paths.size(); ++i) {
      SCOPED_TRACE(paths[i].string());
      if (errors[i] != std::errc{}) {
        EXPECT_EQ(results[i].error, errors[i]) << describe(results[i].error);
        continue;
      }
      const auto expected = oracle(contents[i], 5);
      EXPECT_TAIL(results[i], expected.lines, expected.final_newline);
    }
  }
}

TEST_P(TailFiles, DirectoriesAndSpecialFilesFailAtOnce) {
  const auto fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto socket_path = dir_ / "sock";
  const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socket_path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const auto good = file("good", "one\ntwo\n");

  // A FIFO that blocked would hang here: the watchdog plays the writer so the test fails instead.
  watchdog guard(10s, [fifo] {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
  });
  auto results = tail({fifo, socket_path, "/dev/null", dir_.path(), good, dir_ / "missing"}, 1);
  EXPECT_FALSE(guard.stop()) << "a special file blocked";
  ::close(sock);

  EXPECT_EQ(results[0].error, sky_async::errc::not_a_regular_file) << describe(results[0].error);
  EXPECT_EQ(results[1].error, sky_async::errc::not_a_regular_file) << describe(results[1].error);
  EXPECT_EQ(results[2].error, sky_async::errc::not_a_regular_file) << describe(results[2].error);
  EXPECT_EQ(results[3].error, std::errc::is_a_directory) << describe(results[3].error);
  EXPECT_TAIL(results[4], lines_t{"two"}, true);
  EXPECT_EQ(results[5].error, std::errc::no_such_file_or_directory) << describe(results[5].error);
}

TEST_P(TailFiles, ZeroLinesStillReportsTheFilesErrors) {
  auto results = tail({dir_ / "missing", file("x", "a\n")}, 0);
  EXPECT_EQ(results[0].error, std::errc::no_such_file_or_directory);
  EXPECT_TAIL(results[1], lines_t{}, false);
}

TEST_P(TailFiles, HugeSparseFileReadsOnlyItsEnd) {
  const auto path = dir_ / "huge.log";
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, off_t{10} << 30), 0);
    const std::string lines = "\nfirst\nsecond\nthird\n";
    ASSERT_EQ(::pwrite(fd, lines.data(), lines.size(), off_t{10} << 30), static_cast<ssize_t>(lines.size()));
    ::close(fd);
  }
  const auto before = bytes_read_by_process();
  auto results = tail({path}, 2);
  const auto read = bytes_read_by_process() - before;
  EXPECT_TAIL(results[0], (lines_t{"second", "third"}), true);
  EXPECT_LT(read, 64u * 1024) << "read " << read << " bytes of a 10 GiB file for two lines";
}

TEST_P(TailFiles, FileTruncatedWhileReadGivesShortReadsNeverAnError) {
  const auto path = dir_ / "rotating.log";
  std::string content;
  for (int i = 0; i < 20000; ++i) content += "log line " + std::to_string(i) + "\n";
  write_file(path, content);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) {
      const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ::ftruncate(fd, 0);
      ::pwrite(fd, content.data(), content.size(), 0);
      ::close(fd);
    }
  });
  for (int i = 0; i < 300; ++i) {
    auto results = tail({path}, 5000, {.chunk_size = 4096});
    ASSERT_TRUE(results[0].ok()) << describe(results[0].error);
    EXPECT_LE(results[0].lines.size(), 5000u);
  }
  stop = true;
  writer.join();
}

TEST_P(TailFiles, CancellationThroughSlotAbortsAndClosesTheFile) {
  // No LF in 128 MiB, read 64 bytes at a time: two million reads, seconds of work.
  const auto path = dir_ / "no-newline";
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, off_t{128} << 20), 0);
    ::close(fd);
  }
  asio::io_context ctx;
  asio::steady_timer timer(ctx);  // made before counting: it opens the reactor's descriptors
  asio::cancellation_signal signal;
  const auto fds_before = open_fds();
  bool called = false;
  boost::system::error_code ec;
  std::vector<tail_result> results;
  sky_async::async_tail_files(
      rt(), {path}, 1, {.chunk_size = 64},
      asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, [&](boost::system::error_code e,
                                                                               std::vector<tail_result> r) {
                                     called = true;
                                     ec = e;
                                     results = std::move(r);
                                   })));
  timer.expires_after(20ms);
  timer.async_wait([&](boost::system::error_code) { signal.emit(asio::cancellation_type::terminal); });
  ctx.run();
  ASSERT_TRUE(called);
  EXPECT_EQ(ec, asio::error::operation_aborted) << ec.message();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error, std::errc::operation_canceled) << describe(results[0].error);
  EXPECT_TRUE(results[0].lines.empty());
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked";
}

TEST_P(TailFiles, NoDescriptorLeaksAfterBatchesWithErrors) {
  std::vector<std::filesystem::path> paths;
  for (int i = 0; i < 200; ++i)
    paths.push_back(i % 5 == 0 ? dir_ / "missing" : file("d" + std::to_string(i), "x\ny\n"));
  paths.push_back(dir_.path());
  tail(paths, 1);  // the runtime's own descriptors are open from here on
  const auto before = open_fds();
  for (int i = 0; i < 3; ++i) tail(paths, 1);
  EXPECT_EQ(open_fds(), before);
}

// Files open at once never exceed `concurrency`, counting the directory a job holds
// to open files relative to it (concurrency 1 had 2 open: the file and its directory).
TEST_P(TailFiles, DescriptorsOpenAtOnceNeverExceedConcurrencyDirectoriesIncluded) {
  std::vector<std::filesystem::path> paths;
  for (const char* d : {"a", "b"}) {
    std::filesystem::create_directory(dir_ / d);
    for (int i = 0; i < 1000; ++i) paths.push_back(file(std::string(d) + "/f" + std::to_string(i), "x\ny\n"));
  }
  for (const std::size_t concurrency : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
    SCOPED_TRACE("concurrency " + std::to_string(concurrency));
    descriptor_peak peak(dir_.path());
    // Several rounds: each is short, and a job's directory stays open across its files.
    for (int round = 0; round < 5; ++round) {
      const auto results = tail(paths, 1, {.concurrency = concurrency});
      for (const auto& r : results) EXPECT_TAIL(r, std::vector<std::string>{"y"}, true);
    }
    const std::size_t most = peak.stop();
    EXPECT_GE(most, 1u) << "the sampler never saw a file open";
    EXPECT_LE(most, concurrency);
  }
}

// With no descriptor free, every file fails with EMFILE once the shortage's grace is over,
// not after about 2 s per file as before.
TEST_P(TailFiles, WithNoDescriptorFreeEveryFileFailsWithEmfileWithinTheGrace) {
  SKY_ASYNC_SKIP_WHERE_THE_SANITIZER_NEEDS_DESCRIPTORS();
  std::vector<std::filesystem::path> paths;
  for (int i = 0; i < 1000; ++i) paths.push_back(file("f" + std::to_string(i), "a\nb\n"));
  tail({paths[0]}, 1);  // the runtime's own descriptors are open from here on
  const auto started = std::chrono::steady_clock::now();
  std::vector<tail_result> results;
  {
    descriptors_taken all;
    results = tail(paths, 1, {.concurrency = 1});
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  for (const auto& r : results) EXPECT_EQ(r.error, std::errc::too_many_files_open) << describe(r.error);
  EXPECT_LT(elapsed, 30s);                 // only catches the per-file retries (the grace is 2 s)
  const auto again = tail({paths[1]}, 1);  // descriptors free again: read at once
  EXPECT_TAIL(again[0], std::vector<std::string>{"b"}, true);
}

// One descriptor free: a job holding its directory gives it up so that its file can be
// opened, and waits for its neighbours' files to close; every file is read.
TEST_P(TailFiles, WithOneDescriptorFreeEveryFileIsStillRead) {
  SKY_ASYNC_SKIP_WHERE_THE_SANITIZER_NEEDS_DESCRIPTORS();
  std::vector<std::filesystem::path> paths;
  for (int i = 0; i < 300; ++i)
    paths.push_back(file("f" + std::to_string(i), "x\n" + std::to_string(i) + "\n"));
  tail({paths[0]}, 1);
  std::vector<tail_result> results;
  {
    descriptors_taken all_but(1);
    results = tail(paths, 1);
  }
  for (std::size_t i = 0; i < paths.size(); ++i) {
    EXPECT_TAIL(results[i], std::vector<std::string>{std::to_string(i)}, true);
  }
}

TEST_P(TailFiles, ReadLastNLinesReturnsLinesOrThrowsNamingThePath) {
  const auto path = file("r.log", "a\nb\nc");
  EXPECT_EQ(run(sky_async::read_last_n_lines(rt(), path, 2, 1)), (lines_t{"b", "c"}));
  const auto missing = dir_ / "missing.log";
  try {
    run(sky_async::read_last_n_lines(rt(), missing, 2));
    FAIL() << "no exception";
  } catch (const std::filesystem::filesystem_error& e) {
    EXPECT_EQ(e.path1(), missing);
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
}

TEST_P(TailFiles, ZeroChunkSizeIsRejectedWhenCalled) {
  EXPECT_THROW(sky_async::async_tail_files(rt(), {dir_ / "x"}, 1, {.chunk_size = 0}, asio::use_future),
               std::invalid_argument);
}

TEST_P(TailFiles, EmptyBatchCompletesWithNoResults) { EXPECT_TRUE(tail({}, 5).empty()); }

}  // namespace

// --- the pure selection over an in-memory file (what the tail fuzzer drives) ------------------

namespace {

// Reads from `file` as pread would, the file holding `file.size()` bytes now.
sky_async::detail::tail_pread memory_pread(const std::string& file) {
  return [&file](char* buffer, std::size_t want, std::uint64_t offset, std::size_t& got) {
    got = offset >= file.size() ? 0 : std::min<std::size_t>(want, file.size() - offset);
    if (got != 0) std::memcpy(buffer, file.data() + offset, got);
    return std::error_code();
  };
}

}  // namespace

TEST(SelectTail, TruncatedOrGrownSinceOpenSelectsFromTheBytesThatWereThere) {
  const std::string file = "one\ntwo\nthree\nfour\n";
  const std::function<bool()> never = [] { return false; };
  sky_async::detail::tail_hint hint;
  sky_async::detail::tail_selection out;
  // Opened when it was 30 bytes long, truncated to 19 since: the last lines of the 19.
  ASSERT_FALSE(sky_async::detail::select_tail(memory_pread(file), 30, 2, 4, never, hint, out));
  EXPECT_EQ(out.text, "three\nfour");
  EXPECT_EQ(out.line_count, 2U);
  EXPECT_TRUE(out.final_newline);
  // Opened when it was 10 bytes long ("one\ntwo\nth"), grown since: only those 10.
  hint = {};
  ASSERT_FALSE(sky_async::detail::select_tail(memory_pread(file), 10, 5, 3, never, hint, out));
  EXPECT_EQ(out.text, "one\ntwo\nth");
  EXPECT_EQ(out.line_count, 3U);
  EXPECT_FALSE(out.final_newline);
  EXPECT_EQ(hint.needed, 10U);  // fewer than n+1 LFs: all the bytes were needed
}

TEST(SelectTail, NoLinesAndOneEmptyLineDiffer) {
  const std::function<bool()> never = [] { return false; };
  sky_async::detail::tail_hint hint;
  sky_async::detail::tail_selection out;
  const std::string newline = "\n";
  ASSERT_FALSE(sky_async::detail::select_tail(memory_pread(newline), 1, 3, 8, never, hint, out));
  EXPECT_EQ(out.text, "");
  EXPECT_EQ(out.line_count, 1U);
  EXPECT_TRUE(out.final_newline);
  ASSERT_FALSE(sky_async::detail::select_tail(memory_pread(newline), 1, 0, 8, never, hint, out));
  EXPECT_EQ(out.line_count, 0U);
  ASSERT_FALSE(sky_async::detail::select_tail(memory_pread(""), 0, 3, 8, never, hint, out));
  EXPECT_EQ(out.line_count, 0U);
  EXPECT_FALSE(out.final_newline);
}

TEST(SelectTail, HintSizesTheFirstReadAndIsLearned) {
  std::string file;
  for (int i = 0; i < 100; ++i) file += std::string(99, 'x') + "\n";  // 100-byte lines
  const std::function<bool()> never = [] { return false; };
  std::vector<std::size_t> wants;
  const sky_async::detail::tail_pread recording = [&](char* buffer, std::size_t want, std::uint64_t offset,
                                                      std::size_t& got) {
    wants.push_back(want);
    return memory_pread(file)(buffer, want, offset, got);
  };
  sky_async::detail::tail_selection out;
  sky_async::detail::tail_hint hint{};
  // Nothing learned: 160 bytes a line guessed, the 10 lines come in one read.
  ASSERT_FALSE(sky_async::detail::select_tail(recording, file.size(), 10, 8192, never, hint, out));
  EXPECT_EQ(wants, (std::vector<std::size_t>{sky_async::detail::first_read_size({}, 10, 8192)}));
  EXPECT_EQ(out.line_count, 10U);
  EXPECT_EQ(hint.needed, 1001U);  // the 11th LF from the end: itself and the 10 lines after it
  // Learned: the next first read asks for about that much, and still one read does.
  wants.clear();
  ASSERT_FALSE(sky_async::detail::select_tail(recording, file.size(), 10, 8192, never, hint, out));
  ASSERT_EQ(wants.size(), 1U);
  EXPECT_GE(wants[0], 1001U);
  EXPECT_LT(wants[0], 2048U);
  // A hint too small for this file: more reads, the same lines.
  wants.clear();
  hint.needed = 10;
  ASSERT_FALSE(sky_async::detail::select_tail(recording, file.size(), 10, 256, never, hint, out));
  EXPECT_GT(wants.size(), 1U);
  EXPECT_EQ(out.text.size(), 10U * 100 - 1);
  EXPECT_EQ(out.line_count, 10U);
}

TEST(SelectTail, ReadErrorAndCancellationAreReported) {
  const std::string file = "a\nb\nc\n";
  sky_async::detail::tail_hint hint;
  sky_async::detail::tail_selection out;
  const sky_async::detail::tail_pread failing = [](char*, std::size_t, std::uint64_t, std::size_t&) {
    return std::error_code(EIO, std::generic_category());
  };
  EXPECT_EQ(sky_async::detail::select_tail(
                failing, file.size(), 1, 2, [] { return false; }, hint, out)
                .value(),
            EIO);
  EXPECT_EQ(sky_async::detail::select_tail(
                memory_pread(file), file.size(), 1, 2, [] { return true; }, hint, out),
            std::errc::operation_canceled);
}

// /proc and /sys files report size 0: read forwards, with the selection of any file, and
// with memory bounded by the last lines whatever the length read.
TEST(SelectTail, UnsizedFilesAreReadForwardsAndGiveTheSameLines) {
  const std::function<bool()> never = [] { return false; };
  std::string file;
  for (int i = 0; i < 20000; ++i) file += "line " + std::to_string(i) + (i % 7 == 0 ? "\r\n" : "\n");
  for (const std::string& data :
       {file, file + "partial", std::string("\n\n\n"), std::string("x"), std::string()}) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{10}, std::size_t{5000}}) {
      sky_async::detail::tail_hint backwards_hint;
      sky_async::detail::tail_hint forwards_hint;
      sky_async::detail::tail_selection want;
      sky_async::detail::tail_selection got;
      ASSERT_FALSE(sky_async::detail::select_tail(memory_pread(data), data.size(), n, 8192, never,
                                                  backwards_hint, want));
      std::size_t largest_offset = 0;
      const sky_async::detail::tail_pread tracking = [&](char* buffer, std::size_t size, std::uint64_t offset,
                                                         std::size_t& read) {
        largest_offset = std::max<std::size_t>(largest_offset, offset);
        return memory_pread(data)(buffer, size, offset, read);
      };
      ASSERT_FALSE(sky_async::detail::select_tail_unsized(tracking, n, 8192, never, forwards_hint, got));
      EXPECT_EQ(got.text, want.text) << "n=" << n << ", " << data.size() << " bytes";
      EXPECT_EQ(got.line_count, want.line_count);
      EXPECT_EQ(got.final_newline, want.final_newline);
      EXPECT_GE(largest_offset + 8192, data.size()) << "not read to the end";
    }
  }
  sky_async::detail::tail_hint hint;
  sky_async::detail::tail_selection out;
  EXPECT_EQ(sky_async::detail::select_tail_unsized(
                memory_pread(file), 1, 8192, [] { return true; }, hint, out),
            std::errc::operation_canceled);
}

TEST_P(TailFiles, ProcAndSysFilesAreReadForwards) {
  // Their st_size is 0; what tail -n 2 prints is the status file's last two fields.
  const auto results = tail({"/proc/self/status", "/proc/self/stat", dir_ / "empty"}, 2);
  ASSERT_TRUE(results[0].ok()) << describe(results[0].error);
  ASSERT_EQ(results[0].lines.size(), 2u);
  EXPECT_EQ(results[0].lines[0].substr(0, results[0].lines[0].find(':')), "voluntary_ctxt_switches");
  EXPECT_EQ(results[0].lines[1].substr(0, results[0].lines[1].find(':')), "nonvoluntary_ctxt_switches");
  EXPECT_TRUE(results[0].final_newline);
  ASSERT_TRUE(results[1].ok()) << describe(results[1].error);
  EXPECT_EQ(results[1].lines.size(), 1u);  // one line
  EXPECT_EQ(results[2].error, std::errc::no_such_file_or_directory);
}
