#include "store/digest.h"

#include <cstring>
#include <map>
#include <span>
#include <string_view>

namespace entrysync {
namespace {

// Appends an element to `out`: fixed-width little-endian integers,
// u32-length-prefixed strings, 16-byte uuids (zeros for none).
class Element {
 public:
  Element(std::string& out, char tag) : out_(out) { out_.push_back(tag); }
  Element& U8(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Element& I64(int64_t v) {
    auto u = static_cast<uint64_t>(v);
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((u >> (8 * i)) & 0xFF);
    out_.append(b, 8);
    return *this;
  }
  Element& Bytes(std::string_view s) {
    auto n = static_cast<uint32_t>(s.size());
    char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    out_.append(b, 4);
    out_.append(s);
    return *this;
  }
  Element& Uuid16(const void* p) {
    if (p)
      out_.append(static_cast<const char*>(p), 16);
    else
      out_.append(16, '\0');
    return *this;
  }

 private:
  std::string& out_;
};

// Element's encoding written into space already sized for it: the hook's
// hot path (one size computation and one resize per row, no appends).
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
  Element e(out, 'E');
  e.Uuid16(r.uuid.bytes.data()).Uuid16(r.parent.is_nil() ? nullptr : r.parent.bytes.data());
  e.Uuid16(r.location.bytes.data()).Bytes(r.name).Bytes(r.extension).U8(static_cast<uint8_t>(r.kind));
  e.I64(static_cast<int64_t>(r.size)).I64(static_cast<int64_t>(r.inode));
  e.I64(r.created_ns).I64(r.modified_ns).I64(r.accessed_ns).Bytes(r.content_hash);
  e.I64(r.seq.value()).U8(r.deleted ? 1 : 0);
  return out;
}

std::string LocationElement(const LocationRecord& r) {
  std::string out;
  Element e(out, 'L');
  e.Uuid16(r.uuid.bytes.data()).Bytes(r.root_path).Bytes(r.name).I64(r.seq.value()).U8(r.deleted ? 1 : 0);
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
  std::string& out = into.buffer();
  const size_t start = out.size();
  const std::string_view name = r.Text(5), extension = r.Text(6), content_hash = r.Blob(13);
  out.resize(start + kEntryFixedBytes + name.size() + extension.size() + content_hash.size());
  ElementAt e(out.data() + start);
  e.U8('E').Uuid16(r.UuidBytes(1)).Uuid16(r.UuidBytes(4));
  e.Uuid16(resolved ? known->second.bytes.data() : nullptr);
  e.Bytes(name).Bytes(extension).U8(static_cast<uint8_t>(r.Int(7)));
  for (int i = 8; i <= 12; ++i) e.I64(r.Int(i));
  e.Bytes(content_hash).I64(r.Int(14)).U8(r.Int(15) ? 1 : 0);
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

// EntryElement(r), written in place.
void OwnerDigests::AddRecord(int64_t owner, const EntryRecord& r) {
  std::string& out = batch_.buffer();
  const size_t start = out.size();
  out.resize(start + kEntryFixedBytes + r.name.size() + r.extension.size() + r.content_hash.size());
  ElementAt e(out.data() + start);
  e.U8('E').Uuid16(r.uuid.bytes.data()).Uuid16(r.parent.is_nil() ? nullptr : r.parent.bytes.data());
  e.Uuid16(r.location.bytes.data()).Bytes(r.name).Bytes(r.extension).U8(static_cast<uint8_t>(r.kind));
  e.I64(static_cast<int64_t>(r.size)).I64(static_cast<int64_t>(r.inode));
  e.I64(r.created_ns).I64(r.modified_ns).I64(r.accessed_ns).Bytes(r.content_hash);
  e.I64(r.seq.value()).U8(r.deleted ? 1 : 0);
  batch_.Commit(owner, +1, start);
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
  std::string& out = batch_.buffer();
  const size_t start = out.size();
  Element e(out, 'L');
  e.Uuid16(r.UuidBytes(1)).Bytes(r.Text(3)).Bytes(r.Text(4)).I64(r.Int(5)).U8(r.Int(6) ? 1 : 0);
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
    const size_t start = batch.buffer().size();
    Element e(batch.buffer(), 'L');
    e.Uuid16(locs.Blob(0).size() == 16 ? locs.Blob(0).data() : nullptr)
        .Bytes(locs.Text(1))
        .Bytes(locs.Text(2));
    e.I64(locs.Int(3)).U8(locs.Int(4) ? 1 : 0);
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
    const size_t start = batch.buffer().size();
    Element e(batch.buffer(), 'E');
    auto uuid = [&](int c) { return st.Blob(c).size() == 16 ? st.Blob(c).data() : nullptr; };
    e.Uuid16(uuid(0)).Uuid16(uuid(1)).Uuid16(uuid(2)).Bytes(st.Text(3)).Bytes(st.Text(4));
    e.U8(static_cast<uint8_t>(st.Int(5)));
    for (int c = 6; c <= 10; ++c) e.I64(st.Int(c));
    e.Bytes(st.Blob(11)).I64(st.Int(12)).U8(st.Int(13) ? 1 : 0);
    batch.Commit(owner.value(), +1, start);
    submit_if_full();
  }
  DeltaMap sum;
  batch.HashInto(sum);
  for (auto& [o, delta] : hasher.Drain()) sum[o] += delta;
  return sum[owner.value()];
}

}  // namespace entrysync
