// Per-thread storage that a thread allocates before it can run out of memory.
//
// The Python extension is loaded with dlopen, so glibc allocates the thread-local
// blocks of sky_async and of libstdc++ lazily, on a thread's first access to each, and
// ends the process ("cannot allocate memory for thread-local data: ABORT", exit 127)
// when that allocation fails. libstdc++'s block is first touched by a thread's first
// throw, and once memory is exhausted that throw is std::bad_alloc: the process would
// die exactly where it should raise MemoryError. Registering the destructor of a
// thread_local object allocates too, and glibc aborts when that fails. Hence:
// - every thread that runs sky_async code calls reserve_thread_storage() when it starts
//   (the workers) or enters (the Python threads: import, a loop's completion queue, a
//   blocking call, a call that releases the GIL), before it can meet an exhausted heap;
// - sky_async keeps no thread_local with a destructor: per_thread<T> holds a thread's
//   object through a pthread key, whose value needs no allocation and whose destructor
//   frees the object when the thread ends.
// A program linked with sky_async (not dlopen'ed) has both blocks allocated with each
// thread, so none of this costs it more than a branch.
#pragma once

#include <memory>
#include <new>

#include <pthread.h>

namespace sky_async::detail {

// Allocates this thread's thread-local blocks of sky_async and libstdc++ now, once.
void reserve_thread_storage() noexcept;

// One T per thread, made on the thread's first get() and destroyed when it ends.
// Instances live as long as the process (static storage): the key is never deleted, as a
// thread still running could use it.
template <typename T>
class per_thread {
 public:
  per_thread() {
    if (::pthread_key_create(&key_, [](void* value) { delete static_cast<T*>(value); }) != 0) {
      throw std::bad_alloc();  // EAGAIN (no key left) or ENOMEM
    }
  }
  per_thread(const per_thread&) = delete;
  per_thread& operator=(const per_thread&) = delete;

  // Throws std::bad_alloc when the object or the key's slot cannot be allocated.
  T& get() {
    if (auto* value = static_cast<T*>(::pthread_getspecific(key_))) return *value;
    auto made = std::make_unique<T>();
    if (::pthread_setspecific(key_, made.get()) != 0) throw std::bad_alloc();  // only ENOMEM
    return *made.release();
  }

 private:
  pthread_key_t key_{};
};

}  // namespace sky_async::detail
