// detail::async_run, the completion-token front end of every asynchronous function,
// driven by a fake operation that completes from its own thread as the runtime's
// workers do: where the handler runs, and that the caller's io_context may be destroyed
// as soon as its run() returns.
#include <sky_async/detail/async_operation.hpp>  // first: the header must compile on its own

#include "test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

namespace {

namespace asio = boost::asio;
using sky_async::detail::basic_operation;

// Completes with `value` from a new thread, at once or once cancelled.
class threaded_operation final : public basic_operation<int> {
 public:
  threaded_operation(int value, bool wait_for_cancel) : value_(value), wait_for_cancel_(wait_for_cancel) {}
  ~threaded_operation() override {
    if (thread_.joinable()) thread_.join();
  }
  threaded_operation(const threaded_operation&) = delete;
  threaded_operation& operator=(const threaded_operation&) = delete;

  void start(completion done) override {
    thread_ = std::thread([this, done = std::move(done)]() mutable {
      while (wait_for_cancel_ && !cancelled_.load()) std::this_thread::yield();
      done(cancelled_.load(), value_);
    });
  }
  void cancel() noexcept override { cancelled_.store(true); }

 private:
  int value_;
  bool wait_for_cancel_;
  std::atomic<bool> cancelled_{false};
  std::thread thread_;
};

template <typename CompletionToken>
auto async_fake(std::shared_ptr<threaded_operation> op, CompletionToken&& token) {
  return sky_async::detail::async_run<int>([op = std::move(op)] { return op; },
                                           std::forward<CompletionToken>(token));
}

TEST(AsyncRun, HandlerRunsOnItsOwnExecutorWithTheResult) {
  asio::io_context ctx;
  auto op = std::make_shared<threaded_operation>(42, false);
  std::optional<int> got;
  std::thread::id ran_on;
  async_fake(op, asio::bind_executor(ctx, [&](boost::system::error_code ec, int value) {
               EXPECT_FALSE(ec) << ec.message();
               got = value;
               ran_on = std::this_thread::get_id();
             }));
  ctx.run();
  EXPECT_EQ(got, 42);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(AsyncRun, CancellationSlotCancelsAndReportsOperationAborted) {
  asio::io_context ctx;
  auto op = std::make_shared<threaded_operation>(7, true);
  asio::cancellation_signal signal;
  std::optional<boost::system::error_code> got;
  async_fake(op, asio::bind_cancellation_slot(
                     signal.slot(), asio::bind_executor(ctx, [&](boost::system::error_code ec, int value) {
                       got = ec;
                       EXPECT_EQ(value, 7);  // what finished before the cancel is still delivered
                     })));
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, asio::error::operation_aborted);
}

// Regression: the work guard that keeps the caller's io_context running used to travel
// inside the posted handler, so run() could return, and the io_context be destroyed,
// while the completing thread was still inside post() (Asio signals its condition
// variable after unlocking). ThreadSanitizer reported it as a race on the condition
// variable; without a sanitizer it is a use after free. Run under scripts/sanitize.
TEST(AsyncRun, CallerContextMayBeDestroyedAsSoonAsRunReturns) {
  for (int i = 0; i < 300; ++i) {
    auto op = std::make_shared<threaded_operation>(i, false);
    int got = -1;
    {
      auto ctx = std::make_unique<asio::io_context>();
      async_fake(op, asio::bind_executor(*ctx, [&](boost::system::error_code, int value) { got = value; }));
      ctx->run();
    }  // destroyed while the operation's thread may still be finishing its post()
    ASSERT_EQ(got, i);
  }
}

TEST(AsyncRun, AwaitableFromAPrivateContext) {
  for (int i = 0; i < 100; ++i) {
    auto op = std::make_shared<threaded_operation>(i, false);
    const int got = sky_async_test::run([](std::shared_ptr<threaded_operation> op) -> asio::awaitable<int> {
      co_return co_await async_fake(std::move(op), asio::use_awaitable);
    }(op));
    ASSERT_EQ(got, i);
  }
}

}  // namespace
