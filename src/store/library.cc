#include "store/library.h"

#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <filesystem>

// Generated from src/store/schema/*.sql (cmake/embed.cmake).
extern const char* const es_schema_names[];
extern const char* const es_schema_texts[];
extern const int es_schema_count;

namespace entrysync {

namespace fs = std::filesystem;
using store::Db;
using store::Stmt;
using store::Transaction;

const char* const kEntryColumns =
    "e.uuid, e.parent, l.uuid, e.name, e.extension, e.kind, e.size, e.inode, "
    "e.created_ns, e.modified_ns, e.accessed_ns, e.content_hash, e.seq, e.deleted";

EntryRecord ReadEntryRow(const Stmt& st, int first) {
  const int c = first;
  EntryRecord r;
  r.uuid = st.UuidAt(c + 0);
  r.parent = st.UuidAt(c + 1);
  r.location = st.UuidAt(c + 2);
  r.name = std::string(st.Text(c + 3));
  r.extension = std::string(st.Text(c + 4));
  r.kind = static_cast<EntryKind>(st.Int(c + 5));
  r.size = static_cast<uint64_t>(st.Int(c + 6));
  r.inode = static_cast<uint64_t>(st.Int(c + 7));
  r.created_ns = st.Int(c + 8);
  r.modified_ns = st.Int(c + 9);
  r.accessed_ns = st.Int(c + 10);
  r.content_hash = std::string(st.Blob(c + 11));
  r.seq = Seq(st.Int(c + 12));
  r.deleted = st.Int(c + 13) != 0;
  return r;
}

namespace {

DeviceInfo ReadDevice(const Stmt& st) {
  DeviceInfo d;
  d.id = DeviceRowId(st.Int(0));
  d.uuid = st.UuidAt(1);
  d.name = std::string(st.Text(2));
  if (st.Blob(3).size() == 32) {
    DeviceId id;
    std::memcpy(id.bytes.data(), st.Blob(3).data(), 32);
    d.device_id = id;
  }
  d.addr = std::string(st.Text(4));
  d.is_local = st.Int(5) != 0;
  d.trusted = st.Int(6) != 0;
  d.epoch = Epoch(static_cast<uint64_t>(st.Int(7)));
  d.max_seq = Seq(st.Int(8));
  d.revoked = st.Int(9) != 0;
  return d;
}

constexpr const char* kDeviceColumns =
    "id, uuid, name, device_id, addr, is_local, trusted, epoch, max_seq, revoked";

LocationInfo ReadLocation(const Stmt& st) {
  LocationInfo l;
  l.id = LocationRowId(st.Int(0));
  l.owner = DeviceRowId(st.Int(1));
  l.record.uuid = st.UuidAt(2);
  l.record.root_path = std::string(st.Text(3));
  l.record.name = std::string(st.Text(4));
  l.record.seq = Seq(st.Int(5));
  l.record.deleted = st.Int(6) != 0;
  return l;
}

constexpr const char* kLocationColumns = "id, owner, uuid, root_path, name, seq, deleted";

}  // namespace

Result<std::unique_ptr<Library>> Library::Create(const std::string& dir, const std::string& device_name,
                                                 std::optional<Uuid> library_id) {
  if (device_name.empty()) return InvalidArgument("device name must not be empty");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IOError("create library folder " + dir + ": " + ec.message());
  std::string path = (fs::path(dir) / kDbFile).string();
  if (fs::exists(path)) return AlreadyExists("a library already exists in " + dir);
  ES_ASSIGN_OR_RETURN(Db db, Db::Open(path, /*create=*/true));
  std::unique_ptr<Library> lib(new Library(dir, std::move(db)));
  Status s = [&]() -> Status {
    ES_RETURN_IF_ERROR(lib->Configure());
    ES_RETURN_IF_ERROR(lib->Migrate());
    Transaction txn(lib->db_);
    ES_RETURN_IF_ERROR(txn.Begin());
    Uuid lib_id = library_id.value_or(NewUuidV4());
    Uuid dev = NewUuidV4();
    ES_ASSIGN_OR_RETURN(
        Stmt ins,
        lib->db_.Prepare(
            "INSERT INTO device(uuid, name, is_local, trusted, epoch, max_seq) VALUES(?, ?, 1, 1, ?, 0)"));
    ins.Bind(1, dev).Bind(2, device_name).Bind(3, static_cast<int64_t>(RandomU64()));
    ES_RETURN_IF_ERROR(ins.Run());
    int64_t local = lib->db_.LastInsertRowId();
    ES_ASSIGN_OR_RETURN(Stmt meta, lib->db_.Prepare("INSERT INTO meta(key, value) VALUES(?, ?)"));
    meta.Bind(1, "library_id").BindBlob(2, lib_id.bytes.data(), 16);
    ES_RETURN_IF_ERROR(meta.Run());
    meta.Bind(1, "local_device").Bind(2, local);
    ES_RETURN_IF_ERROR(meta.Run());
    ES_RETURN_IF_ERROR(txn.Commit());
    return lib->LoadMeta();
  }();
  if (!s.ok()) {
    lib.reset();
    fs::remove(path, ec);
    fs::remove(path + "-wal", ec);
    fs::remove(path + "-shm", ec);
    return s.Wrap("create library in " + dir);
  }
  return lib;
}

Library::Library(std::string dir, store::Db db)
    : dir_(std::move(dir)),
      db_(std::move(db)),
      digests_(std::make_unique<OwnerDigests>(db_)),
      notifier_(CommitNoticePath(dir_)) {
  sqlite3_wal_hook(db_.raw(), &Library::OnWalCommit, this);
  db_.SetBeforeCommit([this] { return digests_->Flush(); });
}

// SQLite's WAL hook runs after each commit. Installing it replaces the
// default auto-checkpoint hook, so it checkpoints as that one does (PASSIVE
// once the WAL holds 1000 pages), then tells a daemon.
int Library::OnWalCommit(void* self, sqlite3* db, const char* name, int wal_pages) {
  if (wal_pages >= 1000) sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  auto* lib = static_cast<Library*>(self);
  if (lib->notices_on_) lib->notifier_.Notify();
  return SQLITE_OK;
}

Result<std::unique_ptr<Library>> Library::Open(const std::string& dir) {
  std::string path = (fs::path(dir) / kDbFile).string();
  if (!fs::exists(path)) return NotFound("no library in " + dir + " (run 'entrysync init' first)");
  ES_ASSIGN_OR_RETURN(Db db, Db::Open(path, /*create=*/false));
  std::unique_ptr<Library> lib(new Library(dir, std::move(db)));
  ES_RETURN_IF_ERROR(lib->Configure().Wrap("open library " + dir));
  ES_RETURN_IF_ERROR(lib->Migrate().Wrap("open library " + dir));
  ES_RETURN_IF_ERROR(lib->LoadMeta().Wrap("open library " + dir));
  return lib;
}

Result<std::unique_ptr<Library>> Library::OpenForReading(const std::string& dir) {
  std::string path = (fs::path(dir) / kDbFile).string();
  if (!fs::exists(path)) return NotFound("no library in " + dir + " (run 'entrysync init' first)");
  ES_ASSIGN_OR_RETURN(Db db, Db::Open(path, /*create=*/false));
  std::unique_ptr<Library> lib(new Library(dir, std::move(db)));
  lib->notices_on_ = false;
  ES_RETURN_IF_ERROR(lib->Configure().Wrap("open library " + dir + " for reading"));
  if (int v = lib->schema_version(); v != kSchemaVersion)
    return InvalidArgument("open library " + dir + " for reading: schema version " + std::to_string(v) +
                           ", this build reads " + std::to_string(kSchemaVersion));
  ES_RETURN_IF_ERROR(lib->LoadMeta().Wrap("open library " + dir + " for reading"));
  ES_RETURN_IF_ERROR(lib->db_.Exec("PRAGMA query_only = ON").Wrap("open library " + dir + " for reading"));
  return lib;
}

Status Library::Configure() {
  return db_.Exec(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"
      "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;");
}

int Library::schema_version() const {
  sqlite3_stmt* st = nullptr;
  int v = -1;
  if (sqlite3_prepare_v2(db_.raw(), "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

Status Library::Migrate() {
  int have = schema_version();
  if (have < 0) return db_.Error("read schema version");
  if (have > es_schema_count) {
    return InvalidArgument("library schema version " + std::to_string(have) +
                           " is newer than this entrysync supports (" + std::to_string(es_schema_count) +
                           ")");
  }
  for (int v = have; v < es_schema_count; ++v) {
    Transaction txn(db_);
    ES_RETURN_IF_ERROR(txn.Begin());
    ES_RETURN_IF_ERROR(db_.Exec(es_schema_texts[v]).Wrap(std::string("migrate ") + es_schema_names[v]));
    if (v + 1 == 3) ES_RETURN_IF_ERROR(ComputeAllDigests().Wrap("migrate: compute set digests"));
    ES_RETURN_IF_ERROR(db_.Exec("PRAGMA user_version = " + std::to_string(v + 1)));
    ES_RETURN_IF_ERROR(txn.Commit());
  }
  // From here on every row written reaches its owner's digest.
  return digests_->WatchRows();
}

Status Library::ComputeAllDigests() {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("SELECT id FROM device"));
  std::vector<DeviceRowId> owners;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    owners.emplace_back(st.Int(0));
  }
  for (DeviceRowId o : owners) {
    ES_ASSIGN_OR_RETURN(LtHash h, digests_->Recompute(o));
    if (!h.is_zero()) ES_RETURN_IF_ERROR(digests_->Set(o, h));
  }
  return Status::Ok();
}

Status Library::LoadMeta() {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("SELECT key, value FROM meta"));
  bool have_id = false, have_dev = false;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    if (st.Text(0) == "library_id" && st.Blob(1).size() == 16) {
      library_id_ = Uuid::FromBytes(st.Blob(1).data());
      have_id = true;
    } else if (st.Text(0) == "local_device") {
      local_device_ = DeviceRowId(st.Int(1));
      have_dev = true;
    }
  }
  if (!have_id || !have_dev) return Corruption("library metadata is incomplete");
  return Status::Ok();
}

// ---- devices ----

Result<std::vector<DeviceInfo>> Library::ListDevices() {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(std::string("SELECT ") + kDeviceColumns +
                                           " FROM device ORDER BY is_local DESC, name"));
  std::vector<DeviceInfo> out;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(ReadDevice(st));
  }
  return out;
}

namespace {
Result<DeviceInfo> QueryOneDevice(Db& db, const std::string& where, const std::function<void(Stmt&)>& bind,
                                  const std::string& what) {
  ES_ASSIGN_OR_RETURN(Stmt st,
                      db.Prepare(std::string("SELECT ") + kDeviceColumns + " FROM device WHERE " + where));
  bind(st);
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("no device " + what);
  return ReadDevice(st);
}
}  // namespace

Result<DeviceInfo> Library::GetDevice(DeviceRowId id) {
  return QueryOneDevice(
      db_, "id = ?", [&](Stmt& s) { s.Bind(1, id.value()); }, "#" + std::to_string(id.value()));
}

Result<DeviceInfo> Library::FindDeviceByName(const std::string& name) {
  return QueryOneDevice(
      db_, "name = ? ORDER BY trusted DESC, id LIMIT 1", [&](Stmt& s) { s.Bind(1, name); },
      "named '" + name + "'");
}

Result<DeviceInfo> Library::FindDeviceByUuid(const Uuid& uuid) {
  return QueryOneDevice(
      db_, "uuid = ?", [&](Stmt& s) { s.Bind(1, uuid); }, "with uuid " + uuid.ToString());
}

Result<DeviceInfo> Library::FindDeviceById(const DeviceId& id) {
  return QueryOneDevice(
      db_, "device_id = ?", [&](Stmt& s) { s.BindBlob(1, id.bytes.data(), 32); }, "with id " + id.ToString());
}

Result<DeviceRowId> Library::EnsureDevice(const Uuid& uuid, const std::string& name) {
  auto found = FindDeviceByUuid(uuid);
  if (found.ok()) return found->id;
  if (found.status().code() != Code::kNotFound) return found.status();
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("INSERT INTO device(uuid, name) VALUES(?, ?)"));
  st.Bind(1, uuid).Bind(2, name);
  ES_RETURN_IF_ERROR(st.Run());
  return DeviceRowId(db_.LastInsertRowId());
}

Status Library::SetLocalDeviceId(const DeviceId& id) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("UPDATE device SET device_id = ?, uuid = ? WHERE id = ?"));
  st.BindBlob(1, id.bytes.data(), 32).Bind(2, OwnerUuidOf(id)).Bind(3, local_device_.value());
  return st.Run();
}

Status Library::SetDeviceId(DeviceRowId device, const DeviceId& id) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("UPDATE device SET device_id = ? WHERE id = ? AND uuid = ?"));
  st.BindBlob(1, id.bytes.data(), 32).Bind(2, device.value()).Bind(3, OwnerUuidOf(id));
  return st.Run();
}

Result<DeviceRowId> Library::AddPeer(const std::string& name, const DeviceId& id, const std::string& addr) {
  if (name.empty()) return InvalidArgument("peer name must not be empty");
  ES_ASSIGN_OR_RETURN(DeviceInfo local, LocalDevice());
  if (local.device_id && *local.device_id == id)
    return InvalidArgument("device " + id.ToString() + " is this device itself");
  // The row of this key: by id, or by the owner uuid the key derives (an
  // owner known through a relay before it was paired).
  const Uuid uuid = OwnerUuidOf(id);
  std::optional<DeviceInfo> existing;
  if (auto by_id = FindDeviceById(id); by_id.ok()) {
    existing = *by_id;
  } else if (auto by_uuid = FindDeviceByUuid(uuid); by_uuid.ok()) {
    existing = *by_uuid;
  }
  if (existing) {
    // A new address replaces the old one; none given keeps it.
    ES_ASSIGN_OR_RETURN(Stmt st,
                        db_.Prepare("UPDATE device SET name = ?, device_id = ?, addr = coalesce(?, addr),"
                                    " trusted = 1, revoked = 0 WHERE id = ?"));
    st.Bind(1, name).BindBlob(2, id.bytes.data(), 32);
    if (addr.empty())
      st.BindNull(3);
    else
      st.Bind(3, addr);
    st.Bind(4, existing->id.value());
    ES_RETURN_IF_ERROR(st.Run());
    return existing->id;
  }
  ES_ASSIGN_OR_RETURN(
      Stmt st, db_.Prepare("INSERT INTO device(uuid, name, device_id, addr, trusted) VALUES(?, ?, ?, ?, 1)"));
  st.Bind(1, uuid).Bind(2, name).BindBlob(3, id.bytes.data(), 32);
  if (addr.empty())
    st.BindNull(4);
  else
    st.Bind(4, addr);
  ES_RETURN_IF_ERROR(st.Run());
  return DeviceRowId(db_.LastInsertRowId());
}

Status Library::RemovePeer(const std::string& name, bool purge) {
  ES_ASSIGN_OR_RETURN(DeviceInfo d, FindDeviceByName(name));
  if (d.is_local) return InvalidArgument("'" + name + "' is this device, not a peer");
  Transaction txn(db_);
  ES_RETURN_IF_ERROR(txn.Begin());
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("UPDATE device SET trusted = 0, revoked = 1 WHERE id = ?"));
  st.Bind(1, d.id.value());
  ES_RETURN_IF_ERROR(st.Run());
  if (purge) {
    for (const char* sql : {"DELETE FROM entry WHERE owner = ?", "DELETE FROM location WHERE owner = ?",
                            "DELETE FROM watermark WHERE owner = ?", "DELETE FROM checkpoint WHERE owner = ?",
                            "DELETE FROM owner_digest WHERE owner = ?"}) {
      ES_ASSIGN_OR_RETURN(Stmt del, db_.Prepare(sql));
      del.Bind(1, d.id.value());
      ES_RETURN_IF_ERROR(del.Run());
    }
    // The triggers subtracted every row; nothing of it is left to store.
    ES_RETURN_IF_ERROR(digests_->Set(d.id, LtHash()));
    ES_ASSIGN_OR_RETURN(Stmt zero, db_.Prepare("DELETE FROM owner_digest WHERE owner = ?"));
    zero.Bind(1, d.id.value());
    ES_RETURN_IF_ERROR(zero.Run());
  }
  return txn.Commit();
}

Status Library::SetEpoch(DeviceRowId device, Epoch epoch) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("UPDATE device SET epoch = ? WHERE id = ?"));
  st.Bind(1, static_cast<int64_t>(epoch.value())).Bind(2, device.value());
  return st.Run();
}

// ---- locations ----

Result<std::vector<LocationInfo>> Library::ListLocations(std::optional<DeviceRowId> owner) {
  std::string sql = std::string("SELECT ") + kLocationColumns + " FROM location WHERE deleted = 0";
  if (owner) sql += " AND owner = ?";
  sql += " ORDER BY owner, root_path";
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(sql));
  if (owner) st.Bind(1, owner->value());
  std::vector<LocationInfo> out;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(ReadLocation(st));
  }
  return out;
}

Result<LocationInfo> Library::FindLocationByUuid(const Uuid& uuid) {
  ES_ASSIGN_OR_RETURN(
      Stmt st, db_.Prepare(std::string("SELECT ") + kLocationColumns + " FROM location WHERE uuid = ?"));
  st.Bind(1, uuid);
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("no location " + uuid.ToString());
  return ReadLocation(st);
}

Result<LocationInfo> Library::FindLocalLocationByPath(const std::string& root_path) {
  ES_ASSIGN_OR_RETURN(Stmt st,
                      db_.Prepare(std::string("SELECT ") + kLocationColumns +
                                  " FROM location WHERE owner = ? AND root_path = ? AND deleted = 0"));
  st.Bind(1, local_device_.value()).Bind(2, root_path);
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("no location at " + root_path);
  return ReadLocation(st);
}

// ---- entries ----

namespace {
Status CollectEntries(Stmt& st, std::vector<EntryRecord>* out) {
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out->push_back(ReadEntryRow(st));
  }
  return Status::Ok();
}
std::string EntrySelect(const std::string& where) {
  return std::string("SELECT ") + kEntryColumns +
         " FROM entry e JOIN location l ON l.id = e.location WHERE " + where;
}
}  // namespace

Result<std::vector<EntryRecord>> Library::LoadLocationEntries(LocationRowId location, bool include_deleted) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(EntrySelect(std::string("e.location = ?") +
                                                       (include_deleted ? "" : " AND e.deleted = 0"))));
  st.Bind(1, location.value());
  std::vector<EntryRecord> out;
  ES_RETURN_IF_ERROR(CollectEntries(st, &out));
  return out;
}

Result<std::vector<EntryRecord>> Library::ListChildren(const Uuid& parent) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(EntrySelect("e.parent = ? AND e.deleted = 0 ORDER BY e.name")));
  st.Bind(1, parent);
  std::vector<EntryRecord> out;
  ES_RETURN_IF_ERROR(CollectEntries(st, &out));
  return out;
}

Result<EntryRecord> Library::LocationRoot(LocationRowId location) {
  ES_ASSIGN_OR_RETURN(Stmt st,
                      db_.Prepare(EntrySelect("e.location = ? AND e.parent IS NULL AND e.deleted = 0")));
  st.Bind(1, location.value());
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("location #" + std::to_string(location.value()) + " has no root entry");
  return ReadEntryRow(st);
}

Result<std::optional<EntryRecord>> Library::FindEntry(const Uuid& uuid) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(EntrySelect("e.uuid = ?")));
  st.Bind(1, uuid);
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<EntryRecord>();
  return std::optional<EntryRecord>(ReadEntryRow(st));
}

Status Library::ScanOwnerEntries(DeviceRowId owner, Seq after, Seq upto, size_t limit,
                                 const std::function<bool(EntryRecord&&)>& fn) {
  std::string sql = EntrySelect("e.owner = ? AND e.seq > ? AND e.seq <= ? ORDER BY e.seq");
  if (limit > 0) sql += " LIMIT " + std::to_string(limit);
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(sql));
  st.Bind(1, owner.value()).Bind(2, after.value()).Bind(3, upto.value());
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    if (!fn(ReadEntryRow(st))) break;
  }
  return Status::Ok();
}

Status Library::ScanOwnerByUuid(DeviceRowId owner, const std::function<bool(EntryRecord&&)>& fn) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(EntrySelect("e.owner = ? ORDER BY e.uuid")));
  st.Bind(1, owner.value());
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    if (!fn(ReadEntryRow(st))) break;
  }
  return Status::Ok();
}

Result<uint64_t> Library::CountEntries(DeviceRowId owner, bool include_deleted) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(std::string("SELECT count(*) FROM entry WHERE owner = ?") +
                                           (include_deleted ? "" : " AND deleted = 0")));
  st.Bind(1, owner.value());
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.Int(0)) : 0;
}

Result<Seq> Library::MaxStoredSeq(DeviceRowId owner) {
  ES_ASSIGN_OR_RETURN(
      Stmt st, db_.Prepare("SELECT max(coalesce((SELECT max(seq) FROM entry WHERE owner = ?1), 0),"
                           "           coalesce((SELECT max(seq) FROM location WHERE owner = ?1), 0))"));
  st.Bind(1, owner.value());
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  return Seq(row ? st.Int(0) : 0);
}

// ---- replication bookkeeping ----

Result<std::optional<WatermarkInfo>> Library::GetWatermark(DeviceRowId owner) {
  ES_ASSIGN_OR_RETURN(Stmt st,
                      db_.Prepare("SELECT owner, epoch, seq, verified_seq FROM watermark WHERE owner = ?"));
  st.Bind(1, owner.value());
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<WatermarkInfo>();
  return std::optional<WatermarkInfo>(WatermarkInfo{
      DeviceRowId(st.Int(0)), Epoch(static_cast<uint64_t>(st.Int(1))), Seq(st.Int(2)), Seq(st.Int(3))});
}

Result<std::vector<WatermarkInfo>> Library::ListWatermarks() {
  ES_ASSIGN_OR_RETURN(Stmt st,
                      db_.Prepare("SELECT owner, epoch, seq, verified_seq FROM watermark ORDER BY owner"));
  std::vector<WatermarkInfo> out;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(
        {DeviceRowId(st.Int(0)), Epoch(static_cast<uint64_t>(st.Int(1))), Seq(st.Int(2)), Seq(st.Int(3))});
  }
  return out;
}

Status Library::SetVerifiedSeq(DeviceRowId owner, Seq seq) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("UPDATE watermark SET verified_seq = ? WHERE owner = ?"));
  st.Bind(1, seq.value()).Bind(2, owner.value());
  return st.Run();
}

Result<std::optional<Checkpoint>> Library::GetCheckpoint(DeviceRowId owner, Epoch epoch) {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("SELECT d.uuid, c.seq, c.digest, c.public_key, c.signature"
                                           " FROM checkpoint c JOIN device d ON d.id = c.owner"
                                           " WHERE c.owner = ? AND c.epoch = ?"));
  st.Bind(1, owner.value()).Bind(2, static_cast<int64_t>(epoch.value()));
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Checkpoint>();
  Checkpoint cp;
  cp.owner = st.UuidAt(0);
  cp.epoch = epoch;
  cp.seq = Seq(st.Int(1));
  std::memcpy(cp.digest.data(), st.Blob(2).data(), cp.digest.size());  // lengths CHECKed by the schema
  std::memcpy(cp.public_key.data(), st.Blob(3).data(), cp.public_key.size());
  std::memcpy(cp.signature.data(), st.Blob(4).data(), cp.signature.size());
  return std::optional<Checkpoint>(cp);
}

Status Library::ReplaceCheckpoint(DeviceRowId owner, const Checkpoint& cp) {
  ES_ASSIGN_OR_RETURN(Stmt del, db_.Prepare("DELETE FROM checkpoint WHERE owner = ? AND epoch = ?"));
  del.Bind(1, owner.value()).Bind(2, static_cast<int64_t>(cp.epoch.value()));
  ES_RETURN_IF_ERROR(del.Run());
  return PutCheckpoint(owner, cp).status();
}

Result<bool> Library::PutCheckpoint(DeviceRowId owner, const Checkpoint& cp) {
  ES_ASSIGN_OR_RETURN(
      Stmt st,
      db_.Prepare("INSERT INTO checkpoint(owner, epoch, seq, digest, public_key, signature)"
                  " VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(owner, epoch) DO UPDATE SET seq = excluded.seq,"
                  " digest = excluded.digest, public_key = excluded.public_key,"
                  " signature = excluded.signature WHERE excluded.seq > checkpoint.seq"));
  st.Bind(1, owner.value()).Bind(2, static_cast<int64_t>(cp.epoch.value())).Bind(3, cp.seq.value());
  st.BindBlob(4, cp.digest.data(), cp.digest.size()).BindBlob(5, cp.public_key.data(), cp.public_key.size());
  st.BindBlob(6, cp.signature.data(), cp.signature.size());
  ES_RETURN_IF_ERROR(st.Run());
  return db_.Changes() > 0;
}

Result<uint64_t> Library::RowsAppliedTotal() {
  ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("SELECT value FROM meta WHERE key = 'rows_applied'"));
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.Int(0)) : 0;
}

const LocationInfo* InnermostLocation(const std::vector<LocationInfo>& locations, const std::string& path) {
  const LocationInfo* best = nullptr;
  for (const auto& l : locations) {
    const std::string& root = l.record.root_path;
    bool inside = path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                                   (path[root.size()] == '/' || root == "/"));
    if (inside && (!best || root.size() > best->record.root_path.size())) best = &l;
  }
  return best;
}

}  // namespace entrysync
