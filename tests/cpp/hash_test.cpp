// Hashing files: digests against OpenSSL, per-file errors, special files, many
// files, stop_on_error, cancellation, hash_file, shutdown and fork. Most cases run
// once per I/O backend; the io_uring ones are skipped where io_uring is unavailable.
#include <sky_async/hash.hpp>  // first: the header must compile on its own

#include "fd_exhaustion.hpp"
#include "test_support.hpp"

#include <sky_async/error.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using namespace sky_async_test;
using sky_async::hash_algorithm;
using sky_async::hash_options;
using sky_async::hash_result;
using sky_async::io_backend;

constexpr std::size_t block = 128 * 1024;  // the library's read size; sizes around it matter

// Every result is either a digest of the right length and no error, or an error and
// no digest: a failure is never a silently empty digest.
void expect_well_formed(const hash_result& result, hash_algorithm algorithm) {
  if (result.ok()) {
    EXPECT_EQ(result.digest.size(), 2 * sky_async::digest_size(algorithm)) << result.digest;
  } else {
    EXPECT_TRUE(result.digest.empty())
        << "digest '" << result.digest << "' alongside " << describe(result.error);
  }
}

#define EXPECT_ERROR(result, expected)                                                          \
  do {                                                                                          \
    const hash_result& r_ = (result);                                                           \
    EXPECT_TRUE(r_.error == (expected)) << "got " << describe(r_.error) << ", want " #expected; \
    EXPECT_TRUE(r_.digest.empty()) << r_.digest;                                                \
  } while (false)

// A sparse file of zeros, far too big to be read within the tests' time bounds:
// sha512 runs well under 2 GiB/s on current CPUs.
constexpr off_t huge_size = off_t{8} << 30;

std::filesystem::path make_sparse_file(const temp_dir& dir, off_t size) {
  const auto path = dir / "sparse";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path.string());
  const int rc = ::ftruncate(fd, size);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) throw std::system_error(saved, std::generic_category(), "ftruncate " + path.string());
  return path;
}

// If the library opens or reads a FIFO it blocks there for want of a writer; a
// watchdog running this plays the writer (opening and closing at once), so that the
// test fails instead of hanging.
std::function<void()> play_fifo_writer(std::filesystem::path fifo) {
  return [fifo = std::move(fifo)] {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
  };
}

class HashFiles : public on_each_io_backend {
 protected:
  std::vector<hash_result> hash(std::vector<std::filesystem::path> paths,
                                hash_algorithm algorithm = hash_algorithm::sha256,
                                hash_options options = {}) {
    auto results = run(sky_async::hash_files(rt(), paths, algorithm, options));
    EXPECT_EQ(results.size(), paths.size());
    for (const auto& result : results) expect_well_formed(result, algorithm);
    return results;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, HashFiles, all_io_backends, io_backend_name);

TEST_P(HashFiles, DigestsMatchOpenSSLForEverySizeAndAlgorithm) {
  const std::vector<std::size_t> sizes = {0, 1, block - 1, block, block + 1, 4 * 1024 * 1024 + 3};
  std::vector<std::filesystem::path> paths;
  std::vector<std::string> contents;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    contents.push_back(make_data(sizes[i], i + 1));
    paths.push_back(dir_ / ("size-" + std::to_string(sizes[i])));
    write_file(paths.back(), contents.back());
  }
  for (hash_algorithm algorithm : all_algorithms) {
    SCOPED_TRACE(std::string(sky_async::to_string(algorithm)));
    const auto results = hash(paths, algorithm);
    ASSERT_EQ(results.size(), paths.size());
    for (std::size_t i = 0; i < paths.size(); ++i) {
      EXPECT_TRUE(results[i].ok()) << paths[i] << ": " << describe(results[i].error);
      EXPECT_EQ(results[i].digest, openssl_hex(algorithm, contents[i])) << "size " << sizes[i];
    }
  }
}

TEST_P(HashFiles, DefaultAlgorithmIsSha256) {
  const auto path = dir_ / "file";
  const auto data = make_data(1000);
  write_file(path, data);
  const auto results = run(sky_async::hash_files(rt(), {path}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].digest, openssl_hex(hash_algorithm::sha256, data));
}

TEST_P(HashFiles, NoPathsGiveNoResults) { EXPECT_TRUE(hash({}).empty()); }

TEST_P(HashFiles, ResultsAreInInputOrderIncludingDuplicates) {
  std::vector<std::filesystem::path> files;
  std::vector<std::string> digests;
  // Sizes decreasing, so that an engine returning in completion order would be caught.
  for (std::size_t i = 0; i < 3; ++i) {
    const auto data = make_data((3 - i) * block * 3 + i, 100 + i);
    files.push_back(dir_ / ("f" + std::to_string(i)));
    write_file(files.back(), data);
    digests.push_back(openssl_hex(hash_algorithm::sha256, data));
  }
  const std::vector<std::size_t> order = {2, 0, 1, 0, 2, 2, 1};
  std::vector<std::filesystem::path> paths;
  for (std::size_t i : order) paths.push_back(files[i]);
  const auto results = hash(paths);
  ASSERT_EQ(results.size(), order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    EXPECT_TRUE(results[i].ok()) << i << ": " << describe(results[i].error);
    EXPECT_EQ(results[i].digest, digests[order[i]]) << "position " << i;
  }
}

TEST_P(HashFiles, MissingFileIsNoSuchFileOrDirectory) {
  const auto results = hash({dir_ / "missing"});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_ERROR(results[0], std::errc::no_such_file_or_directory);
}

TEST_P(HashFiles, DirectoryIsIsADirectory) {
  const auto results = hash({dir_.path()});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_ERROR(results[0], std::errc::is_a_directory);
}

TEST_P(HashFiles, FifoIsNotARegularFileAndDoesNotBlock) {
  const auto fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  watchdog unblock(5s, play_fifo_writer(fifo));
  const auto start = std::chrono::steady_clock::now();
  const auto results = hash({fifo});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(unblock.stop()) << "hashing a FIFO blocked until a writer appeared";
  EXPECT_LT(elapsed, 2s);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_ERROR(results[0], sky_async::errc::not_a_regular_file);
}

TEST_P(HashFiles, CharacterDeviceIsNotARegularFile) {
  const auto results = hash({"/dev/null"});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_ERROR(results[0], sky_async::errc::not_a_regular_file);
}

TEST_P(HashFiles, SocketIsNotARegularFile) {
  const auto path = dir_ / "socket";
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  ASSERT_LT(path.native().size(), sizeof(address.sun_path));
  std::strcpy(address.sun_path, path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  ::close(fd);  // the socket file stays
  ASSERT_EQ(rc, 0) << std::strerror(errno);
  const auto results = hash({path});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_ERROR(results[0], sky_async::errc::not_a_regular_file);
}

TEST_P(HashFiles, OneFailureDoesNotLoseTheOthers) {
  const auto good1 = dir_ / "good1";
  const auto good2 = dir_ / "good2";
  const auto data1 = make_data(block + 7, 1);
  const auto data2 = make_data(3, 2);
  write_file(good1, data1);
  write_file(good2, data2);
  const auto fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  watchdog unblock(5s, play_fifo_writer(fifo));
  const auto results = hash({good1, dir_ / "missing", dir_.path(), fifo, "/dev/null", good2});
  EXPECT_FALSE(unblock.stop()) << "hashing a FIFO blocked until a writer appeared";
  ASSERT_EQ(results.size(), 6u);
  EXPECT_EQ(results[0].digest, openssl_hex(hash_algorithm::sha256, data1));
  EXPECT_ERROR(results[1], std::errc::no_such_file_or_directory);
  EXPECT_ERROR(results[2], std::errc::is_a_directory);
  EXPECT_ERROR(results[3], sky_async::errc::not_a_regular_file);
  EXPECT_ERROR(results[4], sky_async::errc::not_a_regular_file);
  EXPECT_EQ(results[5].digest, openssl_hex(hash_algorithm::sha256, data2));
}

TEST_P(HashFiles, ProcFilesAreReadToEofAlthoughTheirSizeIsZero) {
  for (const char* name : {"/proc/version", "/proc/self/cmdline"}) {
    SCOPED_TRACE(name);
    struct stat st{};
    ASSERT_EQ(::stat(name, &st), 0);
    EXPECT_EQ(st.st_size, 0) << "the premise of this test";
    const std::string data = read_file(name);
    ASSERT_FALSE(data.empty());
    const auto results = hash({name});
    ASSERT_EQ(results.size(), 1u);
    EXPECT_TRUE(results[0].ok()) << describe(results[0].error);
    EXPECT_EQ(results[0].digest, openssl_hex(hash_algorithm::sha256, data));
  }
}

TEST_P(HashFiles, ThreeThousandFilesWithConcurrencyFourAreAllCorrect) {
  constexpr std::size_t count = 3000;
  constexpr std::size_t concurrency = 4;
  std::vector<std::filesystem::path> paths;
  std::vector<std::string> digests;
  for (std::size_t i = 0; i < count; ++i) {
    // Mostly small files, every 100th larger than one read.
    const std::size_t size = i % 100 == 0 ? 2 * block + i : i % 997;
    const auto data = make_data(size, i);
    paths.push_back(dir_ / ("file-" + std::to_string(i)));
    write_file(paths.back(), data);
    digests.push_back(openssl_hex(hash_algorithm::sha1, data));
  }

  const auto fds_before = open_fds();
  // Watch this process's descriptors while hashing: never more than `concurrency`
  // of the test files may be open at once.
  std::atomic<bool> hashing = true;
  std::atomic<std::size_t> most_open = 0;
  std::thread sampler([&] {
    const std::string prefix = dir_.path().string() + "/";
    while (hashing) {
      std::size_t open_now = 0;
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        std::error_code link_ec;
        const auto target = std::filesystem::read_symlink(entry.path(), link_ec);
        if (!link_ec && target.string().rfind(prefix, 0) == 0) ++open_now;
      }
      if (open_now > most_open) most_open = open_now;
    }
  });
  const auto results = hash(paths, hash_algorithm::sha1, {.concurrency = concurrency});
  hashing = false;
  sampler.join();

  ASSERT_EQ(results.size(), count);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (!results[i].ok() || results[i].digest != digests[i]) {
      if (++wrong <= 5)
        ADD_FAILURE() << paths[i] << ": " << describe(results[i].error) << " " << results[i].digest;
    }
  }
  EXPECT_EQ(wrong, 0u);
  RecordProperty("most_open_files", static_cast<int>(most_open.load()));
  EXPECT_LE(most_open.load(), concurrency);
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked";
}

TEST_P(HashFiles, StopOnErrorAbortsTheFilesNotYetStarted) {
  constexpr std::size_t after = 200;
  constexpr std::size_t concurrency = 1;
  std::vector<std::filesystem::path> paths;
  std::vector<std::string> digests;
  auto add_file = [&](std::size_t i) {
    const auto data = make_data(1000 + i, i);
    paths.push_back(dir_ / ("file-" + std::to_string(i)));
    write_file(paths.back(), data);
    digests.push_back(openssl_hex(hash_algorithm::sha256, data));
  };
  add_file(0);
  paths.push_back(dir_ / "missing");
  digests.emplace_back();
  for (std::size_t i = 0; i < after; ++i) add_file(i + 2);

  const auto results =
      hash(paths, hash_algorithm::sha256, {.concurrency = concurrency, .stop_on_error = true});
  ASSERT_EQ(results.size(), paths.size());
  EXPECT_EQ(results[0].digest, digests[0]) << describe(results[0].error);
  EXPECT_ERROR(results[1], std::errc::no_such_file_or_directory);
  std::size_t aborted = 0;
  for (std::size_t i = 2; i < paths.size(); ++i) {
    if (results[i].ok()) {
      EXPECT_EQ(results[i].digest, digests[i]) << "position " << i;  // was already in flight
    } else {
      EXPECT_ERROR(results[i], std::errc::operation_canceled);
      ++aborted;
    }
  }
  RecordProperty("aborted", static_cast<int>(aborted));
  // With one file at a time, at most a few can have been started before the failure.
  EXPECT_GE(aborted, after - 4 * concurrency);
}

TEST_P(HashFiles, WithoutStopOnErrorEveryFileIsHashed) {
  std::vector<std::filesystem::path> paths = {dir_ / "missing"};
  std::vector<std::string> digests = {""};
  for (std::size_t i = 0; i < 20; ++i) {
    const auto data = make_data(i * 10, i);
    paths.push_back(dir_ / ("file-" + std::to_string(i)));
    write_file(paths.back(), data);
    digests.push_back(openssl_hex(hash_algorithm::sha256, data));
  }
  const auto results = hash(paths, hash_algorithm::sha256, {.concurrency = 1});
  ASSERT_EQ(results.size(), paths.size());
  EXPECT_ERROR(results[0], std::errc::no_such_file_or_directory);
  for (std::size_t i = 1; i < paths.size(); ++i) EXPECT_EQ(results[i].digest, digests[i]) << i;
}

TEST_P(HashFiles, CompletionRunsOnTheHandlersExecutor) {
  const auto path = dir_ / "file";
  write_file(path, make_data(10));
  asio::io_context ctx;
  bool called = false;
  bool on_ctx = false;
  sky_async::async_hash_files(
      rt(), {path}, hash_algorithm::sha256, {},
      asio::bind_executor(ctx, [&](boost::system::error_code ec, std::vector<hash_result> r) {
        called = true;
        on_ctx = ctx.get_executor().running_in_this_thread();
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(r.size(), 1u);
      }));
  ctx.run();
  EXPECT_TRUE(called);
  EXPECT_TRUE(on_ctx);
}

TEST_P(HashFiles, CancellationThroughSlotAbortsPromptlyAndClosesFiles) {
  const auto path = make_sparse_file(dir_, huge_size);
  asio::io_context ctx;
  asio::steady_timer timer(ctx);  // made before counting: it opens the reactor's descriptors
  asio::cancellation_signal signal;
  const auto fds_before = open_fds();

  bool called = false;
  boost::system::error_code ec;
  std::vector<hash_result> results;
  std::chrono::steady_clock::duration elapsed{};
  const auto start = std::chrono::steady_clock::now();
  sky_async::async_hash_files(
      rt(), {path}, hash_algorithm::sha512, {},
      asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, [&](boost::system::error_code e,
                                                                               std::vector<hash_result> r) {
                                     called = true;
                                     elapsed = std::chrono::steady_clock::now() - start;
                                     ec = e;
                                     results = std::move(r);
                                   })));
  timer.expires_after(20ms);
  timer.async_wait([&](boost::system::error_code) { signal.emit(asio::cancellation_type::terminal); });
  ctx.run();

  ASSERT_TRUE(called);
  EXPECT_EQ(ec, asio::error::operation_aborted) << ec.message();
  EXPECT_LT(elapsed, 2s) << "a full read of " << (huge_size >> 30) << " GiB would take longer";
  // "Results then hold what finished before", and the one file did not finish: if
  // it is reported at all, it is with an error, not as an (empty) digest.
  if (!results.empty()) {
    ASSERT_EQ(results.size(), 1u);
    EXPECT_FALSE(results[0].ok()) << "digest '" << results[0].digest << "' of an unfinished file";
    EXPECT_TRUE(results[0].digest.empty()) << results[0].digest;
  }
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked";
}

// Regression: a worker used to finish a whole large file before looking at new calls
// (io_uring: reads completing inside submit kept its loop busy; threads: a small call
// could be placed on a worker already busy with a large file).
TEST_P(HashFiles, SmallCallsAreNotHeldUpBehindHugeFiles) {
  const auto huge = make_sparse_file(dir_, huge_size);
  const auto small = dir_.path() / "small.bin";
  const std::string data = make_data(5000, 3);
  write_file(small, data);

  auto busy =
      sky_async::async_hash_files(rt(), {huge, huge, huge}, hash_algorithm::sha512, {}, asio::use_future);
  std::this_thread::sleep_for(50ms);  // the large files are being read
  for (int i = 0; i < 20; ++i) {
    auto one = sky_async::async_hash_files(rt(), {small}, hash_algorithm::sha256, {}, asio::use_future);
    auto results = one.get();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].digest, openssl_hex(hash_algorithm::sha256, data));
  }
  // Not a timing bound: the small calls must all finish while the large ones still run.
  EXPECT_EQ(busy.wait_for(0s), std::future_status::timeout);
}

TEST_P(HashFiles, CancellationWithAwaitableOrOperator) {
  using namespace asio::experimental::awaitable_operators;
  const auto path = make_sparse_file(dir_, huge_size);
  asio::io_context ctx;
  asio::steady_timer reactor_warmup(ctx);  // the reactor's descriptors exist before counting
  const auto fds_before = open_fds();

  // Made outside the coroutine: GCC 12 rejects a braced list inside a co_await expression.
  const std::vector<std::filesystem::path> paths = {path};
  const auto start = std::chrono::steady_clock::now();
  auto winner = asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<std::size_t> {
        asio::steady_timer timer(co_await asio::this_coro::executor, 20ms);
        auto outcome = co_await (sky_async::hash_files(rt(), paths, hash_algorithm::sha512) ||
                                 timer.async_wait(asio::use_awaitable));
        co_return outcome.index();
      },
      asio::use_future);
  ctx.run();
  const auto elapsed = std::chrono::steady_clock::now() - start;

  EXPECT_EQ(winner.get(), 1u) << "the timer should win";
  EXPECT_LT(elapsed, 2s);
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked";
}

TEST_P(HashFiles, CancelledAwaitableThrowsOperationAborted) {
  const auto path = make_sparse_file(dir_, huge_size);
  asio::io_context ctx;
  asio::cancellation_signal signal;
  asio::steady_timer timer(ctx, 20ms);
  timer.async_wait([&](boost::system::error_code) { signal.emit(asio::cancellation_type::terminal); });
  auto future = asio::co_spawn(ctx, sky_async::hash_files(rt(), {path}, hash_algorithm::sha512),
                               asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  ctx.run();
  try {
    future.get();
    ADD_FAILURE() << "completed although cancelled";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted) << e.what();
  }
}

TEST_P(HashFiles, HashFileReturnsTheDigest) {
  const auto path = dir_ / "file";
  const auto data = make_data(block * 2 + 5);
  write_file(path, data);
  for (hash_algorithm algorithm : all_algorithms) {
    EXPECT_EQ(run(sky_async::hash_file(rt(), path, algorithm)), openssl_hex(algorithm, data));
  }
  EXPECT_EQ(run(sky_async::hash_file(rt(), path)), openssl_hex(hash_algorithm::sha256, data));
}

void expect_filesystem_error(sky_async::runtime& rt, const std::filesystem::path& path, std::errc expected) {
  try {
    const auto digest = run(sky_async::hash_file(rt, path));
    ADD_FAILURE() << path << ": no exception, digest '" << digest << "'";
  } catch (const std::filesystem::filesystem_error& e) {
    EXPECT_EQ(e.path1(), path) << e.what();
    EXPECT_TRUE(e.code() == expected) << describe(e.code());
  }
}

TEST_P(HashFiles, HashFileThrowsFilesystemErrorNamingThePath) {
  expect_filesystem_error(rt(), dir_ / "missing", std::errc::no_such_file_or_directory);
  expect_filesystem_error(rt(), dir_.path(), std::errc::is_a_directory);
  try {
    run(sky_async::hash_file(rt(), "/dev/null"));
    ADD_FAILURE() << "no exception for /dev/null";
  } catch (const std::filesystem::filesystem_error& e) {
    EXPECT_EQ(e.path1(), "/dev/null");
    EXPECT_TRUE(e.code() == sky_async::errc::not_a_regular_file) << describe(e.code());
  }
}

TEST_P(HashFiles, RuntimeDestructorWithWorkInFlightDoesNotHang) {
  const auto path = make_sparse_file(dir_, huge_size);
  rt_.reset();  // only the runtime made here should exist
  asio::io_context ctx;
  const auto fds_before = open_fds();

  auto doomed = std::make_unique<sky_async::runtime>(sky_async::runtime_options{.backend = GetParam()});
  bool called = false;
  boost::system::error_code ec;
  sky_async::async_hash_files(
      *doomed, {path, path, path}, hash_algorithm::sha512, {},
      asio::bind_executor(ctx, [&](boost::system::error_code e, std::vector<hash_result>) {
        called = true;
        ec = e;
      }));
  std::this_thread::sleep_for(20ms);
  const auto start = std::chrono::steady_clock::now();
  doomed.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);

  // The operation still completes, as cancelled, on its own executor.
  ctx.run_for(5s);
  EXPECT_TRUE(called);
  EXPECT_EQ(ec, asio::error::operation_aborted) << ec.message();
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked";
}

TEST_P(HashFiles, RuntimeDestructorWhenIdle) {
  const auto path = dir_ / "file";
  write_file(path, "x");
  EXPECT_EQ(hash({path})[0].digest, openssl_hex(hash_algorithm::sha256, "x"));
  rt_.reset();
}

// With no descriptor free, every file fails with EMFILE once the shortage's grace is over:
// the wait is once per shortage, not per file (it was about 2 s per file: 1,000 files at
// concurrency 1 took half an hour).
TEST_P(HashFiles, WithNoDescriptorFreeEveryFileFailsWithEmfileWithinTheGrace) {
  SKY_ASYNC_SKIP_WHERE_THE_SANITIZER_NEEDS_DESCRIPTORS();
  std::vector<std::filesystem::path> paths;
  for (int i = 0; i < 1000; ++i) {
    paths.push_back(dir_ / ("f" + std::to_string(i)));
    write_file(paths.back(), "x");
  }
  hash({paths[0]});  // the runtime's own descriptors are open from here on
  const auto started = std::chrono::steady_clock::now();
  std::vector<hash_result> results;
  {
    descriptors_taken all;
    results = hash(paths, hash_algorithm::sha256, {.concurrency = 1});
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  for (const auto& result : results) EXPECT_ERROR(result, std::errc::too_many_files_open);
  // A bound that only catches the per-file retries (the grace is 2 s).
  EXPECT_LT(elapsed, 30s);
  // Descriptors free again: the same files hash at once.
  EXPECT_EQ(hash({paths[1]})[0].digest, openssl_hex(hash_algorithm::sha256, "x"));
}

// Few descriptors free and many files in flight: opens refused for lack of descriptors
// wait for the batch's own files to close, and every file is hashed.
TEST_P(HashFiles, WithTwoDescriptorsFreeABatchWaitsForItsOwnFilesToClose) {
  SKY_ASYNC_SKIP_WHERE_THE_SANITIZER_NEEDS_DESCRIPTORS();
  std::vector<std::filesystem::path> paths;
  std::vector<std::string> digests;
  for (int i = 0; i < 500; ++i) {
    const auto data = make_data(static_cast<std::size_t>(i) * 97, static_cast<std::uint64_t>(i));
    paths.push_back(dir_ / ("f" + std::to_string(i)));
    write_file(paths.back(), data);
    digests.push_back(openssl_hex(hash_algorithm::sha256, data));
  }
  hash({paths[0]});
  std::vector<hash_result> results;
  {
    descriptors_taken all_but(2);
    results = hash(paths, hash_algorithm::sha256, {.concurrency = 64});
  }
  for (std::size_t i = 0; i < paths.size(); ++i) {
    EXPECT_TRUE(results[i].ok()) << paths[i] << ": " << describe(results[i].error);
    EXPECT_EQ(results[i].digest, digests[i]) << paths[i];
  }
}

// Names and sizes, independent of any runtime.

TEST(HashAlgorithm, ParseIsCaseInsensitive) {
  EXPECT_EQ(sky_async::parse_hash_algorithm("md5"), hash_algorithm::md5);
  EXPECT_EQ(sky_async::parse_hash_algorithm("MD5"), hash_algorithm::md5);
  EXPECT_EQ(sky_async::parse_hash_algorithm("sha1"), hash_algorithm::sha1);
  EXPECT_EQ(sky_async::parse_hash_algorithm("Sha224"), hash_algorithm::sha224);
  EXPECT_EQ(sky_async::parse_hash_algorithm("SHA256"), hash_algorithm::sha256);
  EXPECT_EQ(sky_async::parse_hash_algorithm("sHa384"), hash_algorithm::sha384);
  EXPECT_EQ(sky_async::parse_hash_algorithm("SHA512"), hash_algorithm::sha512);
}

TEST(HashAlgorithm, ParseRejectsUnknownNames) {
  for (const char* name : {"", "sha", "sha3_256", "blake2b", "crc32", "sha256 ", " md5", "sha2566", "md"}) {
    EXPECT_EQ(sky_async::parse_hash_algorithm(name), std::nullopt) << '"' << name << '"';
  }
}

TEST(HashAlgorithm, ToStringRoundTrips) {
  const char* names[] = {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"};
  for (std::size_t i = 0; i < all_algorithms.size(); ++i) {
    EXPECT_EQ(sky_async::to_string(all_algorithms[i]), names[i]);
    EXPECT_EQ(sky_async::parse_hash_algorithm(sky_async::to_string(all_algorithms[i])), all_algorithms[i]);
  }
}

TEST(HashAlgorithm, DigestSize) {
  EXPECT_EQ(sky_async::digest_size(hash_algorithm::md5), 16u);
  EXPECT_EQ(sky_async::digest_size(hash_algorithm::sha1), 20u);
  EXPECT_EQ(sky_async::digest_size(hash_algorithm::sha224), 28u);
  EXPECT_EQ(sky_async::digest_size(hash_algorithm::sha256), 32u);
  EXPECT_EQ(sky_async::digest_size(hash_algorithm::sha384), 48u);
  EXPECT_EQ(sky_async::digest_size(hash_algorithm::sha512), 64u);
  for (hash_algorithm algorithm : all_algorithms) {
    EXPECT_EQ(2 * sky_async::digest_size(algorithm), openssl_hex(algorithm, "").size());
  }
}

TEST(Errors, NotARegularFileHasItsCategoryAndAMessage) {
  const std::error_code ec = sky_async::errc::not_a_regular_file;
  EXPECT_EQ(&ec.category(), &sky_async::error_category());
  EXPECT_FALSE(ec.message().empty());
  EXPECT_NE(ec, std::errc::no_such_file_or_directory);
}

// The process-wide runtime.

TEST(GlobalRuntime, HashFilesAndHashFileUseIt) {
  temp_dir dir;
  const auto path = dir / "file";
  const auto data = make_data(block + 1);
  write_file(path, data);
  const auto results = run(sky_async::hash_files({path}, hash_algorithm::md5));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].digest, openssl_hex(hash_algorithm::md5, data));
  EXPECT_EQ(run(sky_async::hash_file(path)), openssl_hex(hash_algorithm::sha256, data));
}

TEST(GlobalRuntime, ForkedChildGetsAWorkingRuntime) {
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer cannot start threads in the forked child of a multithreaded process
  // ("dup thread with used id"); the plain and ASan builds run this case.
  GTEST_SKIP() << "ThreadSanitizer does not support threads in a forked child";
#endif
  temp_dir dir;
  const auto path = dir / "file";
  const auto data = make_data(3 * block + 11);
  write_file(path, data);
  const std::string expected = openssl_hex(hash_algorithm::sha256, data);

  // The parent's global runtime exists, with its threads (and rings), before the fork.
  ASSERT_EQ(run(sky_async::hash_file(sky_async::runtime::global(), path)), expected);

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    // The child: no gtest assertions here, only the exit status speaks.
    int status = 1;
    try {
      const auto results = run(sky_async::hash_files(sky_async::runtime::global(), {path, path}));
      if (results.size() == 2 && results[0].digest == expected && results[1].digest == expected) status = 0;
    } catch (...) {
      status = 2;
    }
    ::_exit(status);
  }

  // Wait for the child, but not forever: a runtime inherited half-dead would hang it.
  int status = 0;
  pid_t waited = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((waited = ::waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  if (waited == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "the forked child hung hashing with runtime::global()";
  }
  ASSERT_EQ(waited, pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: wrong digest, 2: exception";

  // And the parent's runtime still works.
  EXPECT_EQ(run(sky_async::hash_file(path)), expected);
}

}  // namespace
