// ImportSnapshot: a checked snapshot file replaces what a library holds of
// its owner, in one transaction.
#include <sqlite3.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <system_error>

#include "base/disk_space.h"
#include "snapshot/snapshot.h"
#include "snapshot/snapshot_shared.h"

namespace entrysync {
namespace {

using namespace snapshot_internal;
using store::Db;
using store::Stmt;

// Reads and validates `schema`.meta; errors are plain reasons (the caller
// names the file).
Result<Meta> ReadMeta(Db& db, const std::string& schema) {
  ES_ASSIGN_OR_RETURN(Stmt st, db.Prepare("SELECT key, value FROM " + schema + ".meta"));
  Meta m;
  std::map<std::string, bool> seen;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    std::string key(st.Text(0));
    seen[key] = true;
    auto want_uuid = [&](Uuid* out) -> Status {
      std::string_view b = st.Blob(1);
      if (st.IsNull(1) || b.size() != 16) return Corruption("meta '" + key + "' is not a 16-byte uuid");
      *out = Uuid::FromBytes(b.data());
      return Status::Ok();
    };
    if (key == "format_version")
      m.format_version = st.Int(1);
    else if (key == "library_id")
      ES_RETURN_IF_ERROR(want_uuid(&m.library_id));
    else if (key == "owner_uuid")
      ES_RETURN_IF_ERROR(want_uuid(&m.owner));
    else if (key == "exported_by")
      ES_RETURN_IF_ERROR(want_uuid(&m.exported_by));
    else if (key == "owner_name")
      m.owner_name = std::string(st.Text(1));
    else if (key == "epoch")
      m.epoch = Epoch(static_cast<uint64_t>(st.Int(1)));
    else if (key == "max_seq")
      m.max_seq = Seq(st.Int(1));
    else if (key == "entries")
      m.entries = st.Int(1);
    else if (key == "locations")
      m.locations = st.Int(1);
    else if (key == "content_sum")
      m.content_sum = static_cast<uint64_t>(st.Int(1));
  }
  for (const char* k : {"format_version", "library_id", "owner_uuid", "owner_name", "epoch", "max_seq",
                        "entries", "locations", "content_sum", "exported_by"}) {
    if (!seen.count(k)) return Corruption(std::string("metadata '") + k + "' missing");
  }
  if (m.format_version != kSnapshotFormatVersion)
    return Corruption("metadata format_version " + std::to_string(m.format_version) +
                      " does not match the file's version " + std::to_string(kSnapshotFormatVersion));
  if (m.entries < 0 || m.locations < 0 || m.max_seq.value() < 0)
    return Corruption("negative count or seq in metadata");
  return m;
}

// PermissionDenied when the snapshot belongs to another library or holds
// this device's own index.
Status CheckBelongsHere(Library& lib, const std::string& path, const SnapshotInfo& info) {
  if (info.library_id != lib.library_id())
    return PermissionDenied("snapshot " + path + " belongs to library " + info.library_id.ToString() +
                            ", not to this library " + lib.library_id().ToString());
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib.LocalDevice());
  if (info.owner == me.uuid)
    return PermissionDenied("snapshot " + path + " holds this device's own index; refusing to overwrite it");
  return Status::Ok();
}

// PermissionDenied unless the file holds what its peer offered.
Status CheckOffered(const std::string& path, const SnapshotInfo& info, const SnapshotOffered& o) {
  if (info.owner == o.owner && info.epoch == o.epoch && info.max_seq == o.max_seq) return Status::Ok();
  auto describe = [](const Uuid& owner, Epoch epoch, Seq max_seq) {
    return "owner " + owner.ToString() + " epoch " + std::to_string(epoch.value()) + " up to seq " +
           std::to_string(max_seq.value());
  };
  return PermissionDenied("snapshot " + path + " from " + o.peer + " holds " +
                          describe(info.owner, info.epoch, info.max_seq) + ", but " + o.peer + " offered " +
                          describe(o.owner, o.epoch, o.max_seq) + ": refused");
}

// Corruption unless the attached file is still the one inspected.
Status CheckUnchanged(Db& db, const std::string& path, const SnapshotInfo& info) {
  auto again = ReadMeta(db, kSchema);
  if (!again.ok() || again->owner != info.owner || again->epoch != info.epoch ||
      again->max_seq != info.max_seq || again->content_sum == 0 ||
      static_cast<uint64_t>(again->entries) != info.entries)
    return Corruption("snapshot " + path + " changed while being imported");
  return Status::Ok();
}

// AlreadyExists when `lib` holds `owner` at the snapshot's epoch up to its
// max_seq or beyond.
Status CheckNewer(Library& lib, const std::string& path, const SnapshotInfo& info, DeviceRowId owner) {
  ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(owner));
  if (wm && wm->epoch == info.epoch && wm->seq >= info.max_seq)
    return AlreadyExists("snapshot " + path + " is not newer than what this library holds of " +
                         info.owner_name + " (seq " + std::to_string(wm->seq.value()) +
                         " >= snapshot max seq " + std::to_string(info.max_seq.value()) +
                         "): already current");
  return Status::Ok();
}

// The rows just inserted must be the owner's: when the library holds the
// owner's signed checkpoint at the file's (epoch, max seq), the owner's
// digest must equal it, or the whole import rolls back.
Status CheckAgainstCheckpoint(Library& lib, const std::string& path, const SnapshotInfo& info,
                              DeviceRowId owner) {
  ES_ASSIGN_OR_RETURN(auto cp, lib.GetCheckpoint(owner, info.epoch));
  if (!cp || cp->seq != info.max_seq) return Status::Ok();
  ES_RETURN_IF_ERROR(lib.digests().Flush());
  ES_ASSIGN_OR_RETURN(LtHash digest, lib.digests().Get(owner));
  if (digest.checksum() != cp->digest)
    return Corruption("snapshot " + path + ": its rows are not the ones " + info.owner_name +
                      " signed at seq " + std::to_string(info.max_seq.value()) + "; nothing imported");
  return lib.SetVerifiedSeq(owner, info.max_seq);
}

// The checkpoint the file carries (signature verified by inspection): the
// rows just inserted must be the ones it signs, or the whole import rolls
// back; then it is stored, and the owner's replica is verified at max seq.
Status AdoptFileCheckpoint(Library& lib, const std::string& path, const SnapshotInfo& info,
                           DeviceRowId owner) {
  if (!info.checkpoint) return Status::Ok();
  const Checkpoint& cp = *info.checkpoint;
  ES_RETURN_IF_ERROR(lib.digests().Flush());
  ES_ASSIGN_OR_RETURN(LtHash digest, lib.digests().Get(owner));
  if (digest.checksum() != cp.digest)
    return Corruption("snapshot " + path + ": its rows are not the ones " + info.owner_name +
                      " signed in the file's checkpoint at seq " + std::to_string(info.max_seq.value()) +
                      "; nothing imported");
  ES_ASSIGN_OR_RETURN(DeviceInfo dev, lib.GetDevice(owner));
  if (!dev.device_id) ES_RETURN_IF_ERROR(lib.SetDeviceId(owner, DeviceIdOfEd25519(cp.public_key)));
  ES_RETURN_IF_ERROR(lib.PutCheckpoint(owner, cp).status());
  return lib.SetVerifiedSeq(owner, info.max_seq);
}

// Deletes every entry and location of `owner`; returns how many rows.
Result<uint64_t> DeleteOwnerRows(Db& db, DeviceRowId owner) {
  const int64_t o = owner.value();
  uint64_t deleted = 0;
  ES_RETURN_IF_ERROR(Exec(db, "DELETE FROM main.entry WHERE owner = ?1", {o}));
  deleted += static_cast<uint64_t>(db.Changes());
  ES_RETURN_IF_ERROR(Exec(db, "DELETE FROM main.location WHERE owner = ?1", {o}));
  deleted += static_cast<uint64_t>(db.Changes());
  return deleted;
}

// Copies the attached file's locations, then its entries, into main as rows
// of `owner`; Corruption when not every row of the file was inserted.
Status InsertRows(Db& db, const std::string& path, const SnapshotInfo& info, DeviceRowId owner) {
  const std::string s = kSchema;
  const int64_t o = owner.value();
  auto insert_failed = [&](const Status& st) { return st.Wrap("import snapshot " + path); };
  Status st = Exec(db,
                   "INSERT INTO main.location(uuid, owner, root_path, name, seq, deleted)"
                   " SELECT uuid, ?1, root_path, name, seq, deleted FROM " +
                       s + ".location ORDER BY id",
                   {o});
  if (!st.ok()) return insert_failed(st);
  if (static_cast<uint64_t>(db.Changes()) != info.locations)
    return Corruption("snapshot " + path + ": inserted " + std::to_string(db.Changes()) +
                      " locations, expected " + std::to_string(info.locations));
  // CROSS JOIN fixes the loop order: scan the snapshot's entries in seq
  // order, look each location up by file-local id, then by uuid in main.
  st = Exec(db,
            "INSERT INTO main.entry(uuid, owner, location, parent, name, extension, kind, size,"
            " inode, created_ns, modified_ns, accessed_ns, content_hash, seq, deleted)"
            " SELECT e.uuid, ?1, m.id, e.parent, e.name, e.extension, e.kind, e.size, e.inode,"
            " e.created_ns, e.modified_ns, e.accessed_ns, e.content_hash, e.seq, e.deleted"
            " FROM " +
                s + ".entry AS e CROSS JOIN " + s +
                ".location AS l CROSS JOIN main.location AS m"
                " WHERE l.id = e.location AND m.uuid = l.uuid ORDER BY e.seq",
            {o});
  if (!st.ok()) return insert_failed(st);
  if (static_cast<uint64_t>(db.Changes()) != info.entries)
    return Corruption("snapshot " + path + ": inserted " + std::to_string(db.Changes()) +
                      " entries, expected " + std::to_string(info.entries));
  return Status::Ok();
}

// Records what was imported: the owner's epoch, its watermark (epoch,
// max_seq) from `source`, and `rows_written` added to meta 'rows_applied'.
Status RecordImport(Library& lib, const SnapshotInfo& info, DeviceRowId owner,
                    std::optional<DeviceRowId> source, uint64_t rows_written) {
  Db& db = lib.db();
  ES_RETURN_IF_ERROR(lib.SetEpoch(owner, info.epoch));
  ES_ASSIGN_OR_RETURN(
      Stmt wmst,
      db.Prepare("INSERT INTO main.watermark(owner, epoch, seq, source, updated_ms) VALUES(?, ?, ?, ?, ?)"
                 " ON CONFLICT(owner) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq,"
                 " source = excluded.source, updated_ms = excluded.updated_ms, verified_seq = 0"));
  wmst.Bind(1, owner.value()).Bind(2, static_cast<int64_t>(info.epoch.value())).Bind(3, info.max_seq.value());
  if (source)
    wmst.Bind(4, source->value());
  else
    wmst.BindNull(4);
  wmst.Bind(5, NowMs());
  ES_RETURN_IF_ERROR(wmst.Run());
  if (rows_written > 0) {
    ES_ASSIGN_OR_RETURN(Stmt count, db.Prepare("INSERT INTO main.meta(key, value) VALUES('rows_applied', ?1)"
                                               " ON CONFLICT(key) DO UPDATE SET value = value + ?1"));
    count.Bind(1, static_cast<int64_t>(rows_written));
    ES_RETURN_IF_ERROR(count.Run());
  }
  return Status::Ok();
}

}  // namespace

Result<ImportStats> ImportSnapshot(Library& lib, const std::string& path,
                                   const std::optional<std::string>& expected_sha256,
                                   std::optional<DeviceRowId> source,
                                   const std::optional<SnapshotOffered>& offered) {
  auto t0 = std::chrono::steady_clock::now();
  ES_ASSIGN_OR_RETURN(SnapshotInfo info, InspectFile(path, expected_sha256));
  if (offered) ES_RETURN_IF_ERROR(CheckOffered(path, info, *offered));
  ES_RETURN_IF_ERROR(CheckBelongsHere(lib, path, info));

  Db& db = lib.db();
  ImportStats stats;
  stats.info = info;
  Status st = [&]() -> Status {
    Attachment att(db);
    ES_RETURN_IF_ERROR(att.Attach(path));
    store::Transaction txn(db);
    ES_RETURN_IF_ERROR(txn.Begin());
    ES_RETURN_IF_ERROR(CheckUnchanged(db, path, info));
    ES_ASSIGN_OR_RETURN(stats.owner, lib.EnsureDevice(info.owner, info.owner_name));
    ES_ASSIGN_OR_RETURN(DeviceInfo owner, lib.GetDevice(stats.owner));
    if (owner.revoked)
      return PermissionDenied("snapshot " + path + " holds the rows of " + owner.name +
                              ", a removed device: 'peer add' it again to take its rows");
    ES_RETURN_IF_ERROR(CheckNewer(lib, path, info, stats.owner));
    ES_ASSIGN_OR_RETURN(stats.rows_replaced, DeleteOwnerRows(db, stats.owner));
    // None of the owner's rows is left: its digest starts from zero, and
    // the inserts below add every row of the file to it.
    ES_RETURN_IF_ERROR(lib.digests().Set(stats.owner, LtHash()));
    ES_RETURN_IF_ERROR(InsertRows(db, path, info, stats.owner));
    stats.rows_written = info.entries + info.locations;
    ES_RETURN_IF_ERROR(RecordImport(lib, info, stats.owner, source, stats.rows_written));
    ES_RETURN_IF_ERROR(AdoptFileCheckpoint(lib, path, info, stats.owner));
    ES_RETURN_IF_ERROR(CheckAgainstCheckpoint(lib, path, info, stats.owner));
    return txn.Commit().Wrap("import snapshot " + path);
  }();
  if (IsDiskFull(st)) {
    std::string prefix = "import snapshot " + path + ": ";
    Status cause = st.message().rfind(prefix, 0) == 0 ? IOError(st.message().substr(prefix.size())) : st;
    return DiskFullError("import snapshot " + path + " into " + lib.dir(), lib.dir(),
                         ImportSpaceNeeded(info.size_bytes), cause);
  }
  ES_RETURN_IF_ERROR(st);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

bool ImportMayRetry(const Status& s) {
  if (s.code() != Code::kIOError) return false;
  if (IsDiskFull(s)) return true;
  for (int rc : {SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_NOMEM, SQLITE_CANTOPEN}) {
    if (s.message().find(sqlite3_errstr(rc)) != std::string::npos) return true;
  }
  for (int err : {EIO, ENOMEM, EAGAIN}) {
    if (s.message().find(std::generic_category().message(err)) != std::string::npos) return true;
  }
  return false;
}

}  // namespace entrysync
