// The lifecycle every engine operation shares (src/core/batch_operation.hpp): a cancel that comes before
// start() is kept, and the operation completes at once when started, as cancelled, with
// every item cancelled and no descriptor left open. Each operation, on each I/O backend.
#include "test_support.hpp"

#include <sky_async/hash.hpp>
#include <sky_async/mounts.hpp>
#include <sky_async/process.hpp>
#include <sky_async/scan.hpp>
#include <sky_async/system.hpp>
#include <sky_async/tail.hpp>

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

INSTANTIATE_TEST_SUITE_P(Backends, Lifecycle, all_io_backends, io_backend_name);

}  // namespace
