#include <sky_async/version.hpp>

#include <openssl/crypto.h>
#include <boost/version.hpp>

#include <string>

namespace sky_async {

build_info get_build_info() {
  build_info info;
  info.version = version;
  info.boost = std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000) +
               "." + std::to_string(BOOST_VERSION % 100);
  info.openssl = OpenSSL_version(OPENSSL_VERSION);
  info.liburing = SKY_ASYNC_LIBURING_VERSION;
  return info;
}

}  // namespace sky_async
