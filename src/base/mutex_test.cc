#include "base/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace entrysync {
namespace {

struct Counter {
  Mutex mu;
  CondVar cv;
  int n GUARDED_BY(mu) = 0;
};

// True when `mu` is free: another owner could take it.
template <typename M>
bool Free(M& mu) {
  if (!mu.TryLock()) return false;
  mu.Unlock();
  return true;
}

TEST(MutexTest, MutexLockReleasesAndRetakes) {
  Counter c;
  {
    MutexLock lock(c.mu);
    c.n = 1;
    lock.Unlock();
    EXPECT_TRUE(Free(c.mu));
    lock.Lock();
    c.n = 2;
  }
  EXPECT_TRUE(Free(c.mu));  // released at the end of the scope
  MutexLock lock(c.mu);
  EXPECT_EQ(c.n, 2);
}

TEST(MutexTest, RecursiveMutexMayBeTakenTwice) {
  RecursiveMutex mu;
  MutexLock outer(mu);
  EXPECT_TRUE(Free(mu));  // this thread holds it, and may take it again
}

TEST(MutexTest, CondVarWakesAWaiter) {
  Counter c;
  std::thread t([&c] {
    MutexLock lock(c.mu);
    c.n = 1;
    c.cv.NotifyAll();
  });
  {
    MutexLock lock(c.mu);
    while (c.n == 0) c.cv.Wait(c.mu);
    EXPECT_EQ(c.n, 1);
  }
  t.join();
}

TEST(MutexTest, CondVarWaitUntilTimesOut) {
  Counter c;
  MutexLock lock(c.mu);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  bool notified = true;
  while (notified && std::chrono::steady_clock::now() < deadline) notified = c.cv.WaitUntil(c.mu, deadline);
  EXPECT_FALSE(notified);
  EXPECT_GE(std::chrono::steady_clock::now(), deadline);
}

}  // namespace
}  // namespace entrysync
