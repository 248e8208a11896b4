#include "base/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>
#include <system_error>

namespace entrysync {

std::optional<uint64_t> AvailableBytes(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

bool IsDiskFull(const Status& s) {
  if (s.code() != Code::kIOError) return false;
  const std::string& m = s.message();
  // sqlite3_errstr(SQLITE_FULL); es_base does not link SQLite.
  return m.find("database or disk is full") != std::string::npos ||
         m.find(std::generic_category().message(ENOSPC)) != std::string::npos ||
         m.find(std::generic_category().message(EDQUOT)) != std::string::npos;
}

std::string MegaBytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

Status DiskFullError(const std::string& what, const std::string& path, uint64_t needed, const Status& cause) {
  std::string line = what + ": " + kNoSpaceLeft + path + ": ";
  if (needed > 0) line += "needs about " + MegaBytes(needed) + ", ";
  std::optional<uint64_t> avail = AvailableBytes(path);
  line += avail ? MegaBytes(*avail) + " available" : std::string("available space unknown (statvfs failed)");
  return IOError(line + " (" + cause.message() + ")");
}

}  // namespace entrysync
