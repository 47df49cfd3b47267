#include <sky_async/mounts.hpp>

#include "digest.hpp"
#include "mounts_walk.hpp"
#include "runtime_impl.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>

namespace sky_async {

namespace {

std::string describe_problems(const std::vector<file_mount_problem>& problems) {
  std::string text =
      std::to_string(problems.size()) +
      (problems.size() == 1 ? " file mount path cannot be hashed" : " file mount paths cannot be hashed");
  if (!problems.empty()) {
    text += " (first: " + problems.front().path.string() + ": " + problems.front().error.message() + ")";
  }
  return text;
}

int hex_value(char c) noexcept { return c <= '9' ? c - '0' : c - 'a' + 10; }

// The raw digest bytes of the library's lower-case hex.
std::string raw_digest(const std::string& hex) {
  std::string raw(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < raw.size(); ++i) {
    raw[i] = static_cast<char>(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
  }
  return raw;
}

}  // namespace

file_mounts_error::file_mounts_error(std::vector<file_mount_problem> problems)
    : std::runtime_error(describe_problems(problems)), problems_(std::move(problems)) {}

namespace detail {

namespace {

// The walk as an operation: it runs on a runtime worker (directory listing blocks),
// stops between directories when cancelled, and holds off runtime shutdown meanwhile.
class mounts_plan_operation final : public basic_operation<mounts_plan>,
                                    public std::enable_shared_from_this<mounts_plan_operation> {
 public:
  mounts_plan_operation(runtime_impl& rt, std::vector<file_mount> mounts)
      : runtime_(rt), mounts_(std::move(mounts)) {}

  void start(completion done) override {
    if (!runtime_.register_operation(shared_from_this())) {
      done(true, {});
      return;
    }
    worker& w = runtime_.worker_at(runtime_.first_worker_for(1));
    boost::asio::post(w.context(), [self = shared_from_this(), done = std::move(done)]() mutable {
      mounts_plan plan = plan_file_mounts(std::move(self->mounts_), self->stop_);
      const bool cancelled = self->stop_.load(std::memory_order_relaxed);
      self->runtime_.unregister_operation(self.get());
      done(cancelled, std::move(plan));
    });
  }

  void cancel() noexcept override { stop_.store(true, std::memory_order_relaxed); }

 private:
  runtime_impl& runtime_;
  std::vector<file_mount> mounts_;
  std::atomic<bool> stop_{false};
};

}  // namespace

}  // namespace detail

// Coroutine parameters are taken by value: a reference could dangle across a co_await.
asio::awaitable<std::string> file_mounts_digest(runtime& rt, std::vector<file_mount> mounts,
                                                // cppcheck-suppress passedByValue
                                                std::string prefix, hash_options options) {
  // Made outside the co_await expression: GCC 12 miscompiles a lambda that moves a
  // coroutine parameter into its captures there (the parameter is destroyed twice).
  auto walk = std::make_shared<detail::mounts_plan_operation>(rt.impl(), std::move(mounts));
  auto make_walk = [walk] { return walk; };
  detail::mounts_plan plan = co_await detail::async_run<detail::mounts_plan>(make_walk, asio::use_awaitable);
  walk.reset();

  std::vector<hash_result> digests;
  if (!plan.files.empty()) {
    options.stop_on_error = false;  // every problem is reported, not only the first
    std::vector<std::filesystem::path> paths = plan.files;
    digests =
        co_await async_hash_files(rt, std::move(paths), hash_algorithm::sha256, options, asio::use_awaitable);
  }
  std::vector<file_mount_problem> problems = std::move(plan.problems);
  for (std::size_t i = 0; i < digests.size(); ++i) {
    if (digests[i].error) problems.push_back({plan.files[i], digests[i].error});
  }
  if (!problems.empty()) {
    std::sort(problems.begin(), problems.end(), [](const file_mount_problem& a, const file_mount_problem& b) {
      return a.path.native() < b.path.native();
    });
    throw file_mounts_error(std::move(problems));
  }

  detail::digest stream;
  stream.start(hash_algorithm::sha256);
  stream.update(prefix.data(), prefix.size());
  for (const auto& piece : plan.pieces) {
    stream.update(piece.bytes.data(), piece.bytes.size());
    if (piece.file != detail::mounts_plan::no_file) {
      const std::string raw = raw_digest(digests[piece.file].digest);
      stream.update(raw.data(), raw.size());
    }
  }
  co_return stream.finish_hex();
}

asio::awaitable<std::string> file_mounts_digest(std::vector<file_mount> mounts, std::string prefix,
                                                hash_options options) {
  return file_mounts_digest(runtime::global(), std::move(mounts), std::move(prefix), options);
}

}  // namespace sky_async
