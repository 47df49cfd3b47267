// file_mounts_digest: SkyPilot's byte layout (checked against digests computed by
// the Python oracle, tests/python/skypilot_mounts_oracle.py), bytewise name order,
// `~` expansion, and every problem reported at once, on both I/O backends.
#include <sky_async/mounts.hpp>  // first: the header must compile on its own

#include "test_support.hpp"

#include <sky_async/error.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using namespace sky_async_test;
using sky_async::file_mount;
using sky_async::io_backend;

// Runs the test from inside its temporary directory, so that relative sources give
// the same walked paths (and digests) on every run.
class scoped_cwd {
 public:
  explicit scoped_cwd(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~scoped_cwd() { fs::current_path(old_); }
  scoped_cwd(const scoped_cwd&) = delete;
  scoped_cwd& operator=(const scoped_cwd&) = delete;

 private:
  fs::path old_;
};

std::string raw(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string sha256_raw(std::string_view data) {
  return raw(openssl_hex(sky_async::hash_algorithm::sha256, data));
}

class FileMountsDigest : public on_each_io_backend {
 protected:
  std::string digest(std::vector<file_mount> mounts, std::string prefix = {}) {
    return run(sky_async::file_mounts_digest(*rt_, std::move(mounts), std::move(prefix)));
  }

  // The tree tests/python/test_mounts.py builds for the same expected digests.
  void make_fixed_tree() {
    fs::create_directories(dir_ / "tree/sub/deep");
    fs::create_directories(dir_ / "tree/empty_dir");
    write_file(dir_ / "tree/a.txt", "alpha\n");
    write_file(dir_ / "tree/.hidden", "h");
    write_file(dir_ / "tree/sub/b.bin", std::string(300000, 'b'));
    write_file(dir_ / "tree/sub/deep/c.txt", "c");
    write_file(dir_ / "tree/\xc3\xbcn\xc3\xaf.txt", "u");
    fs::create_symlink("a.txt", dir_ / "tree/link_to_a");
    fs::create_symlink("sub", dir_ / "tree/link_to_sub");
    write_file(dir_ / "single.txt", "single");
  }

  static std::vector<file_mount> fixed_mounts() {
    return {{"/remote/tree", "tree"},
            {"/remote/file", "single.txt"},
            {"/remote/missing", "nope"},
            {"/a/first", "tree/sub/"}};
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, FileMountsDigest, all_io_backends, io_backend_name);

TEST_P(FileMountsDigest, MatchesTheSkyPilotOracleOnAFixedTree) {
  make_fixed_tree();
  scoped_cwd cwd(dir_.path());
  EXPECT_EQ(digest(fixed_mounts()), "52b7cff61c36bde2d384ff03b73fdcf2a5e2baad40b32362e4552b5f053a950d");
}

TEST_P(FileMountsDigest, PrefixIsFedFirst) {
  make_fixed_tree();
  scoped_cwd cwd(dir_.path());
  EXPECT_EQ(digest(fixed_mounts(), sha256_raw("yaml")),
            "535a07f5d61534407e9480845acb3a4661a7cb506a647943c221e4dfea9ed049");
}

TEST_P(FileMountsDigest, MountOrderDoesNotMatter) {
  make_fixed_tree();
  scoped_cwd cwd(dir_.path());
  auto mounts = fixed_mounts();
  std::reverse(mounts.begin(), mounts.end());
  EXPECT_EQ(digest(mounts), "52b7cff61c36bde2d384ff03b73fdcf2a5e2baad40b32362e4552b5f053a950d");
}

TEST_P(FileMountsDigest, NoMountsIsTheDigestOfThePrefix) {
  EXPECT_EQ(digest({}), openssl_hex(sky_async::hash_algorithm::sha256, ""));
  EXPECT_EQ(digest({}, "abc"), openssl_hex(sky_async::hash_algorithm::sha256, "abc"));
}

// Not UTF-8 (SkyPilot raises UnicodeEncodeError): raw bytes, sorted as bytes, where
// Python's str order would put "\x80raw" (U+DC80 after surrogateescape) after U+4E2D.
TEST_P(FileMountsDigest, NamesThatAreNotUtf8AreFedRawInByteOrder) {
  fs::create_directories(dir_ / "bytes");
  write_file(dir_ / "bytes/\x80raw", "1");
  write_file(dir_ / "bytes/\xe4\xb8\xad", "2");
  write_file(dir_ / "bytes/z", "3");
  scoped_cwd cwd(dir_.path());
  using namespace std::string_literals;
  const std::string stream = "/d\0dir"s + "bytes\0\0"s + "z\0"s + sha256_raw("3") + "\x80raw\0"s +
                             sha256_raw("1") + "\xe4\xb8\xad\0"s + sha256_raw("2") + "\0"s + "\0\0"s;
  EXPECT_EQ(digest({{"/d", "bytes"}}), openssl_hex(sky_async::hash_algorithm::sha256, stream));
}

TEST_P(FileMountsDigest, TildeIsExpandedFromHome) {
  write_file(dir_ / "single.txt", "single");
  scoped_env home("HOME", dir_.path().string() + "/");
  scoped_cwd cwd(dir_.path());
  // A file mount feeds its content, not its path: both spellings give one digest.
  EXPECT_EQ(digest({{"/f", "~/single.txt"}}), digest({{"/f", "single.txt"}}));
  EXPECT_NE(digest({{"/f", "~/single.txt"}}), digest({{"/f", "~/missing.txt"}}));
}

TEST_P(FileMountsDigest, EveryProblemIsReportedAndNothingBlocks) {
  fs::create_directories(dir_ / "tree");
  write_file(dir_ / "tree/good", "g");
  ASSERT_EQ(::mkfifo((dir_ / "tree/fifo").c_str(), 0600), 0);
  fs::create_symlink("nowhere", dir_ / "tree/broken");
  const auto fds = open_fds();
  watchdog unblock(10s, [] {});
  try {
    digest({{"/t", (dir_ / "tree").string()}});
    ADD_FAILURE() << "no file_mounts_error";
  } catch (const sky_async::file_mounts_error& e) {
    ASSERT_EQ(e.problems().size(), 2u);
    EXPECT_EQ(e.problems()[0].path, dir_ / "tree/broken");
    EXPECT_EQ(e.problems()[0].error, std::errc::no_such_file_or_directory);
    EXPECT_EQ(e.problems()[1].path, dir_ / "tree/fifo");
    EXPECT_EQ(e.problems()[1].error, sky_async::errc::not_a_regular_file);
    EXPECT_NE(std::string(e.what()).find("2 file mount paths"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(unblock.stop()) << "a FIFO below a mount blocked the digest";
  EXPECT_EQ(open_fds(), fds);
}

// SkyPilot 0.14.1 feeds the names of gcloud's credential caches but not their content:
// here a FIFO by such a name is never opened (it would be a problem otherwise).
TEST_P(FileMountsDigest, CredentialCachesAreNamedButTheirContentIsNotFed) {
  using namespace std::string_literals;
  fs::create_directories(dir_ / "tree");
  write_file(dir_ / "tree/a.txt", "a");
  ASSERT_EQ(::mkfifo((dir_ / "tree/credentials.db").c_str(), 0600), 0);
  write_file(dir_ / "tree/access_tokens.db-wal", "changes on every gcloud run");
  write_file(dir_ / "access_tokens.db", "token");
  const std::string tree = (dir_ / "tree").string();
  const std::string stream = "/f\0file\0\0"s + "/t\0dir"s + tree + "\0\0"s + "a.txt\0"s + sha256_raw("a") +
                             "access_tokens.db-wal\0"s + "credentials.db\0"s + "\0\0\0"s;
  watchdog unblock(10s, [] {});
  EXPECT_EQ(digest({{"/t", tree}, {"/f", (dir_ / "access_tokens.db").string()}}),
            openssl_hex(sky_async::hash_algorithm::sha256, stream));
  EXPECT_FALSE(unblock.stop()) << "a credential cache was opened";
}

TEST_P(FileMountsDigest, TheTokenFormCompletesWithEveryProblemInItsResult) {
  fs::create_directories(dir_ / "tree");
  write_file(dir_ / "tree/good", "g");
  ASSERT_EQ(::mkfifo((dir_ / "tree/fifo").c_str(), 0600), 0);
  const std::vector<sky_async::file_mount> mounts{{"/t", (dir_ / "tree").string()}};
  // The token form, completing on an io_context of the test's; nullopt: no completion.
  const auto run_token = [&](const std::string& prefix) {
    asio::io_context ctx;
    boost::system::error_code ec;
    std::optional<sky_async::file_mounts_result> result;
    sky_async::async_file_mounts_digest(
        *rt_, mounts, prefix, {}, asio::bind_executor(ctx, [&](auto e, sky_async::file_mounts_result r) {
          ec = e;
          result = std::move(r);
        }));
    ctx.run_for(20s);
    EXPECT_FALSE(ec) << ec.message();
    return result;
  };

  auto result = run_token({});
  ASSERT_TRUE(result.has_value()) << "no completion";
  EXPECT_FALSE(result->ok());
  EXPECT_TRUE(result->digest.empty());
  ASSERT_EQ(result->problems.size(), 1u);
  EXPECT_EQ(result->problems[0].path, dir_ / "tree/fifo");
  EXPECT_EQ(result->problems[0].error, sky_async::errc::not_a_regular_file);

  // And the digest when there is no problem, as the coroutine gives it.
  fs::remove(dir_ / "tree/fifo");
  result = run_token("p");
  ASSERT_TRUE(result.has_value()) << "no completion";
  EXPECT_TRUE(result->ok());
  EXPECT_EQ(result->digest, digest(mounts, "p"));
}

// Cancelled at any point (in the walk, while hashing, or after), it completes once, with
// operation_aborted and no digest unless it had already finished, and every file it
// opened is closed by then.
TEST_P(FileMountsDigest, CancellationThroughTheSlotClosesEverythingItOpened) {
  fs::create_directories(dir_ / "tree");
  const std::string content(64 * 1024, 'x');
  for (int d = 0; d < 20; ++d) {
    fs::create_directories(dir_ / "tree" / std::to_string(d));
    for (int f = 0; f < 50; ++f) write_file(dir_ / "tree" / std::to_string(d) / std::to_string(f), content);
  }
  const std::vector<file_mount> mounts{{"/t", (dir_ / "tree").string()}};
  const std::string expected = digest(mounts);
  int aborted = 0;
  for (auto delay : {0ms, 1ms, 3ms, 10ms, 30ms}) {
    asio::io_context ctx;
    asio::cancellation_signal signal;
    const auto fds_before = open_fds();
    int calls = 0;
    boost::system::error_code ec;
    sky_async::file_mounts_result result;
    sky_async::async_file_mounts_digest(
        *rt_, mounts, {}, {.concurrency = 8},
        asio::bind_cancellation_slot(signal.slot(),
                                     asio::bind_executor(ctx, [&](auto e, sky_async::file_mounts_result r) {
                                       ++calls;
                                       ec = e;
                                       result = std::move(r);
                                     })));
    std::this_thread::sleep_for(delay);
    signal.emit(asio::cancellation_type::terminal);
    ctx.run_for(20s);
    EXPECT_EQ(calls, 1);
    if (ec) {
      ++aborted;
      EXPECT_EQ(ec, asio::error::operation_aborted) << ec.message();
      EXPECT_TRUE(result.digest.empty());
    } else {
      EXPECT_EQ(result.digest, expected) << "finished before the cancel, with the whole digest";
    }
    EXPECT_EQ(open_fds(), fds_before)
        << "descriptors left open after a cancellation " << delay.count() << " ms in";
  }
  // 64 MiB to hash: a cancel right after the start cannot come after the end, unless this
  // thread was preempted for all that time in each of the first cases.
  EXPECT_GE(aborted, 1) << "no cancellation took effect";
  EXPECT_EQ(digest(mounts), expected) << "still usable";
}

// The runtime's shutdown cancels a digest that is hashing: it completes once, with
// operation_aborted and no digest, after the file it was reading is closed. The file is
// sparse and 64 GiB long, so the hashing is still running when the runtime goes, however
// slow the machine.
TEST_P(FileMountsDigest, ShutdownWhileHashingCompletesAsAbortedAndClosesTheFile) {
  fs::create_directories(dir_ / "tree");
  const fs::path big = dir_ / "tree" / "sparse";
  write_file(big, "");
  fs::resize_file(big, std::uintmax_t{64} << 30);
  const auto fds_before = open_fds();
  auto future =
      sky_async::async_file_mounts_digest(*rt_, {{"/t", (dir_ / "tree").string()}}, {}, {}, asio::use_future);
  const auto reading = [&] {
    for (const auto& [fd, target] : open_fds()) {
      if (target == big.string()) return true;
    }
    return false;
  };
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!reading() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(reading()) << "the hashing never opened the file";
  rt_.reset();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  try {
    const auto result = future.get();
    ADD_FAILURE() << "completed normally, digest " << result.digest;
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
  // The runtime's own descriptors (rings, eventfds) went with it; nothing else may be new.
  for (const auto& [fd, target] : open_fds()) {
    EXPECT_EQ(fds_before.count(fd), 1u) << "left open: " << fd << " -> " << target;
  }
}

TEST_P(FileMountsDigest, OnTheGlobalRuntimeToo) {
  write_file(dir_ / "single.txt", "single");
  using namespace std::string_literals;
  const std::string stream = "/f\0file"s + sha256_raw("single") + "\0\0"s;
  EXPECT_EQ(run(sky_async::file_mounts_digest({{"/f", dir_ / "single.txt"}})),
            openssl_hex(sky_async::hash_algorithm::sha256, stream));
}

}  // namespace
