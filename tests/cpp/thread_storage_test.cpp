// detail::per_thread: one object per thread, made on first use and destroyed when the
// thread ends (through a pthread key, not a thread_local: see core/thread_storage.hpp).
#include "core/thread_storage.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace {

using sky_async::detail::per_thread;

std::atomic<int> alive{0};

struct counted {
  counted() { alive.fetch_add(1); }
  ~counted() { alive.fetch_sub(1); }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  int uses = 0;
};

per_thread<counted>& objects() {
  static per_thread<counted> instance;
  return instance;
}

TEST(PerThread, OneObjectPerThreadDestroyedWhenTheThreadEnds) {
  const int before = alive.load();
  std::thread thread([&] {
    counted& first = objects().get();
    ++first.uses;
    EXPECT_EQ(&objects().get(), &first);  // the same object on the same thread
    EXPECT_EQ(first.uses, 1);
    EXPECT_EQ(alive.load(), before + 1);
  });
  thread.join();
  EXPECT_EQ(alive.load(), before);  // freed by the key's destructor at the thread's end

  counted& mine = objects().get();
  EXPECT_EQ(mine.uses, 0);  // a fresh one: not the other thread's
  EXPECT_EQ(alive.load(), before + 1);
}

}  // namespace
