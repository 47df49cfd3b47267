// The lifecycle every engine operation shares (src/core/batch_operation.hpp): a cancel that comes before
// start() is kept, and the operation completes at once when started, as cancelled, with
// every item cancelled and no descriptor left open. Each operation, on each I/O backend.
#include "test_support.hpp"

#include "core/batch_operation.hpp"
#include "core/runtime_impl.hpp"

#include <sky_async/hash.hpp>
#include <sky_async/mounts.hpp>
#include <sky_async/process.hpp>
#include <sky_async/scan.hpp>
#include <sky_async/system.hpp>
#include <sky_async/tail.hpp>

#include <boost/asio/post.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace sky_async;
using namespace sky_async_test;

class Lifecycle : public on_each_io_backend {
 protected:
  // Cancels `op`, then starts it: the completion must come, cancelled, within 10 s.
  template <typename Result>
  Result cancel_then_start(const std::shared_ptr<detail::basic_operation<Result>>& op) {
    const auto before = open_fds();
    op->cancel();
    op->cancel();  // idempotent
    std::promise<std::pair<bool, Result>> completed;
    auto future = completed.get_future();
    op->start(
        [&completed](bool cancelled, Result result) { completed.set_value({cancelled, std::move(result)}); });
    if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "a cancel before start() never completed";
      std::abort();  // the completion still refers to this frame
    }
    auto [cancelled, result] = future.get();
    EXPECT_TRUE(cancelled);
    EXPECT_EQ(open_fds(), before);
    return std::move(result);
  }

  std::vector<fs::path> some_files(int count) {
    std::vector<fs::path> paths;
    for (int i = 0; i < count; ++i) {
      paths.push_back(dir_.path() / ("f" + std::to_string(i)));
      write_file(paths.back(), make_data(100'000, i));
    }
    return paths;
  }
};

TEST_P(Lifecycle, HashFilesCancelledBeforeStartCancelsEveryFile) {
  const auto results =
      cancel_then_start(detail::make_hash_operation(rt(), some_files(40), hash_algorithm::sha256, {}));
  ASSERT_EQ(results.size(), 40U);
  for (const auto& result : results)
    EXPECT_EQ(result.error, std::errc::operation_canceled) << describe(result.error);
}

TEST_P(Lifecycle, TailFilesCancelledBeforeStartCancelsEveryFile) {
  const auto results = cancel_then_start(detail::make_tail_operation(rt(), some_files(40), 5, {}));
  ASSERT_EQ(results.size(), 40U);
  for (const auto& result : results)
    EXPECT_EQ(result.error, std::errc::operation_canceled) << describe(result.error);
}

TEST_P(Lifecycle, ProbesCancelledBeforeStartReadNoSuchProcess) {
  std::vector<process_query> queries(5000, process_query{::getpid(), std::nullopt});
  const auto results = cancel_then_start(detail::make_probe_operation(rt(), std::move(queries)));
  ASSERT_EQ(results.size(), 5000U);
  for (const auto status : results) EXPECT_EQ(status, process_status::no_such_process);
}

TEST_P(Lifecycle, ScanCancelledBeforeStartListsNothing) {
  some_files(10);
  const auto scan = cancel_then_start(detail::make_scan_operation(rt(), dir_.path(), {}));
  EXPECT_EQ(scan.files, 0U);
}

TEST_P(Lifecycle, WorkerJobCancelledBeforeStartDoesNotRun) {
  cancel_then_start(detail::make_fd_estimate_operation(rt(), dir_.path()));
}

TEST_P(Lifecycle, ExitWaitCancelledBeforeStartSaysNotExited) {
  EXPECT_FALSE(cancel_then_start(detail::make_exit_wait_operation(rt(), ::getpid(), std::nullopt)));
}

TEST_P(Lifecycle, MountsDigestCancelledBeforeStartHasNoDigest) {
  some_files(10);
  const auto result = cancel_then_start(
      detail::make_mounts_digest_operation(rt(), {{"/remote", dir_.path()}}, "prefix", hash_options{}));
  EXPECT_TRUE(result.digest.empty());
}

// One piece on one worker that ends when the test lets it, and a result that says whether
// the completion reports a cancel; optionally a cancel that comes while the result is made.
class gated_operation final : public detail::batch_operation<gated_operation, int> {
 public:
  gated_operation(detail::runtime_impl& rt, std::shared_future<void> gate, bool cancel_while_taking)
      : batch_operation(rt), gate_(std::move(gate)), cancel_while_taking_(cancel_while_taking) {}

  void start(completion done) override {
    if (launch(std::move(done), 1, 1)) {
      boost::asio::post(worker_at(0).context(), [self = shared_from_this()] {
        self->running_.set_value();
        self->gate_.wait();
        self->piece_done();
      });
    } else {
      piece_done();
    }
    started();
  }

  std::future<void> running() { return running_.get_future(); }

 private:
  int take_result() override {
    if (cancel_while_taking_) cancel();
    return completes_cancelled() ? -1 : 42;
  }

  std::shared_future<void> gate_;
  std::promise<void> running_;
  bool cancel_while_taking_;
};

// The completion's flag and the result agree, whenever the cancel comes: before the work
// ends (cancelled, and the result knows it) or while the result is being made (too late:
// neither says cancelled).
TEST_P(Lifecycle, TheResultAgreesWithTheCompletionAboutACancel) {
  for (const bool late : {false, true}) {
    std::promise<void> open;
    auto op = std::make_shared<gated_operation>(detail::impl_of(rt()), open.get_future().share(), late);
    auto running = op->running();
    std::promise<std::pair<bool, int>> completed;
    auto future = completed.get_future();
    op->start([&completed](bool cancelled, int result) { completed.set_value({cancelled, result}); });
    ASSERT_EQ(running.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    if (!late) op->cancel();
    open.set_value();
    ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    const auto [cancelled, result] = future.get();
    EXPECT_EQ(cancelled, !late);
    EXPECT_EQ(result, late ? 42 : -1);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Lifecycle, all_io_backends, io_backend_name);

}  // namespace
