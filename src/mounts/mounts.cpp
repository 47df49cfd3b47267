#include <sky_async/mounts.hpp>

#include "core/digest.hpp"
#include "core/runtime_impl.hpp"
#include "core/worker_job.hpp"
#include "mounts/mounts_walk.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
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

// The walk as an operation: a worker job (directory listing blocks) that stops between
// directories when cancelled and holds off runtime shutdown meanwhile.
using mounts_plan_operation = worker_job<mounts_plan>;

// The whole digest as one operation: the walk, then the files hashed concurrently, then
// the stream fed in order. Cancelling stops whichever of the two is running; the
// completion comes after it has closed its files.
class mounts_digest final : public mounts_digest_operation,
                            public std::enable_shared_from_this<mounts_digest> {
 public:
  mounts_digest(runtime& rt, std::vector<file_mount> mounts, std::string prefix, hash_options options)
      : runtime_(rt), mounts_(std::move(mounts)), prefix_(std::move(prefix)), options_(options) {
    options_.stop_on_error = false;  // every problem is reported, not only the first
  }

  void start(completion done) override {
    done_ = std::move(done);
    std::shared_ptr<mounts_plan_operation> walk;
    {
      std::lock_guard lock(mutex_);
      walk = walk_ = std::make_shared<mounts_plan_operation>(
          impl_of(runtime_), [mounts = std::move(mounts_)](const std::atomic<bool>& stop) mutable {
            return plan_file_mounts(std::move(mounts), stop);
          });
    }
    walk->start([self = shared_from_this()](bool cancelled, mounts_plan plan) mutable {
      self->walked(cancelled, std::move(plan));
    });
  }

  void cancel() noexcept override {
    std::shared_ptr<operation> running;
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
      running = hashing_ ? std::shared_ptr<operation>(hashing_) : std::shared_ptr<operation>(walk_);
    }
    if (running) running->cancel();
  }

 private:
  void walked(bool cancelled, mounts_plan plan) {
    plan_ = std::move(plan);
    {
      std::lock_guard lock(mutex_);
      walk_.reset();
      cancelled = cancelled || cancelled_;
    }
    if (cancelled) {
      finish(true, {});
      return;
    }
    if (plan_.files.empty()) {
      finish(false, {});
      return;
    }
    // A copy of the paths: the plan's name the problems afterwards.
    auto hashing = make_hash_operation(runtime_, plan_.files, hash_algorithm::sha256, options_);
    // Started, then published to cancel() unless it has completed already; a cancel that
    // came in between is passed on here.
    hashing->start([self = shared_from_this()](bool hash_cancelled, std::vector<hash_result> digests) {
      {
        std::lock_guard lock(self->mutex_);
        self->hashed_ = true;
        self->hashing_.reset();
      }
      self->finish(hash_cancelled, hash_cancelled ? std::vector<hash_result>() : std::move(digests));
    });
    bool cancel_now = false;
    {
      std::lock_guard lock(mutex_);
      if (!hashed_) {
        hashing_ = hashing;
        cancel_now = cancelled_;
      }
    }
    if (cancel_now) hashing->cancel();
  }

  void finish(bool cancelled, std::vector<hash_result> digests) {
    file_mounts_result result;
    if (!cancelled) result = feed(std::move(digests));
    auto done = std::move(done_);
    done(cancelled, std::move(result));
  }

  file_mounts_result feed(std::vector<hash_result> digests) {
    file_mounts_result result;
    result.problems = std::move(plan_.problems);
    for (std::size_t i = 0; i < digests.size(); ++i) {
      if (digests[i].error) result.problems.push_back({plan_.files[i], digests[i].error});
    }
    if (!result.problems.empty()) {
      std::sort(result.problems.begin(), result.problems.end(),
                [](const file_mount_problem& a, const file_mount_problem& b) {
                  return a.path.native() < b.path.native();
                });
      return result;
    }
    digest stream;
    stream.start(hash_algorithm::sha256);
    stream.update(prefix_.data(), prefix_.size());
    for (const auto& piece : plan_.pieces) {
      stream.update(piece.bytes.data(), piece.bytes.size());
      if (piece.file != mounts_plan::no_file) {
        const std::string raw = raw_digest(digests[piece.file].digest);
        stream.update(raw.data(), raw.size());
      }
    }
    result.digest = stream.finish_hex();
    return result;
  }

  runtime& runtime_;
  std::vector<file_mount> mounts_;
  const std::string prefix_;
  hash_options options_;
  completion done_;
  mounts_plan plan_;  // written by the walk's completion, read by the hashing's
  std::mutex mutex_;
  // Guarded by mutex_: what cancel() stops.
  bool cancelled_ = false;
  bool hashed_ = false;  // the hashing has completed
  std::shared_ptr<mounts_plan_operation> walk_;
  std::shared_ptr<hash_operation> hashing_;
};

}  // namespace

std::shared_ptr<mounts_digest_operation> make_mounts_digest_operation(runtime& rt,
                                                                      std::vector<file_mount> mounts,
                                                                      std::string prefix,
                                                                      hash_options options) {
  return std::make_shared<mounts_digest>(rt, std::move(mounts), std::move(prefix), options);
}

}  // namespace detail

// Coroutine parameters are taken by value: a reference could dangle across a co_await.
boost::asio::awaitable<std::string> file_mounts_digest(runtime& rt, std::vector<file_mount> mounts,
                                                       // cppcheck-suppress passedByValue
                                                       std::string prefix, hash_options options) {
  // Made outside the co_await expression: GCC 12 miscompiles a lambda that moves a
  // coroutine parameter into its captures there (the parameter is destroyed twice).
  auto op = detail::make_mounts_digest_operation(rt, std::move(mounts), std::move(prefix), options);
  auto make = [op] { return op; };
  file_mounts_result result =
      co_await detail::async_run<file_mounts_result>(make, boost::asio::use_awaitable);
  op.reset();
  if (!result.ok()) throw file_mounts_error(std::move(result.problems));
  co_return std::move(result.digest);
}

boost::asio::awaitable<std::string> file_mounts_digest(std::vector<file_mount> mounts, std::string prefix,
                                                       hash_options options) {
  return file_mounts_digest(runtime::global(), std::move(mounts), std::move(prefix), options);
}

}  // namespace sky_async
