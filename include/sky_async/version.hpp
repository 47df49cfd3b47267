// Version of this library and of what it was built with.
#pragma once

#include <string>

namespace sky_async {

inline constexpr const char* version = "0.1.0";

struct build_info {
  std::string version;
  std::string boost;     // e.g. "1.81.0"
  std::string openssl;   // the runtime library's version text
  std::string liburing;  // e.g. "2.3"
};

build_info get_build_info();

}  // namespace sky_async
