#include <sky_async/mounts.hpp>

#include "core/batch_operation.hpp"
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
// the stream fed in order. One piece (the whole) and no load of its own: the walk and the
// hashing are operations of their own that count theirs. Cancelling stops whichever of
// the two is running; the completion comes after it has closed its files.
class mounts_digest final : public batch_operation<mounts_digest, file_mounts_result> {
 public:
  mounts_digest(sky_async::runtime& rt, std::vector<file_mount> mounts, std::string prefix,
                hash_options options)
      : batch_operation(impl_of(rt)),
        public_runtime_(rt),
        mounts_(std::move(mounts)),
        prefix_(std::move(prefix)),
        options_(options) {
    options_.stop_on_error = false;  // every problem is reported, not only the first
  }

  void start(completion done) override {
    if (launch(std::move(done), 0, 1)) {
      run(std::make_shared<mounts_plan_operation>(
              runtime(),
              [mounts = std::move(mounts_)](const std::atomic<bool>& stop) mutable {
                return plan_file_mounts(std::move(mounts), stop);
              }),
          [self = shared_from_this()](bool cancelled, mounts_plan plan) {
            self->walked(cancelled, std::move(plan));
          });
    } else {
      piece_done();  // nothing starts
    }
    started();
  }

 private:
  // Starts `step` as the one stop() cancels. A cancel that came before it was published
  // is passed on here (an operation keeps a cancel that comes before its start).
  template <typename Step, typename Then>
  void run(std::shared_ptr<Step> step, Then then) {
    {
      std::lock_guard lock(mutex_);
      running_ = step;
    }
    if (cancelled()) step->cancel();
    step->start(std::move(then));
  }

  void stop() noexcept override {
    std::shared_ptr<operation> running;
    {
      std::lock_guard lock(mutex_);
      running = running_;
    }
    if (running) running->cancel();
  }

  void walked(bool cancelled, mounts_plan plan) {
    plan_ = std::move(plan);
    if (cancelled || plan_.files.empty()) return step_done(cancelled);
    // A copy of the paths: the plan's name the problems afterwards.
    run(make_hash_operation(public_runtime_, plan_.files, hash_algorithm::sha256, options_),
        [self = shared_from_this()](bool hash_cancelled, std::vector<hash_result> digests) {
          self->digests_ = std::move(digests);
          self->step_done(hash_cancelled);
        });
  }

  // The last step is over (or one was cancelled, which ends the whole).
  void step_done(bool step_cancelled) {
    {
      std::lock_guard lock(mutex_);
      running_.reset();
    }
    // A step cancelled by the runtime's shutdown rather than through this operation
    // cancels the whole, so that the completion says so.
    if (step_cancelled) {
      cancel();
    } else {
      finished_ = true;
    }
    piece_done();
  }

  file_mounts_result take_result() override {
    file_mounts_result result;
    // Cancelled, even after both steps ran to their end: the completion says so, with no
    // digest.
    if (!finished_ || completes_cancelled()) return result;
    result.problems = std::move(plan_.problems);
    for (std::size_t i = 0; i < digests_.size(); ++i) {
      if (digests_[i].error) result.problems.push_back({plan_.files[i], digests_[i].error});
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
        const std::string raw = raw_digest(digests_[piece.file].digest);
        stream.update(raw.data(), raw.size());
      }
    }
    result.digest = stream.finish_hex();
    return result;
  }

  sky_async::runtime& public_runtime_;  // what make_hash_operation takes
  std::vector<file_mount> mounts_;
  const std::string prefix_;
  hash_options options_;
  // Written by the steps' completions, read by take_result() after the last piece.
  mounts_plan plan_;
  std::vector<hash_result> digests_;
  bool finished_ = false;  // both steps ran to the end
  std::mutex mutex_;
  std::shared_ptr<operation> running_;  // guarded by mutex_: the step stop() cancels
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
