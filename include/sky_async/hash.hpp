// Hashing files: one, or many at once with bounded concurrency and memory.
#pragma once

#include <sky_async/detail/async_operation.hpp>
#include <sky_async/runtime.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sky_async {

enum class hash_algorithm { md5, sha1, sha224, sha256, sha384, sha512 };

// Case-insensitive, as hashlib accepts "SHA256"; std::nullopt for anything else.
std::optional<hash_algorithm> parse_hash_algorithm(std::string_view name) noexcept;
std::string_view to_string(hash_algorithm algorithm) noexcept;
// Bytes of the raw digest (the hex form is twice as long).
std::size_t digest_size(hash_algorithm algorithm) noexcept;

struct hash_options {
  // Files open at once for this call; 0 means the default (64). Memory is about
  // concurrency x 128 KiB whatever the number of files. Out of descriptors (EMFILE), an
  // open waits for one of the library's own to close, and fails with EMFILE once none
  // closed for 2 s (per shortage, not per file).
  std::size_t concurrency = 0;
  // After a failure, skip the files that come after it in input order (they report
  // operation_canceled); the files before it are still hashed, so the first failure
  // in input order is always found, whatever the timing.
  bool stop_on_error = false;
};

struct hash_result {
  std::string digest;  // lower-case hex; empty when error is set
  std::error_code error;
  bool ok() const noexcept { return !error; }
};

// Asio's error_code, so that use_awaitable throws on cancellation.
using hash_signature = detail::operation_signature<std::vector<hash_result>>;

namespace detail {
using hash_operation = basic_operation<std::vector<hash_result>>;
using hash_completion = hash_operation::completion;

// Throws std::invalid_argument when OpenSSL does not provide the algorithm (md5 under a
// FIPS provider), on the caller's thread; never for paths: per-file problems are reported
// in the results.
std::shared_ptr<hash_operation> make_hash_operation(runtime& rt, std::vector<std::filesystem::path> paths,
                                                    hash_algorithm algorithm, hash_options options);
}  // namespace detail

// Hashes every path, concurrently, and completes with one result per path in input
// order: a failure of one file never loses the others' digests. Completion signature:
// void(boost::system::error_code, std::vector<hash_result>); the error is operation_aborted
// when the operation was cancelled through the token's cancellation slot (results
// then hold what finished before). Files are read to EOF, not to st_size, so files
// under /proc hash correctly; FIFOs, sockets and devices fail at once with
// errc::not_a_regular_file instead of blocking. Initiation throws std::invalid_argument
// when OpenSSL does not provide the algorithm (see make_hash_operation).
template <typename CompletionToken>
auto async_hash_files(runtime& rt, std::vector<std::filesystem::path> paths, hash_algorithm algorithm,
                      hash_options options, CompletionToken&& token) {
  return detail::async_run<std::vector<hash_result>>(
      [&rt, paths = std::move(paths), algorithm, options]() mutable {
        return detail::make_hash_operation(rt, std::move(paths), algorithm, options);
      },
      std::forward<CompletionToken>(token));
}

inline boost::asio::awaitable<std::vector<hash_result>> hash_files(
    runtime& rt, std::vector<std::filesystem::path> paths, hash_algorithm algorithm = hash_algorithm::sha256,
    hash_options options = {}) {
  co_return co_await async_hash_files(rt, std::move(paths), algorithm, options, boost::asio::use_awaitable);
}

// On the process-wide runtime.
inline boost::asio::awaitable<std::vector<hash_result>> hash_files(
    std::vector<std::filesystem::path> paths, hash_algorithm algorithm = hash_algorithm::sha256,
    hash_options options = {}) {
  return hash_files(runtime::global(), std::move(paths), algorithm, options);
}

// The lower-case hex digest of one file; throws std::filesystem::filesystem_error
// naming the path on failure.
boost::asio::awaitable<std::string> hash_file(runtime& rt, std::filesystem::path path,
                                              hash_algorithm algorithm = hash_algorithm::sha256);
boost::asio::awaitable<std::string> hash_file(std::filesystem::path path,
                                              hash_algorithm algorithm = hash_algorithm::sha256);

}  // namespace sky_async
