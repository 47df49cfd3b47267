// OpenSSL EVP digests, fetched once per algorithm and with reusable contexts:
// per-digest setup otherwise costs more than hashing a small file.
#pragma once

#include <sky_async/hash.hpp>

#include <cstddef>
#include <string>

struct evp_md_ctx_st;

namespace sky_async::detail {

class digest {
 public:
  digest();
  ~digest();
  digest(const digest&) = delete;
  digest& operator=(const digest&) = delete;

  void start(hash_algorithm algorithm);
  void update(const void* data, std::size_t size);
  // Lower-case hex of the digest; start() must be called again before the next use.
  std::string finish_hex();

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace sky_async::detail
