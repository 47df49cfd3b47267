// The completion-token front end shared by every asynchronous function: starts an
// engine operation, connects the token's cancellation slot to it, and delivers the
// result on the handler's own executor.
#pragma once

#include <sky_async/detail/operation.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <memory>
#include <utility>

namespace sky_async::detail {

// Completion signature void(boost::system::error_code, Result): Asio's error_code, so
// that use_awaitable throws on cancellation. The error is operation_aborted when the
// operation was cancelled, and the result then holds what finished before.
template <typename Result>
using operation_signature = void(boost::system::error_code, Result);

// `make_operation()` is called when the operation is initiated (lazily for deferred
// tokens) and returns a std::shared_ptr to a basic_operation<Result>.
template <typename Result, typename MakeOperation, typename CompletionToken>
auto async_run(MakeOperation make_operation, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, operation_signature<Result>>(
      [](auto handler, MakeOperation make) {
        std::shared_ptr<basic_operation<Result>> op = std::move(make)();
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) {
          slot.assign([op](boost::asio::cancellation_type) { op->cancel(); });
        }
        auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
        op->start([handler = std::move(handler), work = std::move(work), slot](bool cancelled,
                                                                               Result result) mutable {
          auto executor = work.get_executor();
          const boost::system::error_code ec =
              cancelled ? boost::system::error_code(boost::asio::error::operation_aborted)
                        : boost::system::error_code();
          // The handler runs on its own executor, never on a worker thread, and the
          // slot is cleared there, where cancellation is emitted.
          boost::asio::post(executor,
                            [handler = std::move(handler), slot, ec, result = std::move(result)]() mutable {
                              if (slot.is_connected()) slot.clear();
                              std::move(handler)(ec, std::move(result));
                            });
          // The work is released here, once post() has returned, not by the handler:
          // the handler may run, and the caller's io_context end and be destroyed, while
          // this thread is still inside post() waking it (Asio signals after unlocking).
          work.reset();
        });
      },
      token, std::move(make_operation));
}

}  // namespace sky_async::detail
