// LibraryLock: one process owns a library at a time (as leveldb's LOCK).
//
// The owner (a daemon, an offline snapshot import) holds an exclusive
// flock(2) on LIBRARY/lock, with its pid and what it does written in the
// file. The kernel drops the lock when the process dies, also by kill -9,
// so a stale file never blocks anybody. Other processes may still read the
// library, and short-lived commands (rescan, location add) may write it:
// SQLite serializes writers and commit notices reach the owner.
//
// Thread safety: a LibraryLock is not shared; Holder is thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "entrysync/status.h"

namespace entrysync {

struct LockHolder {
  int pid = 0;
  std::string what;  // "entrysync serve", ...
};

class LibraryLock {
 public:
  // Takes the lock on `dir` for this process, doing `what`. Fails with
  // Aborted "library DIR is in use by pid N (what)" when another process
  // (or another LibraryLock of this one) holds it; IOError when the lock
  // file cannot be opened. Nothing is changed on failure.
  static Result<std::unique_ptr<LibraryLock>> Acquire(const std::string& dir, const std::string& what);
  // Who holds the lock on `dir` now, or nullopt when nobody does.
  static std::optional<LockHolder> Holder(const std::string& dir);

  ~LibraryLock();  // releases
  LibraryLock(const LibraryLock&) = delete;
  LibraryLock& operator=(const LibraryLock&) = delete;

 private:
  explicit LibraryLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace entrysync
