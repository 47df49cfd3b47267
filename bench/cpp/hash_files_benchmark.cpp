// C++-side hashing benchmarks: the io_uring and threads backends side by side against
// a plain sequential open/read/EVP loop, on the same files in one run.
//
//   cmake -S . -B build/bench -G Ninja -DSKY_ASYNC_BUILD_BENCHMARKS=ON -DSKY_ASYNC_BUILD_TESTS=OFF
//   cmake --build build/bench && build/bench/bench/cpp/hash_files_benchmark
#include <sky_async/hash.hpp>

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

// Files made once per process, kept in the page cache by the warm-up iteration.
const std::vector<fs::path>& files(std::size_t count, std::size_t size) {
  static std::map<std::pair<std::size_t, std::size_t>, std::vector<fs::path>> made;
  auto& paths = made[{count, size}];
  if (!paths.empty()) return paths;
  const fs::path dir = fs::temp_directory_path() / ("sky-async-bench-" + std::to_string(::getpid()) + "-" +
                                                    std::to_string(count) + "x" + std::to_string(size));
  fs::create_directories(dir);
  std::mt19937_64 random(42);
  std::string data(size, '\0');
  for (std::size_t i = 0; i < count; ++i) {
    for (auto& c : data) c = static_cast<char>(random());
    paths.push_back(dir / ("f" + std::to_string(i)));
    std::ofstream(paths.back(), std::ios::binary).write(data.data(), static_cast<std::streamsize>(size));
  }
  std::atexit([] {
    for (auto& [key, list] : made) {
      if (!list.empty()) fs::remove_all(list.front().parent_path());
    }
  });
  return paths;
}

void sequential_evp(benchmark::State& state) {
  const auto& paths = files(state.range(0), state.range(1));
  std::vector<unsigned char> buffer(128 * 1024);
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  for (auto _ : state) {
    for (const auto& p : paths) {
      const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      EVP_DigestInit_ex2(ctx, md, nullptr);
      ssize_t got;
      while ((got = ::read(fd, buffer.data(), buffer.size())) > 0) EVP_DigestUpdate(ctx, buffer.data(), got);
      unsigned char out[EVP_MAX_MD_SIZE];
      unsigned int size;
      EVP_DigestFinal_ex(ctx, out, &size);
      ::close(fd);
    }
  }
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  state.SetBytesProcessed(state.iterations() * state.range(0) * state.range(1));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

template <sky_async::io_backend Backend>
void hash_files(benchmark::State& state) {
  const auto& paths = files(state.range(0), state.range(1));
  sky_async::runtime rt({.backend = Backend});
  boost::asio::io_context ctx;
  for (auto _ : state) {
    auto future = sky_async::async_hash_files(rt, paths, sky_async::hash_algorithm::sha256, {},
                                              boost::asio::use_future);
    auto results = future.get();
    benchmark::DoNotOptimize(results);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0) * state.range(1));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void shapes(benchmark::internal::Benchmark* b) {
  b->Args({5000, 16 * 1024})->Args({8, 64 * 1024 * 1024})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(sequential_evp)->Apply(shapes);
BENCHMARK(hash_files<sky_async::io_backend::io_uring>)->Name("hash_files/io_uring")->Apply(shapes);
BENCHMARK(hash_files<sky_async::io_backend::threads>)->Name("hash_files/threads")->Apply(shapes);

}  // namespace

BENCHMARK_MAIN();
