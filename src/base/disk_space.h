// Disk space: what a filesystem has left, and errors that say so.
//
// A write that fails because the disk is full (SQLite's SQLITE_FULL,
// ENOSPC, EDQUOT) is reported in one line naming the path, the space the
// operation needs (when known) and what the filesystem has available
// (statvfs), so that a user knows what to free.
//
// Thread safety: free functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "entrysync/status.h"

namespace entrysync {

// Bytes an unprivileged writer may still use on the filesystem holding
// `path` (statvfs: f_bavail * f_frsize); nullopt when statvfs fails.
std::optional<uint64_t> AvailableBytes(const std::string& path);

// True when `s` is an IOError of a full disk or an exceeded quota (SQLite's
// "database or disk is full", strerror(ENOSPC), strerror(EDQUOT)).
bool IsDiskFull(const Status& s);

// "12.3 MB" (decimal megabytes, one decimal; "0.0 MB" for a few bytes).
std::string MegaBytes(uint64_t bytes);

// What every DiskFullError message says (to tell one from another error).
inline constexpr const char* kNoSpaceLeft = "no space left on the filesystem of ";

// The IOError to report for a full disk, one line:
//   "WHAT: no space left on the filesystem of PATH: needs about N MB, M MB
//    available (CAUSE)"
// `needed` 0 = not known (the clause is left out); CAUSE is `cause`'s message.
Status DiskFullError(const std::string& what, const std::string& path, uint64_t needed, const Status& cause);

}  // namespace entrysync
