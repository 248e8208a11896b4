#include "store/digest.h"

#include <cstring>
#include <string_view>

namespace entrysync {
namespace {

// Builds an element: fixed-width little-endian integers, u32-length-prefixed
// strings, 16-byte uuids (zeros for none).
class Element {
 public:
  explicit Element(char tag) { out_.push_back(tag); }
  Element& U8(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Element& I64(int64_t v) {
    auto u = static_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((u >> (8 * i)) & 0xFF));
    return *this;
  }
  Element& Bytes(std::string_view s) {
    auto n = static_cast<uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
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
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string_view BlobArg(sqlite3_value* v) {
  const void* p = sqlite3_value_blob(v);
  int n = sqlite3_value_bytes(v);
  return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string_view();
}

std::string_view TextArg(sqlite3_value* v) {
  const unsigned char* p = sqlite3_value_text(v);
  int n = sqlite3_value_bytes(v);
  return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string_view();
}

const void* UuidArg(sqlite3_value* v) {
  std::string_view b = BlobArg(v);
  return b.size() == 16 ? b.data() : nullptr;
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
  Element e('E');
  e.Uuid16(r.uuid.bytes.data()).Uuid16(r.parent.is_nil() ? nullptr : r.parent.bytes.data());
  e.Uuid16(r.location.bytes.data()).Bytes(r.name).Bytes(r.extension).U8(static_cast<uint8_t>(r.kind));
  e.I64(static_cast<int64_t>(r.size)).I64(static_cast<int64_t>(r.inode));
  e.I64(r.created_ns).I64(r.modified_ns).I64(r.accessed_ns).Bytes(r.content_hash);
  e.I64(r.seq.value()).U8(r.deleted ? 1 : 0);
  return e.Take();
}

std::string LocationElement(const LocationRecord& r) {
  Element e('L');
  e.Uuid16(r.uuid.bytes.data()).Bytes(r.root_path).Bytes(r.name).I64(r.seq.value()).U8(r.deleted ? 1 : 0);
  return e.Take();
}

OwnerDigests::OwnerDigests(store::Db& db) : db_(db) {
  sqlite3* raw = db.raw();
  // Deterministic so SQLite may use them in triggers; DIRECTONLY so a
  // schema object in a foreign file cannot call them.
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;
  sqlite3_create_function(raw, "es_owner_uuid", 1, flags, nullptr, &OwnerUuidFn, nullptr, nullptr);
  // Not DIRECTONLY: the triggers of the library's own schema call them.
  sqlite3_create_function(raw, "es_digest_entry", 16, SQLITE_UTF8, this, &EntryFn, nullptr, nullptr);
  sqlite3_create_function(raw, "es_digest_location", 7, SQLITE_UTF8, this, &LocationFn, nullptr, nullptr);
  sqlite3_commit_hook(raw, &OwnerDigests::OnCommit, this);
  sqlite3_rollback_hook(raw, &OwnerDigests::OnRollback, this);
}

OwnerDigests::~OwnerDigests() {
  sqlite3* raw = db_.raw();
  if (!raw) return;
  sqlite3_commit_hook(raw, nullptr, nullptr);
  sqlite3_rollback_hook(raw, nullptr, nullptr);
}

// es_digest_entry(sign, owner, uuid, parent, location_uuid, name, extension,
// kind, size, inode, created_ns, modified_ns, accessed_ns, content_hash,
// seq, deleted): sign +1 adds the row version to its owner's digest, -1
// removes it.
void OwnerDigests::EntryFn(sqlite3_context* ctx, int /*argc*/, sqlite3_value** a) {
  auto* self = static_cast<OwnerDigests*>(sqlite3_user_data(ctx));
  Element e('E');
  e.Uuid16(UuidArg(a[2])).Uuid16(UuidArg(a[3])).Uuid16(UuidArg(a[4]));
  e.Bytes(TextArg(a[5])).Bytes(TextArg(a[6])).U8(static_cast<uint8_t>(sqlite3_value_int64(a[7])));
  for (int i = 8; i <= 12; ++i) e.I64(sqlite3_value_int64(a[i]));
  e.Bytes(BlobArg(a[13])).I64(sqlite3_value_int64(a[14])).U8(sqlite3_value_int64(a[15]) ? 1 : 0);
  LtHash& d = self->pending_[sqlite3_value_int64(a[1])];
  if (sqlite3_value_int64(a[0]) > 0)
    d.Add(e.Take());
  else
    d.Remove(e.Take());
  sqlite3_result_null(ctx);
}

// es_digest_location(sign, owner, uuid, root_path, name, seq, deleted).
void OwnerDigests::LocationFn(sqlite3_context* ctx, int /*argc*/, sqlite3_value** a) {
  auto* self = static_cast<OwnerDigests*>(sqlite3_user_data(ctx));
  Element e('L');
  e.Uuid16(UuidArg(a[2])).Bytes(TextArg(a[3])).Bytes(TextArg(a[4])).I64(sqlite3_value_int64(a[5]));
  e.U8(sqlite3_value_int64(a[6]) ? 1 : 0);
  LtHash& d = self->pending_[sqlite3_value_int64(a[1])];
  if (sqlite3_value_int64(a[0]) > 0)
    d.Add(e.Take());
  else
    d.Remove(e.Take());
  sqlite3_result_null(ctx);
}

int OwnerDigests::OnCommit(void* self) {
  // Non-zero turns the COMMIT into a rollback: rows whose digest was not
  // stored must not be committed.
  return static_cast<OwnerDigests*>(self)->pending_.empty() ? 0 : 1;
}

void OwnerDigests::OnRollback(void* self) { static_cast<OwnerDigests*>(self)->pending_.clear(); }

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
  pending_.erase(owner.value());
  ES_ASSIGN_OR_RETURN(store::Stmt st,
                      db_.Prepare("INSERT INTO owner_digest(owner, lthash) VALUES(?, ?)"
                                  " ON CONFLICT(owner) DO UPDATE SET lthash = excluded.lthash"));
  std::string_view b = digest.bytes();
  st.Bind(1, owner.value()).BindBlob(2, b.data(), b.size());
  return st.Run();
}

Status OwnerDigests::Flush() {
  // Take the deltas first: Set's statements fire no trigger, but a failure
  // half-way must not leave deltas that were already stored.
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [owner, delta] : pending) {
    if (delta.is_zero()) continue;
    ES_ASSIGN_OR_RETURN(LtHash d, Get(DeviceRowId(owner)));
    d += delta;
    ES_RETURN_IF_ERROR(Set(DeviceRowId(owner), d));
  }
  return Status::Ok();
}

Result<LtHash> OwnerDigests::Recompute(DeviceRowId owner) {
  LtHash h;
  ES_ASSIGN_OR_RETURN(
      store::Stmt locs,
      db_.Prepare("SELECT uuid, root_path, name, seq, deleted FROM location WHERE owner = ?"));
  locs.Bind(1, owner.value());
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, locs.Step());
    if (!row) break;
    LocationRecord r;
    r.uuid = locs.UuidAt(0);
    r.root_path = std::string(locs.Text(1));
    r.name = std::string(locs.Text(2));
    r.seq = Seq(locs.Int(3));
    r.deleted = locs.Int(4) != 0;
    h.Add(LocationElement(r));
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
    Element e('E');
    auto uuid = [&](int c) { return st.Blob(c).size() == 16 ? st.Blob(c).data() : nullptr; };
    e.Uuid16(uuid(0)).Uuid16(uuid(1)).Uuid16(uuid(2)).Bytes(st.Text(3)).Bytes(st.Text(4));
    e.U8(static_cast<uint8_t>(st.Int(5)));
    for (int c = 6; c <= 10; ++c) e.I64(st.Int(c));
    e.Bytes(st.Blob(11)).I64(st.Int(12)).U8(st.Int(13) ? 1 : 0);
    h.Add(e.Take());
  }
  return h;
}

}  // namespace entrysync
