// hash_files FILE...: prints each file's SHA-256 as sha256sum does, in argument
// order, hashing the files concurrently. Failures go to stderr and make the exit
// status 1, after every other file has been printed.
#include <sky_async/sky_async.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <exception>
#include <filesystem>
#include <iostream>
#include <vector>

namespace asio = boost::asio;

namespace {

asio::awaitable<int> print_digests(std::vector<std::filesystem::path> paths) {
  // The reading and hashing run on the library's own worker threads (the process-wide
  // runtime); this coroutine only waits, so the io_context stays free meanwhile.
  const std::vector<sky_async::hash_result> results =
      co_await sky_async::hash_files(paths, sky_async::hash_algorithm::sha256);

  // One result per path, in the same order, whatever order the files finished in.
  int status = 0;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (results[i].ok()) {
      // Names are printed as given; sha256sum would escape a backslash or newline.
      std::cout << results[i].digest << "  " << paths[i].native() << '\n';
    } else {
      std::cerr << "hash_files: " << paths[i].native() << ": " << results[i].error.message() << '\n';
      status = 1;
    }
  }
  co_return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: hash_files FILE...\n";
    return 2;
  }
  std::vector<std::filesystem::path> paths(argv + 1, argv + argc);

  asio::io_context ctx;
  int status = 1;
  asio::co_spawn(ctx, print_digests(std::move(paths)), [&status](std::exception_ptr error, int result) {
    // Per-file problems are in the results; an exception here is about the whole
    // call, e.g. a bad SKY_ASYNC_IO_BACKEND value when the runtime is created.
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        std::cerr << "hash_files: " << e.what() << '\n';
      }
      return;
    }
    status = result;
  });
  ctx.run();
  return status;
}
