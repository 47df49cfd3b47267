// Helpers shared by the GoogleTest files: a per-test temporary directory, file
// contents and their OpenSSL one-shot digests (the oracle), a way to drive a
// coroutine to completion, and process-level probes (open descriptors, env vars).
#pragma once

#include <sky_async/hash.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

// Names rather than bytes in gtest messages (found by argument-dependent lookup).
namespace sky_async {
inline void PrintTo(io_backend backend, std::ostream* out) { *out << to_string(backend); }
inline void PrintTo(hash_algorithm algorithm, std::ostream* out) { *out << to_string(algorithm); }
}  // namespace sky_async

namespace sky_async_test {

namespace asio = boost::asio;
namespace fs = std::filesystem;

inline constexpr std::array all_algorithms = {
    sky_async::hash_algorithm::md5,    sky_async::hash_algorithm::sha1,   sky_async::hash_algorithm::sha224,
    sky_async::hash_algorithm::sha256, sky_async::hash_algorithm::sha384, sky_async::hash_algorithm::sha512,
};

// A fresh directory (mkdtemp) removed with everything in it at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "sky-async-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const fs::path& path() const noexcept { return path_; }
  fs::path operator/(const fs::path& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Deterministic pseudo-random bytes (splitmix64), so that every block boundary
// sees different data and a test failure reproduces.
inline std::string make_data(std::size_t size, std::uint64_t seed = 1) {
  std::string data(size, '\0');
  std::uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (std::size_t i = 0; i < size; i += 8) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (std::size_t j = 0; j < 8 && i + j < size; ++j) data[i + j] = static_cast<char>(z >> (8 * j));
  }
  return data;
}

inline void write_file(const fs::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// Reads to EOF, whatever st_size says (files under /proc report 0).
inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The oracle: OpenSSL's one-shot EVP_Digest, mapped here independently of the library.
inline const EVP_MD* evp_md(sky_async::hash_algorithm algorithm) {
  switch (algorithm) {
    case sky_async::hash_algorithm::md5:
      return EVP_md5();
    case sky_async::hash_algorithm::sha1:
      return EVP_sha1();
    case sky_async::hash_algorithm::sha224:
      return EVP_sha224();
    case sky_async::hash_algorithm::sha256:
      return EVP_sha256();
    case sky_async::hash_algorithm::sha384:
      return EVP_sha384();
    case sky_async::hash_algorithm::sha512:
      return EVP_sha512();
  }
  throw std::invalid_argument("unknown hash_algorithm");
}

inline std::string openssl_hex(sky_async::hash_algorithm algorithm, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, evp_md(algorithm), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

// Runs an awaitable on a private io_context until it finishes; its exception, if
// any, is rethrown here.
template <typename T>
T run(asio::awaitable<T> awaitable) {
  asio::io_context ctx;
  auto result = asio::co_spawn(ctx, std::move(awaitable), asio::use_future);
  ctx.run();
  return result.get();
}

// The open descriptors and what each refers to (less the one used to list them): compared
// with EXPECT_EQ, a leak's message names the files left open, not only how many.
//
// Under ASan+UBSan, anonymous pipes are left out: UBSan's vptr check opens and closes one
// to test that memory is readable, on whichever thread misses its type cache, so a worker
// still finishing a handler can show one in a listing (seen once in CI: "pipe:[…]" as fds
// 15 and 16 after a batch). sky_async itself never creates a pipe.
inline std::map<int, std::string> open_fds() {
  std::map<int, std::string> fds;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    const fs::path target = fs::read_symlink(entry.path(), ec);
#if defined(__SANITIZE_ADDRESS__)
    if (!ec && target.string().starts_with("pipe:")) continue;
#endif
    fds.emplace(std::stoi(entry.path().filename().string()), ec ? "?" : target.string());
  }
  // The listing's own descriptor no longer exists once the iterator is gone.
  for (auto it = fds.begin(); it != fds.end();) {
    it = ::fcntl(it->first, F_GETFD) == -1 ? fds.erase(it) : std::next(it);
  }
  return fds;
}

// Sets (or, with std::nullopt, unsets) an environment variable for one scope.
class scoped_env {
 public:
  scoped_env(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ~scoped_env() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// Calls on_expiry (repeatedly, every 100 ms) if the scope lasts longer than the
// deadline, so that a test can unblock a hung call and fail instead of hanging.
class watchdog {
 public:
  watchdog(std::chrono::milliseconds deadline, std::function<void()> on_expiry)
      : thread_([this, deadline, on_expiry = std::move(on_expiry)] {
          std::unique_lock lock(mutex_);
          if (done_changed_.wait_for(lock, deadline, [this] { return done_; })) return;
          fired_ = true;
          while (!done_) {
            lock.unlock();
            on_expiry();
            lock.lock();
            done_changed_.wait_for(lock, std::chrono::milliseconds(100), [this] { return done_; });
          }
        }) {}
  ~watchdog() { stop(); }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  // Returns whether the deadline passed.
  bool stop() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_changed_.notify_all();
    if (thread_.joinable()) thread_.join();
    return fired_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  bool fired_ = false;
  std::thread thread_;
};

// "category:value (message)", for assertion messages.
inline std::string describe(const std::error_code& ec) {
  if (!ec) return "success";
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
}

// A test run once per I/O backend, each time on a runtime of its own (skipped where io_uring
// is unavailable), with a temporary directory that outlives the runtime.
class on_each_io_backend : public ::testing::TestWithParam<sky_async::io_backend> {
 protected:
  void SetUp() override {
    try {
      rt_ = std::make_unique<sky_async::runtime>(sky_async::runtime_options{.backend = GetParam()});
    } catch (const std::system_error& e) {
      GTEST_SKIP() << "io_uring unavailable here: " << e.what();
    }
    ASSERT_EQ(rt_->backend(), GetParam());
  }

  sky_async::runtime& rt() { return *rt_; }

  temp_dir dir_;                            // declared first: outlives the runtime
  std::unique_ptr<sky_async::runtime> rt_;  // destroyed first, with its open files
};

inline const auto all_io_backends =
    ::testing::Values(sky_async::io_backend::io_uring, sky_async::io_backend::threads);

// Test names that say which backend ran ("io_uring", "threads").
inline std::string io_backend_name(const ::testing::TestParamInfo<sky_async::io_backend>& info) {
  return std::string(sky_async::to_string(info.param));
}

}  // namespace sky_async_test
