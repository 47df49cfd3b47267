// Following a log: the last lines, appended lines, partial lines held until their LF,
// truncation, rotation, finish() ("until"), cancellation and destruction closing every
// descriptor, one inotify watch per file however many streams follow it, polling where
// inotify is unavailable, and the error for a missing file. Every case runs once per I/O
// backend. No case asserts timing: waits have a generous timeout that only stops a hang.
#include <sky_async/stream_log.hpp>  // first: the header must compile on its own

#include "tail/inotify_hub.hpp"
#include "tail/stream_log_engine.hpp"
#include "test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/inotify.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using namespace sky_async_test;
using sky_async::log_stream;
using sky_async::stream_log_options;

// Only stops a hang: nothing here is expected to take more than milliseconds.
constexpr auto hang_timeout = 60s;

struct chunk_result {
  boost::system::error_code ec;
  std::string data;
};

chunk_result next_chunk(log_stream& stream) {
  auto done = std::make_shared<std::promise<chunk_result>>();
  auto result = done->get_future();
  stream.async_next_chunk(
      [done](boost::system::error_code ec, std::string data) { done->set_value({ec, std::move(data)}); });
  if (result.wait_for(hang_timeout) != std::future_status::ready) {
    ADD_FAILURE() << "no chunk within the hang timeout";
    stream.close();
  }
  return result.get();
}

// Chunks until `want` bytes came (or the stream ended): their concatenation.
std::string collect(log_stream& stream, std::size_t want) {
  std::string got;
  while (got.size() < want) {
    chunk_result chunk = next_chunk(stream);
    if (chunk.ec) {
      ADD_FAILURE() << "ended with " << chunk.ec.message() << " after " << got.size() << " bytes";
      break;
    }
    EXPECT_FALSE(chunk.data.empty());
    got += chunk.data;
  }
  return got;
}

// Chunks to the end of the stream: their concatenation, and how it ended.
std::string drain(log_stream& stream, boost::system::error_code& end) {
  std::string got;
  for (;;) {
    chunk_result chunk = next_chunk(stream);
    if (chunk.ec) {
      end = chunk.ec;
      EXPECT_TRUE(chunk.data.empty());
      return got;
    }
    got += chunk.data;
  }
}

void append(const fs::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot append to " + path.string());
}

bool inotify_available() {
  const int fd = ::inotify_init1(IN_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

class StreamLog : public on_each_io_backend {
 protected:
  // The descriptors open once a stream has run: in threads mode the worker's io_context
  // makes its reactor (epoll, eventfd, timerfd) on the first timer, and keeps it.
  std::map<int, std::string> fds_after_warm_up() {
    write_file(dir_ / "warm-up.log", "warm\n");
    {
      log_stream stream(rt(), dir_ / "warm-up.log", {});
      EXPECT_EQ(collect(stream, 5), "warm\n");
    }
    return open_fds();
  }

  void TearDown() override { sky_async::detail::force_log_polling(false); }

  fs::path log_ = dir_ / "app.log";
};

TEST_P(StreamLog, TailReadsOnlyTheLastLines) {
  write_file(log_, "one\ntwo\nthree\nfour\n");
  boost::system::error_code end;
  {
    log_stream stream(rt(), log_, {.tail = 2, .follow = false});
    EXPECT_EQ(drain(stream, end), "three\nfour\n");
    EXPECT_EQ(end, boost::asio::error::eof);
  }
  {
    log_stream stream(rt(), log_, {.tail = std::nullopt, .follow = false});
    EXPECT_EQ(drain(stream, end), "one\ntwo\nthree\nfour\n");
  }
  {
    log_stream stream(rt(), log_, {.tail = 0, .follow = false});
    EXPECT_EQ(drain(stream, end), "");
    EXPECT_EQ(end, boost::asio::error::eof);
    // Every later request ends too.
    EXPECT_EQ(next_chunk(stream).ec, boost::asio::error::eof);
  }
  {
    // An unterminated last line counts as a line, and is delivered as it is at the end.
    write_file(log_, "a\nb\nc");
    log_stream stream(rt(), log_, {.tail = 2, .follow = false});
    EXPECT_EQ(drain(stream, end), "b\nc");
  }
}

TEST_P(StreamLog, ChunksHoldWholeLinesUpToMaxChunkBytes) {
  std::string data;
  for (int i = 0; i < 200; ++i) data += "line " + std::to_string(i) + "\n";
  data += std::string(100, 'x') + "\n";  // longer than a chunk alone
  write_file(log_, data);
  log_stream stream(rt(), log_, {.tail = std::nullopt, .follow = false, .max_chunk_bytes = 64});
  std::string got;
  for (;;) {
    chunk_result chunk = next_chunk(stream);
    if (chunk.ec) {
      EXPECT_EQ(chunk.ec, boost::asio::error::eof);
      break;
    }
    ASSERT_FALSE(chunk.data.empty());
    EXPECT_EQ(chunk.data.back(), '\n');
    if (chunk.data.size() > 64) {
      EXPECT_EQ(chunk.data.find('\n'), chunk.data.size() - 1) << "only one long line";
    }
    got += chunk.data;
  }
  EXPECT_EQ(got, data);
}

TEST_P(StreamLog, FollowSeesAppendedLines) {
  write_file(log_, "before\n");
  log_stream stream(rt(), log_, {.tail = 0});
  append(log_, "one\ntwo\n");
  EXPECT_EQ(collect(stream, 8), "one\ntwo\n");
  append(log_, "three\n");
  EXPECT_EQ(collect(stream, 6), "three\n");
}

TEST_P(StreamLog, PartialLineIsHeldUntilItsNewline) {
  write_file(log_, "");
  log_stream stream(rt(), log_, {.tail = 0});
  append(log_, "first\npar");
  EXPECT_EQ(collect(stream, 6), "first\n");
  append(log_, "tial\n");
  EXPECT_EQ(collect(stream, 8), "partial\n");
}

TEST_P(StreamLog, TruncationRestartsFromTheTop) {
  write_file(log_, "old line one\nold line two\n");
  log_stream stream(rt(), log_, {});
  EXPECT_EQ(collect(stream, 26), "old line one\nold line two\n");
  write_file(log_, "new\n");  // truncates, then writes less than was read
  EXPECT_EQ(collect(stream, 4), "new\n");
  append(log_, "more\n");
  EXPECT_EQ(collect(stream, 5), "more\n");
}

TEST_P(StreamLog, RotationFinishesTheOldFileThenReadsTheNewOne) {
  write_file(log_, "a\n");
  log_stream stream(rt(), log_, {});
  EXPECT_EQ(collect(stream, 2), "a\n");
  append(log_, "b\nunterminated");
  fs::rename(log_, dir_ / "app.log.1");
  write_file(log_, "c\n");
  // The old file's last line, which can never be completed, gets an LF.
  EXPECT_EQ(collect(stream, 17), "b\nunterminated\nc\n");
  append(log_, "d\n");
  EXPECT_EQ(collect(stream, 2), "d\n");
}

TEST_P(StreamLog, RotationByDeleteAndRecreate) {
  write_file(log_, "a\n");
  log_stream stream(rt(), log_, {});
  EXPECT_EQ(collect(stream, 2), "a\n");
  fs::remove(log_);
  write_file(log_, "fresh\n");
  EXPECT_EQ(collect(stream, 6), "fresh\n");
}

TEST_P(StreamLog, FinishDeliversWhatIsWrittenThenEnds) {
  write_file(log_, "x\n");
  log_stream stream(rt(), log_, {});
  EXPECT_EQ(collect(stream, 2), "x\n");
  append(log_, "y\nz");
  stream.finish();
  boost::system::error_code end;
  EXPECT_EQ(drain(stream, end), "y\nz");
  EXPECT_EQ(end, boost::asio::error::eof);
}

TEST_P(StreamLog, FinishWakesAWaitingRequest) {
  write_file(log_, "");
  log_stream stream(rt(), log_, {});
  auto done = std::make_shared<std::promise<chunk_result>>();
  auto result = done->get_future();
  stream.async_next_chunk(
      [done](boost::system::error_code ec, std::string data) { done->set_value({ec, std::move(data)}); });
  stream.finish();
  ASSERT_EQ(result.wait_for(hang_timeout), std::future_status::ready);
  EXPECT_EQ(result.get().ec, boost::asio::error::eof);
}

TEST_P(StreamLog, OneRequestAtATime) {
  write_file(log_, "");
  log_stream stream(rt(), log_, {});
  auto first = std::make_shared<std::promise<chunk_result>>();
  auto first_result = first->get_future();
  stream.async_next_chunk(
      [first](boost::system::error_code ec, std::string data) { first->set_value({ec, std::move(data)}); });
  // The first waits for a line; the second is refused at once, and the first still gets its line.
  EXPECT_EQ(next_chunk(stream).ec, boost::asio::error::already_started);
  append(log_, "line\n");
  ASSERT_EQ(first_result.wait_for(hang_timeout), std::future_status::ready);
  const chunk_result got = first_result.get();
  EXPECT_FALSE(got.ec) << got.ec.message();
  EXPECT_EQ(got.data, "line\n");
}

TEST_P(StreamLog, CancellationClosesEveryDescriptor) {
  write_file(log_, "line\n");
  const auto fds_before = fds_after_warm_up();
  {
    log_stream stream(rt(), log_, {});
    EXPECT_EQ(collect(stream, 5), "line\n");
    boost::asio::cancellation_signal cancel;
    auto done = std::make_shared<std::promise<chunk_result>>();
    auto result = done->get_future();
    stream.async_next_chunk(boost::asio::bind_cancellation_slot(
        cancel.slot(),
        [done](boost::system::error_code ec, std::string data) { done->set_value({ec, std::move(data)}); }));
    cancel.emit(boost::asio::cancellation_type::terminal);
    ASSERT_EQ(result.wait_for(hang_timeout), std::future_status::ready);
    EXPECT_EQ(result.get().ec, boost::asio::error::operation_aborted);
    // Closed before the completion: the file, its watches and the inotify instance.
    EXPECT_EQ(open_fds(), fds_before) << "descriptors left open";
    EXPECT_EQ(next_chunk(stream).ec, boost::asio::error::eof);
  }
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked";
}

TEST_P(StreamLog, DestructionClosesEveryDescriptor) {
  write_file(log_, "line\n");
  const auto fds_before = fds_after_warm_up();
  {
    log_stream stream(rt(), log_, {});
    EXPECT_EQ(collect(stream, 5), "line\n");
    // A request still waiting when the stream is destroyed ends with eof.
    auto done = std::make_shared<std::promise<chunk_result>>();
    auto result = done->get_future();
    stream.async_next_chunk(
        [done](boost::system::error_code ec, std::string data) { done->set_value({ec, std::move(data)}); });
    stream.close();
    ASSERT_EQ(result.wait_for(hang_timeout), std::future_status::ready);
    EXPECT_EQ(result.get().ec, boost::asio::error::eof);
  }
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked";
  {
    log_stream stream(rt(), log_, {});
  }
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked by a stream never read";
  {
    log_stream stream(rt(), log_, {});
    stream = log_stream(rt(), log_, {.tail = 0, .follow = false});  // closes the first
    EXPECT_EQ(next_chunk(stream).ec, boost::asio::error::eof);
  }
  EXPECT_EQ(open_fds(), fds_before) << "descriptors leaked by a stream assigned over";
}

TEST_P(StreamLog, ManyStreamsOnOneFileShareOneWatch) {
  if (!inotify_available()) GTEST_SKIP() << "inotify unavailable here";
  write_file(log_, "shared\n");
  write_file(dir_ / "other.log", "other\n");
  {
    std::vector<std::unique_ptr<log_stream>> streams;
    for (int i = 0; i < 8; ++i)
      streams.push_back(std::make_unique<log_stream>(rt(), log_, stream_log_options{}));
    streams.push_back(std::make_unique<log_stream>(rt(), dir_ / "other.log", stream_log_options{}));
    const auto counts = sky_async::detail::log_watch_counts(rt());
    EXPECT_EQ(counts.instances, 1U);
    EXPECT_EQ(counts.file_watches, 2U) << "one watch per file";
    EXPECT_EQ(counts.directory_watches, 1U);
    EXPECT_EQ(counts.readers, 9U);
    append(log_, "news\n");
    for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(collect(*streams[i], 12), "shared\nnews\n");
    streams.erase(streams.begin(), streams.begin() + 4);
    const auto fewer = sky_async::detail::log_watch_counts(rt());
    EXPECT_EQ(fewer.file_watches, 2U);
    EXPECT_EQ(fewer.readers, 5U);
  }
  const auto none = sky_async::detail::log_watch_counts(rt());
  EXPECT_EQ(none.instances, 0U) << "the instance is closed with its last reader";
  EXPECT_EQ(none.file_watches, 0U);
  EXPECT_EQ(none.directory_watches, 0U);
}

TEST_P(StreamLog, PollsWhereInotifyIsUnavailable) {
  sky_async::detail::force_log_polling(true);
  write_file(log_, "");
  log_stream stream(rt(), log_, {});
  EXPECT_EQ(sky_async::detail::log_watch_counts(rt()).instances, 0U);
  append(log_, "polled\n");
  EXPECT_EQ(collect(stream, 7), "polled\n");
  fs::rename(log_, dir_ / "app.log.1");
  write_file(log_, "rotated\n");
  EXPECT_EQ(collect(stream, 8), "rotated\n");
}

TEST_P(StreamLog, MissingFileThrowsItsError) {
  const auto fds_before = open_fds();
  try {
    log_stream stream(rt(), dir_ / "missing.log");
    ADD_FAILURE() << "no error";
  } catch (const fs::filesystem_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory) << describe(e.code());
    EXPECT_EQ(e.path1(), dir_ / "missing.log");
  }
  try {
    log_stream stream(rt(), dir_.path());
    ADD_FAILURE() << "no error for a directory";
  } catch (const fs::filesystem_error& e) {
    EXPECT_EQ(e.code(), std::errc::is_a_directory) << describe(e.code());
  }
  EXPECT_THROW(log_stream(rt(), dir_.path(), {.tail = std::nullopt, .follow = true, .max_chunk_bytes = 0}),
               std::invalid_argument);
  EXPECT_EQ(open_fds(), fds_before);
}

TEST_P(StreamLog, CoroutineForm) {
  write_file(log_, "one\ntwo\n");
  log_stream stream(rt(), log_, {.tail = 1, .follow = false});
  EXPECT_EQ(run(stream.next_chunk()), std::optional<std::string>("two\n"));
  EXPECT_EQ(run(stream.next_chunk()), std::nullopt);
}

TEST_P(StreamLog, RuntimeShutdownClosesAnOpenStream) {
  write_file(log_, "x\n");
  auto stream = std::make_unique<log_stream>(rt(), log_, stream_log_options{});
  auto done = std::make_shared<std::promise<chunk_result>>();
  auto result = done->get_future();
  EXPECT_EQ(collect(*stream, 2), "x\n");
  stream->async_next_chunk(
      [done](boost::system::error_code ec, std::string data) { done->set_value({ec, std::move(data)}); });
  rt_.reset();
  ASSERT_EQ(result.wait_for(hang_timeout), std::future_status::ready);
  EXPECT_EQ(result.get().ec, boost::asio::error::operation_aborted);
  stream.reset();  // after its runtime: already closed, nothing to wait for
}

INSTANTIATE_TEST_SUITE_P(Backends, StreamLog, all_io_backends, io_backend_name);

}  // namespace
