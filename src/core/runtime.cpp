#include "core/runtime_impl.hpp"

#include "core/thread_storage.hpp"

#include "system/system_info.hpp"

#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <future>
#include <stdexcept>
#include <system_error>

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace sky_async {

std::string_view to_string(io_backend backend) noexcept {
  return backend == io_backend::io_uring ? "io_uring" : "threads";
}

std::optional<io_backend> parse_io_backend(std::string_view name) noexcept {
  if (name == "io_uring") return io_backend::io_uring;
  if (name == "threads") return io_backend::threads;
  return std::nullopt;
}

namespace detail {

worker::worker(unsigned index, io_backend backend)
    : index_(index), backend_(backend), keep_running_(boost::asio::make_work_guard(context_)) {}

// Stopping a thread has no recovery: if it throws, terminating is the right outcome.
// NOLINTNEXTLINE(bugprone-exception-escape)
worker::~worker() {
  stop_and_join();
  if (ring_signal_) ring_signal_->release();  // the ring closes its eventfd itself
}

void worker::start() {
  std::promise<void> ready;
  std::future<void> started = ready.get_future();
  thread_ = std::thread([this, ready = std::move(ready)]() mutable {
    reserve_thread_storage();
    pthread_setname_np(pthread_self(), ("sky-async-" + std::to_string(index_)).substr(0, 15).c_str());
    if (backend_ == io_backend::io_uring) {
      try {
        open_ring();  // here, not on the caller's thread: see uring's constructor
      } catch (...) {
        ready.set_exception(std::current_exception());
        return;
      }
    }
    ready.set_value();
    context_.run();
  });
  try {
    started.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

void worker::open_ring() {
  ring_ = std::make_unique<uring>(ring_entries_per_worker);
  ring_signal_.emplace(context_, ring_->event_fd());
  fd_waits_.emplace(context_);
  wait_for_ring();
}

void worker::stop_and_join() {
  if (!thread_.joinable()) return;
  boost::asio::post(context_, [this] {
    if (ring_signal_) ring_signal_->cancel();
    keep_running_.reset();
  });
  thread_.join();
}

std::size_t next_worker_local_index() noexcept {
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void worker::request_pump() {
  if (in_pump_ || pump_posted_) return;
  pump_posted_ = true;
  boost::asio::post(context_, [this] { pump(); });
}

void worker::pump() {
  pump_posted_ = false;
  in_pump_ = true;
  ring_->notify(false);
  // Page-cache reads complete inside submit(), so a large file could keep this loop
  // busy until its end; yield now and then so other handlers (new batches) get in.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
  for (;;) {
    if (ring_->has_unsubmitted()) ring_->submit();
    const unsigned done = ring_->drain_completions([](std::uint64_t user_data, int result) {
      // io_uring's user_data is a u64 by design; it carries the request's address.
      // NOLINTNEXTLINE(performance-no-int-to-ptr)
      reinterpret_cast<uring_request*>(static_cast<std::uintptr_t>(user_data))->on_complete(result);
    });
    if (done != 0 || ring_->has_unsubmitted()) {
      if (std::chrono::steady_clock::now() < deadline) continue;
      in_pump_ = false;
      request_pump();
      return;
    }
    // Re-enable notifications, then look once more: a completion that landed in
    // between would otherwise wait for the next unrelated wakeup.
    ring_->notify(true);
    if (!ring_->has_completions()) break;
    ring_->notify(false);
  }
  in_pump_ = false;
}

void worker::wait_for_ring() {
  ring_signal_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           [this](const std::error_code& ec) {
                             if (ec) return;  // cancelled at shutdown
                             eventfd_t ignored;
                             ::eventfd_read(ring_->event_fd(), &ignored);
                             pump();
                             wait_for_ring();
                           });
}

namespace {

io_backend requested_backend(const runtime_options& options, bool& forced) {
  if (options.backend) {
    forced = true;
    return *options.backend;
  }
  const char* env = std::getenv("SKY_ASYNC_IO_BACKEND");
  const std::string_view value = env ? env : "";
  if (value.empty() || value == "auto") {
    forced = false;
    return io_backend::io_uring;
  }
  if (auto parsed = parse_io_backend(value)) {
    forced = true;
    return *parsed;
  }
  throw std::invalid_argument("SKY_ASYNC_IO_BACKEND must be auto, io_uring or threads, not '" +
                              std::string(value) + "'");
}

}  // namespace

namespace {

// A runtime that cannot start, with the errno of the cause (EMFILE when a ring, its
// eventfd or the reactor's epoll found no descriptor) and one message that says so.
class start_error final : public std::system_error {
 public:
  start_error(int error, const std::string& why)
      : std::system_error(error, std::system_category()),
        message_("sky_async's runtime could not start: " + why) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

}  // namespace

runtime_impl::runtime_impl(const runtime_options& options) {
  bool forced = false;
  io_backend wanted = requested_backend(options, forced);
  const unsigned cpus = usable_cpu_count();

  if (wanted == io_backend::io_uring) {
    int error = 0;
    std::string reason;
    try {
      start_workers(io_backend::io_uring, options.threads ? options.threads : cpus);
    } catch (const std::system_error& e) {
      // No ring (seccomp, kernel.io_uring_disabled, an old kernel, EMFILE), or no thread.
      workers_.clear();
      reason = e.what();
      error = e.code().value();
    } catch (const boost::system::system_error& e) {
      // Asio's reactor (epoll, its eventfd and timerfd), made for the ring's eventfd.
      workers_.clear();
      reason = e.what();
      error = e.code().value();
    }
    if (!reason.empty()) {
      if (forced) {
        throw start_error(out_of_descriptors(error) ? error : ENOSYS,
                          "io_uring was requested but is unavailable: " + reason);
      }
      // Out of descriptors too: the threads backend needs none of its own.
      backend_reason_ = reason;
      wanted = io_backend::threads;
    }
  } else {
    backend_reason_ = "forced";
  }
  if (wanted == io_backend::threads) {
    try {
      // Each thread blocks on its read, so more threads than cores keep cold reads overlapping.
      start_workers(io_backend::threads, options.threads ? options.threads : std::max(4U, 2 * cpus));
    } catch (const std::system_error& e) {
      throw start_error(e.code().value(), e.what());  // a thread that cannot be created (EAGAIN)
    }
  }
  backend_ = wanted;
}

void runtime_impl::start_workers(io_backend backend, unsigned threads) {
  workers_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    workers_.push_back(std::make_unique<worker>(i, backend));
    workers_.back()->start();
  }
}

// As ~worker: a shutdown that fails cannot be recovered from in a destructor.
// NOLINTNEXTLINE(bugprone-exception-escape)
runtime_impl::~runtime_impl() { shutdown(); }

std::size_t runtime_impl::first_worker_for(std::size_t count) noexcept {
  const std::size_t start = next_worker_.fetch_add(1, std::memory_order_relaxed);
  if (count >= workers_.size()) return start;
  std::size_t best = start;
  unsigned best_load = ~0U;
  for (std::size_t i = 0; i < workers_.size() && best_load != 0; ++i) {
    const unsigned load = worker_at(start + i).load.load(std::memory_order_relaxed);
    if (load < best_load) {
      best_load = load;
      best = start + i;
    }
  }
  return best;
}

bool runtime_impl::register_operation(const std::shared_ptr<operation>& op) {
  std::lock_guard lock(mutex_);
  if (shutting_down_) return false;
  running_.emplace(op.get(), op);
  return true;
}

void runtime_impl::unregister_operation(operation* op) {
  std::lock_guard lock(mutex_);
  running_.erase(op);
  if (running_.empty()) idle_.notify_all();
}

void runtime_impl::shutdown() {
  std::vector<std::weak_ptr<operation>> running;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    shutting_down_ = true;
    for (auto& [raw, op] : running_) running.push_back(op);
  }
  for (auto& weak : running) {
    if (auto op = weak.lock()) op->cancel();
  }
  {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return running_.empty(); });
    stopped_ = true;
  }
  for (auto& w : workers_) w->stop_and_join();
}

}  // namespace detail

runtime::runtime(runtime_options options) : impl_(std::make_unique<detail::runtime_impl>(options)) {}

runtime::~runtime() = default;

io_backend runtime::backend() const noexcept { return impl_->backend(); }

const std::string& runtime::backend_reason() const noexcept { return impl_->backend_reason(); }

unsigned runtime::threads() const noexcept { return impl_->thread_count(); }

namespace {

std::mutex global_mutex;
runtime* global_runtime = nullptr;
pid_t global_pid = 0;

void shut_down_global() {
  std::lock_guard lock(global_mutex);
  if (global_runtime != nullptr && global_pid == ::getpid()) {
    delete global_runtime;
    global_runtime = nullptr;
  }
}

// Another thread may hold the mutex at fork(); the child must not inherit it locked.
// pthread_atfork only stores the handlers (it cannot throw); cert-err58-cpp sees the
// lock() inside them. NOLINTNEXTLINE(cert-err58-cpp)
[[maybe_unused]] const int fork_handlers = ::pthread_atfork(
    [] { global_mutex.lock(); }, [] { global_mutex.unlock(); }, [] { global_mutex.unlock(); });

}  // namespace

runtime& runtime::global() {
  std::lock_guard lock(global_mutex);
  if (global_runtime == nullptr || global_pid != ::getpid()) {
    // A child of fork() has none of the parent's threads: the parent's runtime is
    // abandoned (destroying it would join threads that do not exist here).
    global_runtime = new runtime();
    global_pid = ::getpid();
    // OpenSSL registers its own cleanup at init; ours must run before it, so later.
    OPENSSL_init_crypto(0, nullptr);
    static const bool registered = (std::atexit(shut_down_global), true);
    (void)registered;
  }
  return *global_runtime;
}

namespace detail {
void shutdown_global_runtime() { shut_down_global(); }
}  // namespace detail

}  // namespace sky_async
