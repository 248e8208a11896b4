#include "store/digest.h"

#include <cstring>
#include <map>
#include <span>
#include <string_view>

namespace entrysync {
namespace {

// Writes an element's fields into space already sized for them:
// fixed-width little-endian integers, u32-length-prefixed strings, 16-byte
// uuids (zeros for none).
class ElementAt {
 public:
  explicit ElementAt(char* p) : p_(p) {}
  ElementAt& U8(uint8_t v) {
    *p_++ = static_cast<char>(v);
    return *this;
  }
  ElementAt& I64(int64_t v) {
    auto u = static_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) *p_++ = static_cast<char>((u >> (8 * i)) & 0xFF);
    return *this;
  }
  ElementAt& Bytes(std::string_view s) {
    auto n = static_cast<uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) *p_++ = static_cast<char>((n >> (8 * i)) & 0xFF);
    if (!s.empty()) std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
    return *this;
  }
  ElementAt& Uuid16(const void* p) {
    if (p)
      std::memcpy(p_, p, 16);
    else
      std::memset(p_, 0, 16);
    p_ += 16;
    return *this;
  }

 private:
  char* p_;
};

// The fields an element encodes, wherever they are read from (a record, a
// row version in the hook, a query): one encoder each, so every path hashes
// the same bytes. Uuids are 16 bytes, or null for none.
struct EntryFields {
  const void* uuid;
  const void* parent;
  const void* location;
  std::string_view name, extension;
  int64_t kind, size, inode, created_ns, modified_ns, accessed_ns;
  std::string_view content_hash;
  int64_t seq;
  bool deleted;
};
struct LocationFields {
  const void* uuid;
  std::string_view root_path, name;
  int64_t seq;
  bool deleted;
};

// An entry element's bytes besides its three variable-length fields: tag,
// three uuids, three length prefixes, kind, five integers, seq, deleted.
constexpr size_t kEntryFixedBytes = 1 + 3 * 16 + 3 * 4 + 1 + 5 * 8 + 8 + 1;

// Where an entry element holds its location's uuid: after the tag and the
// uuids of the entry and its parent.
constexpr size_t kEntryLocationOffset = 1 + 16 + 16;

// Elements per batch handed to the hasher's thread (about 100 bytes each).
constexpr size_t kHashBatch = 4096;

// The columns of `entry` and `location` the hook reads, in table order
// (schema 001; WatchRows checks them).
constexpr const char* kEntryColumns[] = {
    "id",   "uuid",  "owner",      "location",    "parent",      "name",         "extension", "kind",
    "size", "inode", "created_ns", "modified_ns", "accessed_ns", "content_hash", "seq",       "deleted"};
constexpr const char* kLocationColumns[] = {"id", "uuid", "owner", "root_path", "name", "seq", "deleted"};

// Appends the element of `f` to `out`; returns where it starts.
size_t AppendEntry(std::string& out, const EntryFields& f) {
  const size_t start = out.size();
  out.resize(start + kEntryFixedBytes + f.name.size() + f.extension.size() + f.content_hash.size());
  ElementAt e(out.data() + start);
  e.U8('E').Uuid16(f.uuid).Uuid16(f.parent).Uuid16(f.location);
  e.Bytes(f.name).Bytes(f.extension).U8(static_cast<uint8_t>(f.kind));
  e.I64(f.size).I64(f.inode).I64(f.created_ns).I64(f.modified_ns).I64(f.accessed_ns);
  e.Bytes(f.content_hash).I64(f.seq).U8(f.deleted ? 1 : 0);
  return start;
}

size_t AppendLocation(std::string& out, const LocationFields& f) {
  const size_t start = out.size();
  out.resize(start + 1 + 16 + 4 + f.root_path.size() + 4 + f.name.size() + 8 + 1);
  ElementAt e(out.data() + start);
  e.U8('L').Uuid16(f.uuid).Bytes(f.root_path).Bytes(f.name).I64(f.seq).U8(f.deleted ? 1 : 0);
  return start;
}

EntryFields FieldsOf(const EntryRecord& r) {
  return EntryFields{.uuid = r.uuid.bytes.data(),
                     .parent = r.parent.is_nil() ? nullptr : r.parent.bytes.data(),
                     .location = r.location.bytes.data(),
                     .name = r.name,
                     .extension = r.extension,
                     .kind = static_cast<int64_t>(r.kind),
                     .size = static_cast<int64_t>(r.size),
                     .inode = static_cast<int64_t>(r.inode),
                     .created_ns = r.created_ns,
                     .modified_ns = r.modified_ns,
                     .accessed_ns = r.accessed_ns,
                     .content_hash = r.content_hash,
                     .seq = r.seq.value(),
                     .deleted = r.deleted};
}

std::string_view BlobArg(sqlite3_value* v) {
  const void* p = sqlite3_value_blob(v);
  int n = sqlite3_value_bytes(v);
  return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string_view();
}

// es_owner_uuid(device_id): the owner uuid of a 32-byte device id.
void OwnerUuidFn(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  std::string_view id = BlobArg(argv[0]);
  if (id.size() != 32) {
    sqlite3_result_null(ctx);
    return;
  }
  DeviceId d;
  std::memcpy(d.bytes.data(), id.data(), 32);
  Uuid u = OwnerUuidOf(d);
  sqlite3_result_blob(ctx, u.bytes.data(), 16, SQLITE_TRANSIENT);
}

}  // namespace

std::string EntryElement(const EntryRecord& r) {
  std::string out;
  AppendEntry(out, FieldsOf(r));
  return out;
}

std::string LocationElement(const LocationRecord& r) {
  std::string out;
  AppendLocation(out, LocationFields{.uuid = r.uuid.bytes.data(),
                                     .root_path = r.root_path,
                                     .name = r.name,
                                     .seq = r.seq.value(),
                                     .deleted = r.deleted});
  return out;
}

OwnerDigests::OwnerDigests(store::Db& db) : db_(db) {
  sqlite3* raw = db.raw();
  // Deterministic so SQLite may use it in the schema; DIRECTONLY so a
  // schema object in a foreign file cannot call it.
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;
  sqlite3_create_function(raw, "es_owner_uuid", 1, flags, nullptr, &OwnerUuidFn, nullptr, nullptr);
  sqlite3_commit_hook(raw, &OwnerDigests::OnCommit, this);
  sqlite3_rollback_hook(raw, &OwnerDigests::OnRollback, this);
}

OwnerDigests::~OwnerDigests() {
  sqlite3* raw = db_.raw();
  if (!raw) return;
  sqlite3_preupdate_hook(raw, nullptr, nullptr);
  sqlite3_commit_hook(raw, nullptr, nullptr);
  sqlite3_rollback_hook(raw, nullptr, nullptr);
}

Status OwnerDigests::WatchRows() {
  if (!sqlite3_compileoption_used("ENABLE_PREUPDATE_HOOK"))
    return Internal("this SQLite library (" + std::string(sqlite3_libversion()) +
                    ") was built without SQLITE_ENABLE_PREUPDATE_HOOK, which the set digests need");
  auto check = [&](const char* table, std::span<const char* const> want) -> Status {
    ES_ASSIGN_OR_RETURN(store::Stmt st, db_.Prepare(std::string("PRAGMA table_info(") + table + ")"));
    for (size_t i = 0;; ++i) {
      ES_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) {
        if (i == want.size()) return Status::Ok();
        break;
      }
      if (i >= want.size() || st.Text(1) != want[i]) break;
    }
    return Corruption(std::string("table ") + table + " does not have the columns of the library schema");
  };
  ES_RETURN_IF_ERROR(check("entry", kEntryColumns));
  ES_RETURN_IF_ERROR(check("location", kLocationColumns));
  sqlite3_preupdate_hook(db_.raw(), &OwnerDigests::OnPreUpdate, this);
  watching_ = true;
  return Status::Ok();
}

namespace {

// One column of the row version the pre-update hook is about.
class RowVersion {
 public:
  RowVersion(sqlite3* db, bool old_row) : db_(db), old_(old_row) {}
  sqlite3_value* Col(int i) const {
    sqlite3_value* v = nullptr;
    int rc = old_ ? sqlite3_preupdate_old(db_, i, &v) : sqlite3_preupdate_new(db_, i, &v);
    return rc == SQLITE_OK ? v : nullptr;
  }
  int64_t Int(int i) const {
    sqlite3_value* v = Col(i);
    return v ? sqlite3_value_int64(v) : 0;
  }
  std::string_view Blob(int i) const {
    sqlite3_value* v = Col(i);
    return v ? BlobArg(v) : std::string_view();
  }
  // A TEXT column's UTF-8 bytes (the library's encoding), read as a blob:
  // sqlite3_value_text would copy an unterminated string to terminate it.
  std::string_view Text(int i) const { return Blob(i); }
  const void* UuidBytes(int i) const {
    std::string_view b = Blob(i);
    return b.size() == 16 ? b.data() : nullptr;
  }

 private:
  sqlite3* db_;
  bool old_;
};

}  // namespace

void OwnerDigests::OnPreUpdate(void* self, sqlite3* db, int op, const char* schema, const char* table,
                               sqlite3_int64 old_key, sqlite3_int64 new_key) {
  // Only the library's own tables: an attached snapshot file has its own.
  if (std::strcmp(schema, "main") != 0) return;
  auto* d = static_cast<OwnerDigests*>(self);
  const bool entry = std::strcmp(table, "entry") == 0;
  if (!entry && std::strcmp(table, "location") != 0) return;
  if (entry && d->known_ && op != SQLITE_DELETE) {
    // The new version is the caller's record (EndKnownRows); only the one
    // an update replaces is read here.
    if (op == SQLITE_UPDATE) d->AddEntry(db, -1, /*old_row=*/true);
    d->known_written_.push_back(new_key);
    return;
  }
  if (op == SQLITE_DELETE || op == SQLITE_UPDATE) {
    if (entry)
      d->AddEntry(db, -1, /*old_row=*/true);
    else
      d->AddLocation(db, -1, /*old_row=*/true, old_key);
  }
  if (op == SQLITE_INSERT || op == SQLITE_UPDATE) {
    if (entry)
      d->AddEntry(db, +1, /*old_row=*/false);
    else
      d->AddLocation(db, +1, /*old_row=*/false, new_key);
  }
}

// An entry row version (columns as kEntryColumns) as its element: the same
// bytes as EntryElement of the record, the location by uuid. When that uuid
// is not known yet, the element waits in unresolved_ for Settle.
void OwnerDigests::AddEntry(sqlite3* db, int sign, bool old_row) {
  RowVersion r(db, old_row);
  const int64_t location = r.Int(3);
  auto known = location_uuids_.find(location);
  const bool resolved = known != location_uuids_.end();
  ElementBatch& into = resolved ? batch_ : unresolved_;
  const size_t start =
      AppendEntry(into.buffer(), EntryFields{.uuid = r.UuidBytes(1),
                                             .parent = r.UuidBytes(4),
                                             .location = resolved ? known->second.bytes.data() : nullptr,
                                             .name = r.Text(5),
                                             .extension = r.Text(6),
                                             .kind = r.Int(7),
                                             .size = r.Int(8),
                                             .inode = r.Int(9),
                                             .created_ns = r.Int(10),
                                             .modified_ns = r.Int(11),
                                             .accessed_ns = r.Int(12),
                                             .content_hash = r.Blob(13),
                                             .seq = r.Int(14),
                                             .deleted = r.Int(15) != 0});
  into.Commit(r.Int(2), sign, start);
  if (!resolved) {
    unresolved_locations_.push_back(location);
    return;
  }
  SubmitIfFull();
}

void OwnerDigests::SubmitIfFull() {
  if (batch_.size() < kHashBatch) return;
  hasher_.Submit(std::move(batch_));
  batch_ = hasher_.Spare();
  batch_.Reserve(kHashBatch, kHashBatch * 128);
}

void OwnerDigests::AddRecord(int64_t owner, const EntryRecord& r) {
  batch_.Commit(owner, +1, AppendEntry(batch_.buffer(), FieldsOf(r)));
  SubmitIfFull();
}

Status OwnerDigests::EndKnownRows(DeviceRowId owner, std::span<const EntryRecord> rows) {
  known_ = false;
  std::vector<int64_t> written = std::move(known_written_);
  known_written_.clear();
  if (written.size() == rows.size()) {
    for (const EntryRecord& r : rows) AddRecord(owner.value(), r);
    return Status::Ok();
  }
  if (written.empty() || rows.empty()) return Status::Ok();  // empty: the statement failed
  // Some rows were left alone (older than what is stored, or another
  // owner's uuid): the ones written are those of the row ids seen.
  ES_ASSIGN_OR_RETURN(store::Stmt st, db_.Prepare("SELECT uuid FROM entry WHERE id = ?"));
  std::map<Uuid, int> times;  // a uuid twice in one statement: inserted, then updated
  for (int64_t id : written) {
    st.Reset();
    st.Bind(1, id);
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) ++times[st.UuidAt(0)];
  }
  for (const EntryRecord& r : rows) {
    auto it = times.find(r.uuid);
    if (it == times.end() || it->second == 0) continue;
    --it->second;
    AddRecord(owner.value(), r);
  }
  return Status::Ok();
}

// A location row version (columns as kLocationColumns); remembers its uuid
// for the entries that refer to it.
void OwnerDigests::AddLocation(sqlite3* db, int sign, bool old_row, int64_t id) {
  RowVersion r(db, old_row);
  if (const void* uuid = r.UuidBytes(1)) std::memcpy(location_uuids_[id].bytes.data(), uuid, 16);
  const size_t start = AppendLocation(batch_.buffer(), LocationFields{.uuid = r.UuidBytes(1),
                                                                      .root_path = r.Text(3),
                                                                      .name = r.Text(4),
                                                                      .seq = r.Int(5),
                                                                      .deleted = r.Int(6) != 0});
  batch_.Commit(r.Int(2), sign, start);
}

Status OwnerDigests::Settle() {
  if (!unresolved_.empty()) {
    // Locations the hook has not seen change since the library opened:
    // looked up now that statements may run.
    ES_ASSIGN_OR_RETURN(store::Stmt st, db_.Prepare("SELECT uuid FROM location WHERE id = ?"));
    size_t i = 0;
    Status failed = Status::Ok();
    unresolved_.ForEachMutable([&](int64_t, char* element, size_t) {
      const int64_t id = unresolved_locations_[i++];
      auto known = location_uuids_.find(id);
      if (known == location_uuids_.end() && failed.ok()) {
        st.Reset();
        st.Bind(1, id);
        auto row = st.Step();
        if (!row.ok()) {
          failed = row.status();
          return;
        }
        Uuid u = Uuid::Nil();  // a row of no location hashes zeros, as Recompute
        if (*row && st.Blob(0).size() == 16) u = st.UuidAt(0);
        known = location_uuids_.emplace(id, u).first;
      }
      if (known != location_uuids_.end() && !known->second.is_nil())
        std::memcpy(element + kEntryLocationOffset, known->second.bytes.data(), 16);
    });
    ES_RETURN_IF_ERROR(failed);
    unresolved_.HashInto(pending_);
    unresolved_.Clear();
    unresolved_locations_.clear();
  }
  // This thread hashes the last partial batch while the helper finishes.
  batch_.HashInto(pending_);
  batch_.Clear();
  for (auto& [owner, delta] : hasher_.Drain()) pending_[owner] += delta;
  return Status::Ok();
}

void OwnerDigests::Drop() {
  known_ = false;
  known_written_.clear();
  batch_.Clear();
  unresolved_.Clear();
  unresolved_locations_.clear();
  hasher_.Discard();
  pending_.clear();
  location_uuids_.clear();
}

bool OwnerDigests::pending() {
  return !batch_.empty() || !unresolved_.empty() || hasher_.busy() || !pending_.empty();
}

int OwnerDigests::OnCommit(void* self) {
  // Non-zero turns the COMMIT into a rollback: rows whose digest was not
  // stored must not be committed.
  return static_cast<OwnerDigests*>(self)->pending() ? 1 : 0;
}

void OwnerDigests::OnRollback(void* self) { static_cast<OwnerDigests*>(self)->Drop(); }

Result<LtHash> OwnerDigests::Get(DeviceRowId owner) {
  ES_ASSIGN_OR_RETURN(store::Stmt st, db_.Prepare("SELECT lthash FROM owner_digest WHERE owner = ?"));
  st.Bind(1, owner.value());
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return LtHash();
  auto h = LtHash::FromBytes(st.Blob(0));
  if (!h) return Corruption("owner_digest of device #" + std::to_string(owner.value()) + " is malformed");
  return *h;
}

Status OwnerDigests::Set(DeviceRowId owner, const LtHash& digest) {
  ES_RETURN_IF_ERROR(Settle());
  pending_.erase(owner.value());
  ES_ASSIGN_OR_RETURN(store::Stmt st,
                      db_.Prepare("INSERT INTO owner_digest(owner, lthash) VALUES(?, ?)"
                                  " ON CONFLICT(owner) DO UPDATE SET lthash = excluded.lthash"));
  std::string_view b = digest.bytes();
  st.Bind(1, owner.value()).BindBlob(2, b.data(), b.size());
  return st.Run();
}

Status OwnerDigests::Flush() {
  ES_RETURN_IF_ERROR(Settle());
  // Take the deltas first: the statements below change no watched row, but
  // a failure half-way must not leave deltas that were already stored.
  DeltaMap pending = std::move(pending_);
  pending_.clear();
  for (auto& [owner, delta] : pending) {
    if (delta.is_zero()) continue;
    ES_ASSIGN_OR_RETURN(LtHash d, Get(DeviceRowId(owner)));
    d += delta;
    ES_ASSIGN_OR_RETURN(store::Stmt st,
                        db_.Prepare("INSERT INTO owner_digest(owner, lthash) VALUES(?, ?)"
                                    " ON CONFLICT(owner) DO UPDATE SET lthash = excluded.lthash"));
    std::string_view b = d.bytes();
    st.Bind(1, owner).BindBlob(2, b.data(), b.size());
    ES_RETURN_IF_ERROR(st.Run());
  }
  return Status::Ok();
}

Result<LtHash> OwnerDigests::Recompute(DeviceRowId owner) {
  // This thread reads rows and builds elements; a hasher of its own (not
  // the transaction's) hashes them on the other core.
  ElementHasher hasher;
  ElementBatch batch;
  auto submit_if_full = [&] {
    if (batch.size() < kHashBatch) return;
    hasher.Submit(std::move(batch));
    batch = ElementBatch();
  };
  ES_ASSIGN_OR_RETURN(
      store::Stmt locs,
      db_.Prepare("SELECT uuid, root_path, name, seq, deleted FROM location WHERE owner = ?"));
  locs.Bind(1, owner.value());
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, locs.Step());
    if (!row) break;
    auto uuid = [&](int c) { return locs.Blob(c).size() == 16 ? locs.Blob(c).data() : nullptr; };
    const size_t start = AppendLocation(batch.buffer(), LocationFields{.uuid = uuid(0),
                                                                       .root_path = locs.Text(1),
                                                                       .name = locs.Text(2),
                                                                       .seq = locs.Int(3),
                                                                       .deleted = locs.Int(4) != 0});
    batch.Commit(owner.value(), +1, start);
    submit_if_full();
  }
  ES_ASSIGN_OR_RETURN(
      store::Stmt st,
      db_.Prepare(
          "SELECT e.uuid, e.parent, l.uuid, e.name, e.extension, e.kind, e.size, e.inode, e.created_ns,"
          " e.modified_ns, e.accessed_ns, e.content_hash, e.seq, e.deleted"
          " FROM entry e LEFT JOIN location l ON l.id = e.location WHERE e.owner = ?"));
  st.Bind(1, owner.value());
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    auto uuid = [&](int c) { return st.Blob(c).size() == 16 ? st.Blob(c).data() : nullptr; };
    const size_t start = AppendEntry(batch.buffer(), EntryFields{.uuid = uuid(0),
                                                                 .parent = uuid(1),
                                                                 .location = uuid(2),
                                                                 .name = st.Text(3),
                                                                 .extension = st.Text(4),
                                                                 .kind = st.Int(5),
                                                                 .size = st.Int(6),
                                                                 .inode = st.Int(7),
                                                                 .created_ns = st.Int(8),
                                                                 .modified_ns = st.Int(9),
                                                                 .accessed_ns = st.Int(10),
                                                                 .content_hash = st.Blob(11),
                                                                 .seq = st.Int(12),
                                                                 .deleted = st.Int(13) != 0});
    batch.Commit(owner.value(), +1, start);
    submit_if_full();
  }
  DeltaMap sum;
  batch.HashInto(sum);
  for (auto& [o, delta] : hasher.Drain()) sum[o] += delta;
  return sum[owner.value()];
}

}  // namespace entrysync
