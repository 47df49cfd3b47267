#include "hash/hash_engine.hpp"

#include "core/fd_budget.hpp"
#include "core/file_reader.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <utility>

#include <sys/stat.h>
#include <unistd.h>

namespace sky_async::detail {

namespace {

const std::error_code canceled = std::make_error_code(std::errc::operation_canceled);

// A worker with fewer files of a batch in flight than this helps other workers' shares.
constexpr std::size_t steal_below = 2;

std::error_code system_error_code(int value) noexcept { return {value, std::system_category()}; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// hash_batch

hash_batch::hash_batch(runtime_impl& rt, std::vector<std::filesystem::path> paths, hash_algorithm algorithm,
                       hash_options options)
    : batch_operation(rt),
      paths_(std::move(paths)),
      algorithm_(algorithm),
      options_(options),
      results_(paths_.size()) {}

void hash_batch::start(hash_completion completion) {
  const std::size_t count = paths_.size();
  const std::size_t concurrency = options_.concurrency ? options_.concurrency : default_hash_concurrency;
  if (count != 0) {
    // Before the batch is registered: from then on shutdown may cancel it, and a cancel
    // finishes the unclaimed files through the shares.
    share_count_ = std::min({static_cast<std::size_t>(runtime().thread_count()), count, concurrency});
    shares_ = std::make_unique<share[]>(share_count_);
  }
  if (launch(std::move(completion), share_count_, count)) {
    for (std::size_t home = 0; home < share_count_; ++home) {
      // The quotas add up to exactly `concurrency` files open at once.
      const std::size_t quota = concurrency / share_count_ + (home < concurrency % share_count_ ? 1 : 0);
      worker& w = worker_at(home);
      boost::asio::post(w.context(), [self = shared_from_this(), &w, home, quota]() mutable {
        w.local<hash_worker>().attach(std::move(self), home, quota);
      });
    }
  }
  started();
}

void hash_batch::stop() noexcept {
  while (auto index = claim_raw(0, true)) finish(*index, canceled);
}

std::optional<std::size_t> hash_batch::claim_raw(std::size_t home, bool steal) noexcept {
  if (!shares_) return std::nullopt;  // an empty batch
  const std::size_t shares = share_count_;
  for (std::size_t k = 0; k < (steal ? shares : 1); ++k) {
    const std::size_t s = (home + k) % shares;
    const std::size_t in_share = share_size(s);
    auto& taken = shares_[s].taken;
    if (taken.load(std::memory_order_relaxed) >= in_share) continue;
    const std::size_t t = taken.fetch_add(1, std::memory_order_relaxed);
    if (t < in_share) return s + t * shares;
  }
  return std::nullopt;
}

std::optional<std::size_t> hash_batch::claim(std::size_t home, bool steal) noexcept {
  for (;;) {
    if (stopping()) return std::nullopt;
    auto index = claim_raw(home, steal);
    if (!index || !abandoned(*index)) return index;
    finish(*index, canceled);
  }
}

std::size_t hash_batch::share_size(std::size_t s) const noexcept {
  const std::size_t count = paths_.size();
  return count > s ? (count - s + share_count_ - 1) / share_count_ : 0;
}

bool hash_batch::exhausted() const noexcept {
  if (stopping()) return true;
  for (std::size_t s = 0; s < share_count_; ++s) {
    if (shares_[s].taken.load(std::memory_order_relaxed) < share_size(s)) return false;
  }
  return true;
}

void hash_batch::finish(std::size_t index, std::error_code error, std::string digest) {
  results_[index].error = error;
  results_[index].digest = std::move(digest);
  if (error && error != canceled && options_.stop_on_error) {
    std::size_t first = first_failure_.load(std::memory_order_relaxed);
    while (index < first && !first_failure_.compare_exchange_weak(first, index, std::memory_order_acq_rel)) {
    }
  }
  piece_done();
}

// ---------------------------------------------------------------------------------------------
// hash_slot: one file at a time through the ring: openat -> fstat -> read... -> close.

class hash_slot final : public uring_request {
 public:
  explicit hash_slot(hash_worker& owner) : owner_(owner), buffer_(new unsigned char[chunk_size]) {}

  void begin(hash_worker::attachment_ref attachment, std::size_t index) {
    attachment_ = attachment;
    batch_ = attachment->batch.get();
    index_ = index;
    retry_ = {};
    open();
  }

  hash_worker::attachment_ref attachment() const noexcept { return attachment_; }

  void on_complete(int result) override {
    switch (state_) {
      case state::opening:
        return opened(result);
      case state::reading:
        return read_done(result);
      case state::closing:
        fd_ = -1;
        fd_released();
        return finish(error_, std::move(hex_));
      case state::idle:
        return;
    }
  }

 private:
  enum class state { idle, opening, reading, closing };

  // (Again, after waiting for a file descriptor.)
  void open() {
    if (batch_->abandoned(index_)) return finish(canceled, {});
    state_ = state::opening;
    retry_.attempting();
    if (io_uring_sqe* sqe = next_sqe()) {
      io_uring_prep_openat(sqe, AT_FDCWD, batch_->path(index_).c_str(), read_open_flags, 0);
    }
  }

  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = owner_.owner().ring()->next_sqe();
    if (sqe == nullptr) {
      // Cannot happen with one operation per slot in a ring twice that size; fail the
      // file rather than lose it.
      if (fd_ >= 0) {
        ::close(fd_);
        fd_released();
      }
      fd_ = -1;
      finish(std::make_error_code(std::errc::resource_unavailable_try_again), {});
      return nullptr;
    }
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(static_cast<uring_request*>(this)));
    return sqe;
  }

  void opened(int result) {
    if (result < 0 && retry_.should_retry(-result)) {
      // Out of descriptors: open again once one of ours is released, without blocking
      // this thread (it drives the ring that completes our closes).
      owner_.owner().fd_waits()->wait(retry_, [this] {
        open();
        owner_.owner().request_pump();
      });
      return;
    }
    if (result < 0) return finish(open_error(batch_->path(index_).c_str(), -result), {});
    fd_ = result;
    struct stat st{};
    if (::fstat(fd_, &st) != 0) return close_with(system_error_code(errno));
    if (auto ec = check_regular_file(st)) return close_with(ec);
    size_ = static_cast<std::uint64_t>(st.st_size);
    offset_ = 0;
    digest_.start(batch_->algorithm());
    read_next();
  }

  void read_next() {
    state_ = state::reading;
    if (io_uring_sqe* sqe = next_sqe()) {
      io_uring_prep_read(sqe, fd_, buffer_.get(), chunk_size, offset_);
    }
  }

  void read_done(int result) {
    if (result == -EINTR || result == -EAGAIN) return read_next();
    if (result < 0) return close_with(system_error_code(-result));
    if (batch_->abandoned(index_)) return close_with(canceled);
    const auto got = static_cast<std::size_t>(result);
    digest_.update(buffer_.get(), got);
    offset_ += got;
    if (!reached_eof(got, chunk_size, offset_, size_)) return read_next();
    hex_ = digest_.finish_hex();
    close_with({});
  }

  void close_with(std::error_code error) {
    error_ = error;
    state_ = state::closing;
    if (io_uring_sqe* sqe = next_sqe()) prep_close(sqe, fd_);
  }

  void finish(std::error_code error, std::string hex) {
    state_ = state::idle;
    error_.clear();
    hash_batch* batch = batch_;
    const std::size_t index = index_;
    batch_ = nullptr;
    // The attachment keeps the batch alive through its completion.
    batch->finish(index, error, std::move(hex));
    owner_.slot_done(*this);
  }

  hash_worker& owner_;
  std::unique_ptr<unsigned char[]> buffer_;
  digest digest_;
  hash_worker::attachment_ref attachment_{};
  hash_batch* batch_ = nullptr;
  std::size_t index_ = 0;
  fd_retry retry_;
  state state_ = state::idle;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t offset_ = 0;
  std::error_code error_;
  std::string hex_;
};

// ---------------------------------------------------------------------------------------------
// hash_worker

hash_worker::hash_worker(worker& owner) : owner_(owner) {}

hash_worker::~hash_worker() = default;

void hash_worker::attach(std::shared_ptr<hash_batch> batch, std::size_t home, std::size_t quota) {
  attached_.push_back(attachment{std::move(batch), home, quota});
  if (owner_.ring() != nullptr) {
    fill_slots();
  } else if (!slice_posted_) {
    slice_posted_ = true;
    boost::asio::post(owner_.context(), [this] { run_blocking_slice(); });
  }
}

hash_slot* hash_worker::acquire_slot() {
  if (idle_slots_.empty()) {
    if (slots_.size() >= hash_slots_per_worker) return nullptr;
    slots_.push_back(std::make_unique<hash_slot>(*this));
    return slots_.back().get();
  }
  hash_slot* slot = idle_slots_.back();
  idle_slots_.pop_back();
  return slot;
}

void hash_worker::fill_slots() {
  // Round-robin over the attached batches so that one large batch does not starve
  // the single-file calls queued behind it.
  auto it = attached_.begin();
  std::size_t fruitless = 0;
  while (!attached_.empty() && fruitless < attached_.size()) {
    if (it == attached_.end()) it = attached_.begin();
    attachment& a = *it;
    if (a.active >= a.quota) {
      ++fruitless;
      ++it;
      continue;
    }
    if (a.batch->exhausted()) {
      if (a.active == 0) {
        it = attached_.erase(it);
      } else {
        ++fruitless;
        ++it;
      }
      continue;
    }
    hash_slot* slot = acquire_slot();
    if (slot == nullptr) break;
    // Another worker's share is taken only when this one is nearly idle for the
    // batch: taking it eagerly would pile every large file onto the first worker.
    auto index = a.batch->claim(a.home, a.active < steal_below);
    if (!index) {
      idle_slots_.push_back(slot);
      ++fruitless;
      ++it;
      continue;
    }
    fruitless = 0;
    ++a.active;
    slot->begin(it, *index);
    ++it;
  }
  owner_.request_pump();
}

void hash_worker::slot_done(hash_slot& slot) {
  auto a = slot.attachment();
  --a->active;
  idle_slots_.push_back(&slot);
  if (a->active == 0 && a->batch->exhausted()) attached_.erase(a);
  fill_slots();
}

void hash_worker::run_blocking_slice() {
  slice_posted_ = false;
  if (!buffer_) {
    buffer_.reset(new unsigned char[chunk_size]);
    digest_ = std::make_unique<digest>();
  }
  // Yield the thread now and then so that batches attached later get their turn.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
  while (!attached_.empty()) {
    auto it = attached_.begin();
    hash_batch& batch = *it->batch;
    auto index = batch.claim(it->home, true);
    if (!index) {
      attached_.erase(it);
      continue;
    }
    std::string hex;
    const auto ec = hash_path_blocking(
        batch.path(*index).c_str(), batch.algorithm(), *digest_, buffer_.get(),
        [&batch, i = *index] { return batch.abandoned(i); }, hex);
    batch.finish(*index, ec, std::move(hex));
    attached_.splice(attached_.end(), attached_, it);
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  if (!attached_.empty() && !slice_posted_) {
    slice_posted_ = true;
    boost::asio::post(owner_.context(), [this] { run_blocking_slice(); });
  }
}

}  // namespace sky_async::detail
