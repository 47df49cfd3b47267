#include <sky_async/hash.hpp>

#include "core/digest.hpp"
#include "hash/hash_engine.hpp"

namespace sky_async {

namespace detail {

std::shared_ptr<hash_operation> make_hash_operation(runtime& rt, std::vector<std::filesystem::path> paths,
                                                    hash_algorithm algorithm, hash_options options) {
  // Fail here, in the caller's thread, if OpenSSL cannot provide the algorithm (FIPS md5).
  digest probe;
  probe.start(algorithm);
  return std::make_shared<hash_batch>(detail::impl_of(rt), std::move(paths), algorithm, options);
}

}  // namespace detail

boost::asio::awaitable<std::string> hash_file(runtime& rt, std::filesystem::path path,
                                              hash_algorithm algorithm) {
  std::vector<std::filesystem::path> one{path};
  auto results = co_await async_hash_files(rt, std::move(one), algorithm, hash_options{.concurrency = 1},
                                           boost::asio::use_awaitable);
  hash_result& result = results.front();
  if (result.error) throw std::filesystem::filesystem_error("hash_file", path, result.error);
  co_return std::move(result.digest);
}

boost::asio::awaitable<std::string> hash_file(std::filesystem::path path, hash_algorithm algorithm) {
  return hash_file(runtime::global(), std::move(path), algorithm);
}

}  // namespace sky_async
