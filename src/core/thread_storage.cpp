#include "core/thread_storage.hpp"

#include <exception>

namespace sky_async::detail {

void reserve_thread_storage() noexcept {
  // Reading this flag allocates sky_async's block (it holds every thread_local of the
  // library, Asio's call stacks included) ...
  thread_local bool reserved = false;
  if (reserved) return;
  // ... and this reads libstdc++'s exception globals, which a first throw would allocate.
  // The function is declared pure: its result is kept (volatile) or the call is dropped.
  const volatile int uncaught = std::uncaught_exceptions();
  static_cast<void>(uncaught);
  reserved = true;
}

}  // namespace sky_async::detail
