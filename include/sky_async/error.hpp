// Errors sky_async reports that have no errno of their own.
#pragma once

#include <system_error>

namespace sky_async {

enum class errc {
  // The path names a FIFO, socket or device: reading it could block forever or never end.
  not_a_regular_file = 1,
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace sky_async

template <>
struct std::is_error_code_enum<sky_async::errc> : std::true_type {};
