// ExportSnapshot: one owner's rows of a library written to a new snapshot
// file, atomically.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "snapshot/snapshot.h"
#include "snapshot/snapshot_shared.h"
#include "snapshot/snapshot_sum.h"

// Generated from src/snapshot/schema/*.sql (cmake/embed.cmake).
extern const char* const es_snapshot_schema_names[];
extern const char* const es_snapshot_schema_texts[];
extern const int es_snapshot_schema_count;

namespace entrysync {
namespace {

namespace fs = std::filesystem;
using namespace snapshot_internal;
using store::Db;
using store::Stmt;

// Removes a file on destruction unless released.
class RemoveOnExit {
 public:
  explicit RemoveOnExit(std::string path) : path_(std::move(path)) {}
  ~RemoveOnExit() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove(path_, ec);
    }
  }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

// A deferred transaction (read on main, write on the attached file);
// rolled back on destruction unless committed.
class DeferredTxn {
 public:
  explicit DeferredTxn(Db& db) : db_(db) {}
  ~DeferredTxn() {
    if (open_) (void)db_.Exec("ROLLBACK");
  }
  Status Begin() {
    ES_RETURN_IF_ERROR(db_.Exec("BEGIN"));
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    ES_RETURN_IF_ERROR(db_.Exec("COMMIT"));
    open_ = false;
    return Status::Ok();
  }

 private:
  Db& db_;
  bool open_ = false;
};

// Creates an empty snapshot file at `path`: page size, application id,
// format version and tables, on a connection of its own.
Status CreateSnapshotFile(const std::string& path) {
  ES_ASSIGN_OR_RETURN(Db db, Db::Open(path, /*create=*/true));
  ES_RETURN_IF_ERROR(
      db.Exec("PRAGMA page_size = " + std::to_string(kPageSize) +
              "; PRAGMA journal_mode = OFF; PRAGMA application_id = " + std::to_string(kApplicationId) +
              "; PRAGMA user_version = " + std::to_string(kSnapshotFormatVersion) + ";"));
  return db.Exec(es_snapshot_schema_texts[kSnapshotFormatVersion - 1]);
}

Status SyncDir(const std::string& file) {
  std::string dir = fs::path(file).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return IOError("open folder " + dir + ": " + std::generic_category().message(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IOError("sync folder " + dir + ": " + std::generic_category().message(errno));
  return Status::Ok();
}

// The metadata that describes `owner` as `lib` holds it: who, which epoch,
// up to which seq. NotFound when `owner` is unknown or a remote owner has
// no watermark. REQUIRES: inside the export's read transaction.
Result<Meta> DescribeOwner(Library& lib, DeviceRowId owner) {
  Meta m;
  ES_ASSIGN_OR_RETURN(DeviceInfo dev, lib.GetDevice(owner));
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib.LocalDevice());
  m.library_id = lib.library_id();
  m.owner = dev.uuid;
  m.owner_name = dev.name;
  m.exported_by = me.uuid;
  if (dev.is_local) {
    m.epoch = dev.epoch;
    m.max_seq = dev.max_seq;
  } else {
    ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(owner));
    if (!wm) return NotFound("nothing of " + dev.name + " to export: no watermark (never synced)");
    m.epoch = wm->epoch;
    m.max_seq = wm->seq;
  }
  // The owner's signature of exactly these rows, when this library holds it.
  ES_ASSIGN_OR_RETURN(auto cp, lib.GetCheckpoint(owner, m.epoch));
  if (cp && cp->seq == m.max_seq && cp->owner == m.owner) m.checkpoint = *cp;
  return m;
}

// Copies the rows of `owner` with seq <= m->max_seq from main into the
// attached file, and the newer locations they refer to; sets m->entries and
// m->locations.
Status CopyRows(Db& db, DeviceRowId owner, Meta* m) {
  const std::string s = kSchema;
  const int64_t o = owner.value(), mx = m->max_seq.value();
  ES_RETURN_IF_ERROR(Exec(db,
                          "INSERT INTO " + s +
                              ".location(id, uuid, root_path, name, seq, deleted)"
                              " SELECT id, uuid, root_path, name, seq, deleted FROM main.location"
                              " WHERE owner = ?1 AND seq <= ?2 ORDER BY id",
                          {o, mx}));
  ES_RETURN_IF_ERROR(Exec(db,
                          "INSERT INTO " + s +
                              ".entry(seq, uuid, location, parent, name,"
                              " extension, kind, size, inode, created_ns, modified_ns, accessed_ns,"
                              " content_hash, deleted)"
                              " SELECT seq, uuid, location, parent, name, extension, kind, size, inode,"
                              " created_ns, modified_ns, accessed_ns, content_hash, deleted"
                              " FROM main.entry WHERE owner = ?1 AND seq <= ?2 ORDER BY seq",
                          {o, mx}));
  m->entries = db.Changes();
  // A replica may hold a location changed after its watermark whose older
  // entries are exported: include it as stored so no entry is orphaned.
  ES_ASSIGN_OR_RETURN(int64_t newer, QueryInt(db,
                                              "SELECT count(*) FROM main.location WHERE owner = ?1"
                                              " AND seq > " +
                                                  std::to_string(mx),
                                              o));
  if (newer > 0) {
    ES_RETURN_IF_ERROR(Exec(db,
                            "INSERT INTO " + s +
                                ".location(id, uuid, root_path, name, seq, deleted)"
                                " SELECT id, uuid, root_path, name, seq, deleted FROM main.location"
                                " WHERE owner = ?1 AND seq > ?2 AND id IN (SELECT DISTINCT location FROM " +
                                s + ".entry) ORDER BY id",
                            {o, mx}));
  }
  ES_ASSIGN_OR_RETURN(m->locations, QueryInt(db, "SELECT count(*) FROM " + s + ".location"));
  return Status::Ok();
}

// Writes `m` to the attached file's meta table, content checksum last (it
// covers the other meta rows); sets m->content_sum.
Status WriteMeta(Db& db, Meta* m) {
  const std::string s = kSchema;
  ES_ASSIGN_OR_RETURN(Stmt meta, db.Prepare("INSERT INTO " + s + ".meta(key, value) VALUES(?, ?)"));
  auto put_int = [&](const char* k, int64_t v) {
    meta.Bind(1, std::string_view(k)).Bind(2, v);
    return meta.Run();
  };
  auto put_uuid = [&](const char* k, const Uuid& u) {
    meta.Bind(1, std::string_view(k)).Bind(2, u);
    return meta.Run();
  };
  ES_RETURN_IF_ERROR(put_int("format_version", kSnapshotFormatVersion));
  ES_RETURN_IF_ERROR(put_uuid("library_id", m->library_id));
  ES_RETURN_IF_ERROR(put_uuid("owner_uuid", m->owner));
  meta.Bind(1, std::string_view("owner_name")).Bind(2, std::string_view(m->owner_name));
  ES_RETURN_IF_ERROR(meta.Run());
  ES_RETURN_IF_ERROR(put_int("epoch", static_cast<int64_t>(m->epoch.value())));
  ES_RETURN_IF_ERROR(put_int("max_seq", m->max_seq.value()));
  ES_RETURN_IF_ERROR(put_int("entries", m->entries));
  ES_RETURN_IF_ERROR(put_int("locations", m->locations));
  ES_RETURN_IF_ERROR(put_uuid("exported_by", m->exported_by));
  ES_RETURN_IF_ERROR(put_int("created_ms", NowMs()));
  if (m->checkpoint) {
    auto put_blob = [&](const char* k, const auto& bytes) {
      meta.Bind(1, std::string_view(k)).BindBlob(2, bytes.data(), bytes.size());
      return meta.Run();
    };
    ES_RETURN_IF_ERROR(put_blob("checkpoint_digest", m->checkpoint->digest));
    ES_RETURN_IF_ERROR(put_blob("checkpoint_public_key", m->checkpoint->public_key));
    ES_RETURN_IF_ERROR(put_blob("checkpoint_signature", m->checkpoint->signature));
  }
  ES_ASSIGN_OR_RETURN(m->content_sum, ContentSum(db, s));
  return put_int("content_sum", static_cast<int64_t>(m->content_sum));
}

// Fills the empty snapshot file at `tmp` with the rows of `owner` and their
// metadata, all read inside one read transaction of `lib`. Returns the
// metadata written. The file is detached again when it returns.
Result<Meta> FillSnapshotFile(Library& lib, DeviceRowId owner, const std::string& tmp) {
  Db& db = lib.db();
  const std::string s = kSchema;
  Attachment att(db);
  ES_RETURN_IF_ERROR(att.Attach(tmp));
  ES_RETURN_IF_ERROR(db.Exec("PRAGMA " + s + ".journal_mode = OFF; PRAGMA " + s +
                             ".synchronous = OFF; PRAGMA " + s + ".cache_size = -32768;"));
  ES_RETURN_IF_ERROR(RegisterSum(db.raw()));
  DeferredTxn txn(db);
  ES_RETURN_IF_ERROR(txn.Begin());
  // Everything below reads one consistent state of main.
  ES_ASSIGN_OR_RETURN(Meta m, DescribeOwner(lib, owner));
  ES_RETURN_IF_ERROR(CopyRows(db, owner, &m));
  ES_RETURN_IF_ERROR(WriteMeta(db, &m));
  ES_RETURN_IF_ERROR(txn.Commit().Wrap("write snapshot " + tmp));
  return m;
}

}  // namespace

Result<SnapshotInfo> ExportSnapshot(Library& lib, DeviceRowId owner, const std::string& path) {
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  RemoveOnExit cleanup(tmp);
  ES_RETURN_IF_ERROR(CreateSnapshotFile(tmp).Wrap("create snapshot " + tmp));
  ES_ASSIGN_OR_RETURN(Meta m, FillSnapshotFile(lib, owner, tmp));

  ES_ASSIGN_OR_RETURN(FileScan scan, ScanFile(tmp, /*fsync_it=*/true));
  fs::rename(tmp, path, ec);
  if (ec) return IOError("rename " + tmp + " to " + path + ": " + ec.message());
  cleanup.Release();
  ES_RETURN_IF_ERROR(SyncDir(path));

  return InfoOf(m, scan);
}

}  // namespace entrysync
