// The hash_files engine: a batch of files shared by several workers, each worker
// hashing its share with bounded files in flight (io_uring) or one file at a time
// per thread (threads).
#pragma once

#include "core/batch_operation.hpp"
#include "core/digest.hpp"
#include "core/runtime_impl.hpp"

#include <sky_async/hash.hpp>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <list>
#include <memory>
#include <optional>
#include <vector>

namespace sky_async::detail {

// Files one io_uring worker keeps open at once, over all batches.
inline constexpr std::size_t hash_slots_per_worker = 32;
static_assert(2 * hash_slots_per_worker <= ring_entries_per_worker,
              "each slot keeps one entry in the ring at a time; twice that leaves room");
// hash_options::concurrency when 0.
inline constexpr std::size_t default_hash_concurrency = 64;

class hash_batch final : public batch_operation<hash_batch, std::vector<hash_result>> {
 public:
  hash_batch(runtime_impl& rt, std::vector<std::filesystem::path> paths, hash_algorithm algorithm,
             hash_options options);

  // Pieces: one per file. Workers: one per share.
  void start(hash_completion completion) override;

  const std::filesystem::path& path(std::size_t index) const noexcept { return paths_[index]; }
  hash_algorithm algorithm() const noexcept { return algorithm_; }
  bool stopping() const noexcept { return cancelled(); }
  // Whether file `index` is not wanted any more: the batch was cancelled, or with
  // stop_on_error a file before it failed. Files before the first failure are still
  // hashed, so the failure reported first in input order does not depend on timing.
  bool abandoned(std::size_t index) const noexcept {
    return stopping() || index > first_failure_.load(std::memory_order_acquire);
  }
  // No file is left to claim (files may still be in flight).
  bool exhausted() const noexcept;

  // The next file of share `home`, or with `steal` of any share when that one is
  // done; std::nullopt when none is left (to this caller) or the batch stops.
  std::optional<std::size_t> claim(std::size_t home, bool steal) noexcept;
  void finish(std::size_t index, std::error_code error, std::string digest = {});

 private:
  // Files nobody claimed yet finish here, as cancelled, without waiting for a worker to
  // get to them; files in flight notice the flag at their next read.
  void stop() noexcept override;
  std::vector<hash_result> take_result() override { return std::move(results_); }
  std::optional<std::size_t> claim_raw(std::size_t home, bool steal) noexcept;
  // How many files share `s` holds (indices s, s + shares, ...).
  std::size_t share_size(std::size_t s) const noexcept;

  std::vector<std::filesystem::path> paths_;
  hash_algorithm algorithm_;
  hash_options options_;
  std::vector<hash_result> results_;

  // Share i holds the indices i, i + shares, i + 2 * shares, ...: interleaving keeps
  // a few large files spread over the workers instead of all landing on the first.
  struct alignas(64) share {
    std::atomic<std::size_t> taken{0};
  };
  std::unique_ptr<share[]> shares_;
  std::size_t share_count_ = 0;  // 0: an empty batch

  std::atomic<std::size_t> first_failure_{static_cast<std::size_t>(-1)};
};

class hash_slot;

// Per-worker hashing state (worker::local<hash_worker>()); touched only on its worker's thread.
class hash_worker {
 public:
  explicit hash_worker(worker& owner);
  ~hash_worker();

  // Takes part in `batch` with share `home`, keeping at most `quota` of its files open.
  void attach(std::shared_ptr<hash_batch> batch, std::size_t home, std::size_t quota);

  // io_uring: a slot finished its file.
  void slot_done(hash_slot& slot);
  worker& owner() noexcept { return owner_; }

  struct attachment {
    std::shared_ptr<hash_batch> batch;
    std::size_t home;
    std::size_t quota;
    std::size_t active = 0;
  };
  using attachment_ref = std::list<attachment>::iterator;

 private:
  hash_slot* acquire_slot();

  void fill_slots();
  void run_blocking_slice();

  worker& owner_;
  std::list<attachment> attached_;
  // io_uring
  std::vector<std::unique_ptr<hash_slot>> slots_;
  std::vector<hash_slot*> idle_slots_;
  // threads
  bool slice_posted_ = false;
  std::unique_ptr<unsigned char[]> buffer_;
  std::unique_ptr<digest> digest_;

  friend class hash_slot;
};

}  // namespace sky_async::detail
