// The seam between the header-only completion-token front ends and the compiled
// engines in src/: a started operation that can be cancelled and completes once with
// a result, and a move-only completion callback (std::move_only_function is C++23).
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace sky_async::detail {

class operation {
 public:
  virtual ~operation() = default;
  // Thread-safe and idempotent. Stops issuing new work at once; work already in the
  // kernel finishes first, so the completion still arrives, after every file is closed.
  // It may come at any time, even before start(): the operation then completes at once
  // when started, as cancelled.
  virtual void cancel() noexcept = 0;
};

template <typename Signature>
class unique_function;

template <typename R, typename... Args>
class unique_function<R(Args...)> {
 public:
  unique_function() = default;
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, unique_function>>>
  unique_function(F&& f) : impl_(std::make_unique<model<std::decay_t<F>>>(std::forward<F>(f))) {}

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  R operator()(Args... args) { return impl_->call(std::forward<Args>(args)...); }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual R call(Args... args) = 0;
  };
  template <typename F>
  struct model final : concept_t {
    explicit model(F&& f) : fn(std::move(f)) {}
    explicit model(const F& f) : fn(f) {}
    R call(Args... args) override { return fn(std::forward<Args>(args)...); }
    F fn;
  };
  std::unique_ptr<concept_t> impl_;
};

// An operation that completes once with whether it was cancelled, and its result
// (what finished before the cancel, when it was).
template <typename Result>
class basic_operation : public operation {
 public:
  using result_type = Result;
  using completion = unique_function<void(bool cancelled, Result result)>;
  // Must be called once; the completion runs on a runtime worker thread.
  virtual void start(completion done) = 0;
};

}  // namespace sky_async::detail
