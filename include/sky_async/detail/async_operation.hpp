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
// tokens) and returns a std::shared_ptr to a basic_operation<Result>. `split(result)`
// returns the completion's {error, value}: an operation whose result carries an error
// of its own (the end of a stream) reports it there; a cancelled operation completes
// with operation_aborted whatever its result says.
template <typename Value, typename Result, typename MakeOperation, typename Split, typename CompletionToken>
auto async_run_split(MakeOperation make_operation, Split split, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, operation_signature<Value>>(
      [](auto handler, MakeOperation make, Split split) {
        std::shared_ptr<basic_operation<Result>> op = std::move(make)();
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) {
          slot.assign([op](boost::asio::cancellation_type) { op->cancel(); });
        }
        auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
        op->start([handler = std::move(handler), work = std::move(work), slot, split = std::move(split)](
                      bool cancelled, Result result) mutable {
          auto executor = work.get_executor();
          auto [error, value] = split(std::move(result));
          const boost::system::error_code ec =
              cancelled ? boost::system::error_code(boost::asio::error::operation_aborted) : error;
          // The handler runs on its own executor, never on a worker thread, and the
          // slot is cleared there, where cancellation is emitted.
          boost::asio::post(executor,
                            [handler = std::move(handler), slot, ec, value = std::move(value)]() mutable {
                              if (slot.is_connected()) slot.clear();
                              std::move(handler)(ec, std::move(value));
                            });
          // The work is released here, once post() has returned, not by the handler:
          // the handler may run, and the caller's io_context end and be destroyed, while
          // this thread is still inside post() waking it (Asio signals after unlocking).
          work.reset();
        });
      },
      token, std::move(make_operation), std::move(split));
}

// async_run_split for an operation whose result is the value, with no error of its own.
template <typename Result, typename MakeOperation, typename CompletionToken>
auto async_run(MakeOperation make_operation, CompletionToken&& token) {
  return async_run_split<Result, Result>(
      std::move(make_operation),
      [](Result result) { return std::pair<boost::system::error_code, Result>{{}, std::move(result)}; },
      std::forward<CompletionToken>(token));
}

}  // namespace sky_async::detail
