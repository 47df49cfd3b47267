// Included after each public header by its generated self-containment check: what a
// public header must not add to a user's program.
#pragma once

#include <sky_async/runtime.hpp>

// No alias of boost::asio inside sky_async: with one, this declaration of a namespace of
// the same name would not compile (a user's own sky_async::asio would collide with it).
namespace sky_async::asio {}

namespace sky_async_header_checks {

// The runtime's implementation is the library's business, reached through
// detail::runtime_access in src/, not through a public member.
template <class Runtime>
concept exposes_implementation = requires(Runtime& rt) { rt.impl(); };
static_assert(!exposes_implementation<sky_async::runtime>, "runtime::impl() must not be public");

}  // namespace sky_async_header_checks
