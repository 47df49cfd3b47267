#include "core/digest.hpp"

#include <openssl/evp.h>

#include <array>
#include <cctype>
#include <mutex>
#include <new>
#include <stdexcept>

namespace sky_async {
namespace {

struct algorithm_entry {
  hash_algorithm algorithm;
  std::string_view name;  // ours, as hashlib spells it
  const char* openssl_name;
  std::size_t size;
};

constexpr std::array<algorithm_entry, 6> algorithms{{
    {hash_algorithm::md5, "md5", "MD5", 16},
    {hash_algorithm::sha1, "sha1", "SHA1", 20},
    {hash_algorithm::sha224, "sha224", "SHA224", 28},
    {hash_algorithm::sha256, "sha256", "SHA256", 32},
    {hash_algorithm::sha384, "sha384", "SHA384", 48},
    {hash_algorithm::sha512, "sha512", "SHA512", 64},
}};

const algorithm_entry& entry(hash_algorithm algorithm) noexcept {
  return algorithms[static_cast<std::size_t>(algorithm)];
}

const EVP_MD* fetched(hash_algorithm algorithm) {
  static std::array<EVP_MD*, algorithms.size()> table{};
  static std::once_flag once;
  std::call_once(once, [] {
    for (const auto& e : algorithms) {
      table[static_cast<std::size_t>(e.algorithm)] = EVP_MD_fetch(nullptr, e.openssl_name, nullptr);
    }
  });
  const EVP_MD* md = table[static_cast<std::size_t>(algorithm)];
  if (md == nullptr) {
    // FIPS providers refuse md5; say so instead of crashing in EVP_DigestInit.
    throw std::invalid_argument("OpenSSL does not provide " + std::string(entry(algorithm).name));
  }
  return md;
}

}  // namespace

std::optional<hash_algorithm> parse_hash_algorithm(std::string_view name) noexcept {
  for (const auto& e : algorithms) {
    if (e.name.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(name[i])) == e.name[i];
    }
    if (same) return e.algorithm;
  }
  return std::nullopt;
}

std::string_view to_string(hash_algorithm algorithm) noexcept { return entry(algorithm).name; }

std::size_t digest_size(hash_algorithm algorithm) noexcept { return entry(algorithm).size; }

namespace detail {

digest::digest() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) throw std::bad_alloc();
}

digest::~digest() { EVP_MD_CTX_free(ctx_); }

void digest::start(hash_algorithm algorithm) {
  if (EVP_DigestInit_ex2(ctx_, fetched(algorithm), nullptr) != 1) {
    throw std::runtime_error("EVP_DigestInit_ex2 failed");
  }
}

void digest::update(const void* data, std::size_t size) {
  if (size != 0) EVP_DigestUpdate(ctx_, data, size);
}

std::string digest::finish_hex() {
  static constexpr char hex[] = "0123456789abcdef";
  unsigned char raw[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx_, raw, &size);
  std::string out(std::size_t{2} * size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 0xf];
  }
  return out;
}

}  // namespace detail
}  // namespace sky_async
