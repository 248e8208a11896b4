// Mutex, RecursiveMutex, MutexLock, CondVar and ThreadRole: std::mutex and
// friends with clang's thread-safety annotations (base/thread_annotations.h),
// so that -Wthread-safety checks GUARDED_BY and REQUIRES against them
// (leveldb's port::Mutex and abseil's Mutex are the models). The standard
// types carry no annotations in libstdc++: shared state takes these instead.
//
//   Mutex mu_;
//   CondVar cv_;
//   bool ready_ GUARDED_BY(mu_) = false;
//
//   void Wait() EXCLUDES(mu_) {
//     MutexLock lock(mu_);
//     while (!ready_) cv_.Wait(mu_);   // checked: ready_ read under mu_
//   }
//
// Thread safety: as the std types they wrap. None is copyable or movable.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "base/thread_annotations.h"

namespace entrysync {

// std::mutex. Not recursive: locking it twice on one thread deadlocks.
class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // True when it took the lock.
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds the lock where it cannot see it (a
  // lambda run while its caller holds it). Checks nothing at run time.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// std::recursive_mutex: the thread holding it may lock it again (for
// callbacks that may re-enter the object that runs them). Prefer Mutex.
// The analysis sees one level: it reports a second MutexLock on it in the
// same function, not a re-entry through a call.
class CAPABILITY("mutex") RecursiveMutex {
 public:
  RecursiveMutex() = default;
  RecursiveMutex(const RecursiveMutex&) = delete;
  RecursiveMutex& operator=(const RecursiveMutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  std::recursive_mutex mu_;
};

// Holds a Mutex (or RecursiveMutex) from construction to destruction, as
// std::lock_guard; Unlock() and Lock() release and retake it within the
// scope, as std::unique_lock (the destructor releases it only when held).
template <typename M>
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(M& mu) ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // REQUIRES: held (by this object).
  void Unlock() RELEASE() {
    held_ = false;
    mu_.Unlock();
  }
  // REQUIRES: released by Unlock().
  void Lock() ACQUIRE() {
    mu_.Lock();
    held_ = true;
  }

 private:
  M& mu_;
  bool held_ = true;
};
template <typename M>
MutexLock(M&) -> MutexLock<M>;

// std::condition_variable over a Mutex. Wait in a loop on the condition, in
// the function that holds the lock, so the analysis checks what it reads:
//   while (!done_) cv_.Wait(mu_);
// (a predicate lambda would be analysed apart from the lock).
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu`, blocks until notified (or woken spuriously), retakes
  // `mu`. REQUIRES: `mu` held, by this thread.
  void Wait(Mutex& mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // As Wait, returning false when `deadline` (steady or system clock)
  // passed first.
  template <typename C, typename D>
  bool WaitUntil(Mutex& mu, const std::chrono::time_point<C, D>& deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    bool notified = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return notified;
  }

  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A capability held by the code that runs on one thread or event loop: it
// locks nothing. State that only that thread touches is GUARDED_BY(role);
// functions that must run there are REQUIRES(role). The analysis cannot see
// which thread runs a handler, so each entry point on the thread (a posted
// handler, a timer or I/O completion) starts with role.AssertHeld().
//
//   ThreadRole io_;                          // "runs on the io thread"
//   std::map<K, V> pending_ GUARDED_BY(io_);
//   void OnRead() REQUIRES(io_);
//   asio::post(exec, [this] { io_.AssertHeld(); OnRead(); });
class CAPABILITY("role") ThreadRole {
 public:
  ThreadRole() = default;
  ThreadRole(const ThreadRole&) = delete;
  ThreadRole& operator=(const ThreadRole&) = delete;

  // Declares that the caller runs on the role's thread. Checks nothing at
  // run time.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}
};

}  // namespace entrysync
