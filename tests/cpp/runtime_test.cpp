// The runtime: which I/O backend it picks (options, SKY_ASYNC_IO_BACKEND, fallback)
// and how many worker threads it starts.
#include <sky_async/runtime.hpp>  // first: the header must compile on its own

#include "fd_exhaustion.hpp"
#include "test_support.hpp"

#include <sky_async/hash.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using sky_async::io_backend;
using sky_async::runtime;
using sky_async::runtime_options;
using sky_async_test::descriptors_taken;
using sky_async_test::scoped_env;

constexpr const char* backend_env = "SKY_ASYNC_IO_BACKEND";

// Whether io_uring can be used here, and if not why: asks the library itself by
// forcing it, which is documented to throw std::system_error when it is unavailable.
std::optional<std::string> io_uring_unavailable_reason() {
  try {
    runtime rt({.threads = 1, .backend = io_backend::io_uring});
    return std::nullopt;
  } catch (const std::system_error& e) {
    return std::string(e.what());
  }
}

TEST(RuntimeBackend, ForcedThreadsGivesThreads) {
  runtime rt({.backend = io_backend::threads});
  EXPECT_EQ(rt.backend(), io_backend::threads);
  EXPECT_EQ(rt.backend_reason(), "forced");
  EXPECT_GT(rt.threads(), 0u);
}

TEST(RuntimeBackend, ForcedIoUringGivesIoUringWhenAvailable) {
  try {
    runtime rt({.backend = io_backend::io_uring});
    EXPECT_EQ(rt.backend(), io_backend::io_uring);
    EXPECT_TRUE(rt.backend_reason().empty()) << rt.backend_reason();
    EXPECT_GT(rt.threads(), 0u);
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "io_uring unavailable here: " << e.what();
  }
}

TEST(RuntimeBackend, ExplicitOptionIgnoresEnvironment) {
  // Only std::nullopt consults the environment, so even a bad value is irrelevant.
  scoped_env env(backend_env, "no-such-backend");
  runtime rt({.backend = io_backend::threads});
  EXPECT_EQ(rt.backend(), io_backend::threads);
}

TEST(RuntimeBackend, EnvironmentThreads) {
  scoped_env env(backend_env, "threads");
  runtime rt;
  EXPECT_EQ(rt.backend(), io_backend::threads);
  EXPECT_FALSE(rt.backend_reason().empty());
}

TEST(RuntimeBackend, EnvironmentIoUring) {
  const auto unavailable = io_uring_unavailable_reason();
  scoped_env env(backend_env, "io_uring");
  if (unavailable) {
    EXPECT_THROW(runtime rt, std::system_error);
    GTEST_SKIP() << "io_uring unavailable here: " << *unavailable;
  }
  runtime rt;
  EXPECT_EQ(rt.backend(), io_backend::io_uring);
  EXPECT_TRUE(rt.backend_reason().empty()) << rt.backend_reason();
}

TEST(RuntimeBackend, EnvironmentAutoPrefersIoUringAndFallsBackToThreads) {
  const auto unavailable = io_uring_unavailable_reason();
  scoped_env env(backend_env, "auto");
  runtime rt;
  if (unavailable) {
    EXPECT_EQ(rt.backend(), io_backend::threads);
    // The fallback says why io_uring was ruled out.
    EXPECT_FALSE(rt.backend_reason().empty());
    EXPECT_NE(rt.backend_reason(), "forced");
  } else {
    EXPECT_EQ(rt.backend(), io_backend::io_uring);
    EXPECT_TRUE(rt.backend_reason().empty()) << rt.backend_reason();
  }
}

TEST(RuntimeBackend, UnsetEnvironmentMeansAuto) {
  const auto unavailable = io_uring_unavailable_reason();
  scoped_env env(backend_env, std::nullopt);
  runtime rt;
  EXPECT_EQ(rt.backend(), unavailable ? io_backend::threads : io_backend::io_uring);
}

TEST(RuntimeBackend, InvalidEnvironmentValueThrowsInvalidArgument) {
  for (const char* value : {"bogus", "IO_URING", "thread", "uring"}) {
    SCOPED_TRACE(value);
    scoped_env env(backend_env, value);
    EXPECT_THROW(runtime rt, std::invalid_argument);
  }
}

// Run by ctest as no_io_uring.runtime_test, under tests/tools/no_io_uring (seccomp refuses
// io_uring_setup, as Docker's default profile does), which sets the variable to the errno.
TEST(RuntimeBackend, SeccompBlockedIoUringFallsBackToThreadsAndSaysWhy) {
  const char* blocked = std::getenv("SKY_ASYNC_TEST_IO_URING_BLOCKED");
  if (blocked == nullptr)
    GTEST_SKIP() << "only under tests/tools/no_io_uring (ctest no_io_uring.runtime_test)";
  const std::string cause = std::strerror(std::atoi(blocked));
  scoped_env env(backend_env, std::nullopt);

  runtime rt;
  EXPECT_EQ(rt.backend(), io_backend::threads);
  EXPECT_EQ(rt.backend_reason(), "io_uring_setup: " + cause);
  EXPECT_EQ(runtime::global().backend(), io_backend::threads);
  EXPECT_EQ(runtime::global().backend_reason(), "io_uring_setup: " + cause);

  // Asking for io_uring by name is an error that carries the cause.
  try {
    runtime forced({.backend = io_backend::io_uring});
    ADD_FAILURE() << "a blocked io_uring was accepted";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(cause), std::string::npos) << e.what();
  }
}

// Out of descriptors at start (a tiny RLIMIT_NOFILE): forced io_uring cannot fall back, so
// it throws EMFILE saying the runtime could not start (it threw ENOSYS, which Python showed
// as a bare RuntimeError); auto falls back to threads, which need no descriptor, and says why.
TEST(RuntimeBackend, OutOfDescriptorsForcedIoUringThrowsEmfileAndAutoFallsBackToThreads) {
  SKY_ASYNC_SKIP_WHERE_THE_SANITIZER_NEEDS_DESCRIPTORS();
  if (const auto unavailable = io_uring_unavailable_reason()) {
    GTEST_SKIP() << "io_uring unavailable here: " << *unavailable;
  }
  scoped_env env(backend_env, std::nullopt);
  descriptors_taken all;
  try {
    runtime rt({.threads = 2, .backend = io_backend::io_uring});
    ADD_FAILURE() << "a ring was made without a descriptor";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::too_many_files_open) << e.code().message();
    EXPECT_EQ(std::string(e.what()).rfind("sky_async's runtime could not start: io_uring was requested", 0),
              0u)
        << e.what();
  }
  runtime rt({.threads = 2, .backend = std::nullopt});
  EXPECT_EQ(rt.backend(), io_backend::threads);
  EXPECT_NE(rt.backend_reason().find(std::strerror(EMFILE)), std::string::npos) << rt.backend_reason();
}

// How many of this thread's blocking writes to a full pipe returned short, writing 1 MiB
// at a time for about `duration` to a pipe another thread drains slowly (each write blocks).
int short_blocking_writes(std::chrono::milliseconds duration) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::system_error(errno, std::system_category(), "pipe");
  std::thread drainer([read_end = fds[0]] {
    std::vector<char> buffer(4096);
    while (::read(read_end, buffer.data(), buffer.size()) > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    ::close(read_end);
  });
  const std::vector<char> block(1 << 20, 'x');
  int short_writes = 0;
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < deadline) {
    std::size_t written = 0;
    while (written < block.size()) {
      const ssize_t n = ::write(fds[1], block.data() + written, block.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        ::close(fds[1]);
        drainer.join();
        throw std::system_error(errno, std::system_category(), "write");
      }
      if (written == 0 && static_cast<std::size_t>(n) < block.size()) ++short_writes;
      written += static_cast<std::size_t>(n);
    }
  }
  ::close(fds[1]);
  drainer.join();
  return short_writes;
}

// The kernel ties an io_uring ring to the thread that creates it, and later queues task
// work for that thread (when a ring is torn down, for one), which cuts short the blocking
// system call the thread is in: a write to a full pipe returns early. Programs that do not
// loop on short writes lose data (Python's print() drops the rest of its text). So the
// runtime's rings are made by its own threads, and starting a runtime, using it and
// ending it leave the caller's blocking calls alone.
TEST(RuntimeRings, TheCallersBlockingWritesAreNeverCutShort) {
  const sky_async_test::temp_dir dir;
  const auto file = dir / "f";
  sky_async_test::write_file(file, sky_async_test::make_data(100000));
  for (const io_backend backend : {io_backend::io_uring, io_backend::threads}) {
    SCOPED_TRACE(std::string(sky_async::to_string(backend)));
    std::optional<runtime> rt;
    try {
      rt.emplace(runtime_options{.threads = 2, .backend = backend});
    } catch (const std::system_error& e) {
      std::cout << "io_uring unavailable here, only threads checked: " << e.what() << '\n';
      continue;
    }
    const auto results = sky_async_test::run(sky_async::hash_files(*rt, {file}));
    ASSERT_EQ(results.size(), 1u);
    EXPECT_FALSE(results[0].error) << results[0].error.message();
    EXPECT_EQ(short_blocking_writes(std::chrono::milliseconds(300)), 0);
    rt.reset();
    EXPECT_EQ(short_blocking_writes(std::chrono::milliseconds(300)), 0) << "after the runtime ended";
  }
}

TEST(RuntimeThreads, DefaultIsPositive) {
  scoped_env env(backend_env, std::nullopt);
  runtime rt;
  EXPECT_GT(rt.threads(), 0u);
}

TEST(RuntimeThreads, ThreadsBackendDefaultsToAtLeastFour) {
  // A threads worker blocks on each read, so there are more of them.
  runtime rt({.backend = io_backend::threads});
  EXPECT_GE(rt.threads(), 4u);
}

TEST(RuntimeThreads, ExplicitCountIsHonoured) {
  runtime rt({.threads = 3, .backend = io_backend::threads});
  EXPECT_EQ(rt.threads(), 3u);
}

TEST(RuntimeThreads, ExplicitCountIsHonouredWithIoUring) {
  try {
    runtime rt({.threads = 2, .backend = io_backend::io_uring});
    EXPECT_EQ(rt.threads(), 2u);
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "io_uring unavailable here: " << e.what();
  }
}

TEST(RuntimeGlobal, IsOneInstance) {
  runtime& a = runtime::global();
  runtime& b = runtime::global();
  EXPECT_EQ(&a, &b);
  EXPECT_GT(a.threads(), 0u);
}

TEST(IoBackendNames, RoundTrip) {
  for (io_backend backend : {io_backend::io_uring, io_backend::threads}) {
    const auto name = sky_async::to_string(backend);
    EXPECT_EQ(sky_async::parse_io_backend(name), backend) << name;
  }
  EXPECT_EQ(sky_async::to_string(io_backend::io_uring), "io_uring");
  EXPECT_EQ(sky_async::to_string(io_backend::threads), "threads");
}

TEST(IoBackendNames, ParseRejectsEverythingElse) {
  // "auto" is an environment setting, not a backend.
  for (const char* name : {"", "auto", "bogus", "Threads", "IO_URING", "io_uring ", "uring"}) {
    EXPECT_EQ(sky_async::parse_io_backend(name), std::nullopt) << '"' << name << '"';
  }
}

}  // namespace
