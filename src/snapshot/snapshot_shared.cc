#include "snapshot/snapshot_shared.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <system_error>

#include "base/hash.h"

namespace entrysync::snapshot_internal {

using store::Stmt;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Attachment::~Attachment() {
  if (attached_) (void)db_.Exec(std::string("DETACH DATABASE ") + kSchema);
}

Status Attachment::Attach(const std::string& path) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(std::string("ATTACH DATABASE ? AS ") + kSchema));
  st.Bind(1, path);
  ES_RETURN_IF_ERROR(st.Run().Wrap("attach snapshot " + path));
  attached_ = true;
  return Status::Ok();
}

Result<int64_t> QueryInt(store::Db& db, const std::string& sql, std::optional<int64_t> arg) {
  ES_ASSIGN_OR_RETURN(Stmt st, db.Prepare(sql));
  if (arg) st.Bind(1, *arg);
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Internal("no row from: " + sql);
  return st.Int(0);
}

Status Exec(store::Db& db, const std::string& sql, std::initializer_list<int64_t> args) {
  ES_ASSIGN_OR_RETURN(Stmt st, db.Prepare(sql));
  int i = 1;
  for (int64_t a : args) st.Bind(i++, a);
  return st.Run();
}

Result<FileScan> ScanFile(const std::string& path, bool fsync_it) {
  int fd = ::open(path.c_str(), fsync_it ? O_RDWR : O_RDONLY);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("snapshot " + path + ": no such file");
    return IOError("open snapshot " + path + ": " + std::generic_category().message(errno));
  }
  FileScan out;
  Sha256 sha;
  // Not zeroed: read() fills what is used (a scan of a small file would
  // otherwise spend most of its time clearing the buffer).
  constexpr size_t kBufBytes = 1 << 20;
  auto buf = std::make_unique_for_overwrite<char[]>(kBufBytes);
  for (;;) {
    ssize_t n = ::read(fd, buf.get(), kBufBytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return IOError("read snapshot " + path + ": " + std::generic_category().message(e));
    }
    if (n == 0) break;
    if (out.size < sizeof(out.header)) {
      size_t k = std::min<size_t>(sizeof(out.header) - out.size, static_cast<size_t>(n));
      std::memcpy(out.header + out.size, buf.get(), k);
    }
    sha.Update(buf.get(), static_cast<size_t>(n));
    out.size += static_cast<uint64_t>(n);
  }
  if (fsync_it && ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return IOError("sync snapshot " + path + ": " + std::generic_category().message(e));
  }
  ::close(fd);
  out.sha256 = sha.FinishHex();
  return out;
}

SnapshotInfo InfoOf(const Meta& m, const FileScan& scan) {
  SnapshotInfo info;
  info.owner = m.owner;
  info.owner_name = m.owner_name;
  info.epoch = m.epoch;
  info.max_seq = m.max_seq;
  info.entries = static_cast<uint64_t>(m.entries);
  info.locations = static_cast<uint64_t>(m.locations);
  info.size_bytes = scan.size;
  info.sha256 = scan.sha256;
  info.library_id = m.library_id;
  info.exported_by = m.exported_by;
  info.checkpoint = m.checkpoint;
  return info;
}

}  // namespace entrysync::snapshot_internal
