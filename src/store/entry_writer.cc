#include "store/entry_writer.h"

namespace entrysync {
namespace {

constexpr const char* kInsertEntry =
    "INSERT INTO entry(uuid, owner, location, parent, name, extension, kind, size, inode,"
    " created_ns, modified_ns, accessed_ns, content_hash, seq, deleted) VALUES";
constexpr const char* kEntryValues = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
constexpr int kEntryParams = 15;
constexpr const char* kUpsertEntry =
    " ON CONFLICT(uuid) DO UPDATE SET owner = excluded.owner, location = excluded.location,"
    " parent = excluded.parent, name = excluded.name, extension = excluded.extension,"
    " kind = excluded.kind, size = excluded.size, inode = excluded.inode,"
    " created_ns = excluded.created_ns, modified_ns = excluded.modified_ns,"
    " accessed_ns = excluded.accessed_ns, content_hash = excluded.content_hash,"
    " seq = excluded.seq, deleted = excluded.deleted"
    // A row belongs to one owner for good: a uuid another owner holds is
    // left alone (no peer takes over this device's rows, or another's).
    " WHERE entry.owner = excluded.owner";
constexpr const char* kOnlyIfNewerEntry = " AND excluded.seq > entry.seq";

// PutEntries writes this many rows per statement: one statement keeps its
// cursors open across rows, so the uuid and (owner, seq) index inserts take
// SQLite's append fast path and the per-statement setup and teardown is paid
// once per 64 rows; 64 x 15 parameters stays under SQLite's historic 999.
// Measured (bench/README.md): half the instructions of one row per INSERT.
constexpr size_t kRowsPerInsert = 64;

std::string EntrySql(size_t rows) {
  std::string sql = kInsertEntry;
  for (size_t i = 0; i < rows; ++i) {
    if (i) sql += ',';
    sql += kEntryValues;
  }
  return sql + kUpsertEntry;
}

void BindEntry(store::Stmt& st, int base, DeviceRowId owner, LocationRowId loc, const EntryRecord& r) {
  st.Bind(base + 1, r.uuid).Bind(base + 2, owner.value()).Bind(base + 3, loc.value());
  if (r.parent.is_nil())
    st.BindNull(base + 4);
  else
    st.Bind(base + 4, r.parent);
  st.Bind(base + 5, r.name).Bind(base + 6, r.extension).Bind(base + 7, static_cast<int64_t>(r.kind));
  st.Bind(base + 8, static_cast<int64_t>(r.size)).Bind(base + 9, static_cast<int64_t>(r.inode));
  st.Bind(base + 10, r.created_ns).Bind(base + 11, r.modified_ns).Bind(base + 12, r.accessed_ns);
  if (r.content_hash.empty())
    st.BindNull(base + 13);
  else
    st.BindBlob(base + 13, r.content_hash.data(), r.content_hash.size());
  st.Bind(base + 14, r.seq.value()).Bind(base + 15, r.deleted ? 1 : 0);
}

constexpr const char* kPutLocation =
    "INSERT INTO location(uuid, owner, root_path, name, seq, deleted) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT(uuid) DO UPDATE SET owner = excluded.owner, root_path = excluded.root_path,"
    " name = excluded.name, seq = excluded.seq, deleted = excluded.deleted"
    " WHERE location.owner = excluded.owner";  // as for entries
constexpr const char* kOnlyIfNewerLocation = " AND excluded.seq > location.seq";

}  // namespace

Result<EntryWriter> EntryWriter::Make(Library& lib) {
  EntryWriter w(lib);
  store::Db& db = lib.db();
  ES_ASSIGN_OR_RETURN(w.put_entry_, db.Prepare(EntrySql(1)));
  ES_ASSIGN_OR_RETURN(w.put_entry_newer_, db.Prepare(EntrySql(1) + kOnlyIfNewerEntry));
  ES_ASSIGN_OR_RETURN(w.put_location_, db.Prepare(kPutLocation));
  ES_ASSIGN_OR_RETURN(w.put_location_newer_, db.Prepare(std::string(kPutLocation) + kOnlyIfNewerLocation));
  ES_ASSIGN_OR_RETURN(w.find_location_, db.Prepare("SELECT id FROM location WHERE uuid = ? AND owner = ?"));
  return w;
}

Result<LocationRowId> EntryWriter::LocationRow(DeviceRowId owner, const Uuid& location) {
  if (owner != locations_owner_) {
    locations_.clear();
    locations_owner_ = owner;
  }
  auto it = locations_.find(location);
  if (it != locations_.end()) return it->second;
  find_location_.Bind(1, location).Bind(2, owner.value());
  auto row = find_location_.Step();
  LocationRowId id(row.ok() && *row ? find_location_.Int(0) : 0);
  find_location_.Reset();
  if (!row.ok()) return row.status();
  if (id.value() == 0) return NotFound("unknown location " + location.ToString());
  locations_.emplace(location, id);
  return id;
}

Result<bool> EntryWriter::PutEntry(DeviceRowId owner, const EntryRecord& r, bool only_if_newer) {
  auto loc = LocationRow(owner, r.location);
  if (!loc.ok()) {
    return InvalidArgument("entry " + r.uuid.ToString() + " refers to " + loc.status().message());
  }
  store::Stmt& st = only_if_newer ? put_entry_newer_ : put_entry_;
  BindEntry(st, 0, owner, *loc, r);
  auto done = st.Step();
  st.Reset();
  if (!done.ok()) return done.status().Wrap("write entry " + r.uuid.ToString());
  return lib_->db().Changes() > 0;
}

namespace {

// Binds with SQLITE_STATIC: SQLite reads the caller's strings in place
// instead of copying each one (the copies and their frees cost about a
// quarter of the bulk path's instructions). REQUIRES: `r` outlives the
// statement's next step; PutEntries clears the bindings before returning.
void BindEntryStatic(sqlite3_stmt* st, int base, DeviceRowId owner, LocationRowId loc, const EntryRecord& r) {
  sqlite3_bind_blob(st, base + 1, r.uuid.bytes.data(), 16, SQLITE_STATIC);
  sqlite3_bind_int64(st, base + 2, owner.value());
  sqlite3_bind_int64(st, base + 3, loc.value());
  if (r.parent.is_nil())
    sqlite3_bind_null(st, base + 4);
  else
    sqlite3_bind_blob(st, base + 4, r.parent.bytes.data(), 16, SQLITE_STATIC);
  sqlite3_bind_text(st, base + 5, r.name.data(), static_cast<int>(r.name.size()), SQLITE_STATIC);
  sqlite3_bind_text(st, base + 6, r.extension.data(), static_cast<int>(r.extension.size()), SQLITE_STATIC);
  sqlite3_bind_int64(st, base + 7, static_cast<int64_t>(r.kind));
  sqlite3_bind_int64(st, base + 8, static_cast<int64_t>(r.size));
  sqlite3_bind_int64(st, base + 9, static_cast<int64_t>(r.inode));
  sqlite3_bind_int64(st, base + 10, r.created_ns);
  sqlite3_bind_int64(st, base + 11, r.modified_ns);
  sqlite3_bind_int64(st, base + 12, r.accessed_ns);
  if (r.content_hash.empty())
    sqlite3_bind_null(st, base + 13);
  else
    sqlite3_bind_blob(st, base + 13, r.content_hash.data(), static_cast<int>(r.content_hash.size()),
                      SQLITE_STATIC);
  sqlite3_bind_int64(st, base + 14, r.seq.value());
  sqlite3_bind_int64(st, base + 15, r.deleted ? 1 : 0);
}

}  // namespace

Result<uint64_t> EntryWriter::PutEntries(DeviceRowId owner, std::span<const EntryRecord> rows,
                                         bool only_if_newer) {
  uint64_t written = 0;
  size_t next = 0;
  if (rows.size() >= kRowsPerInsert) {
    // The WHERE of an upsert applies per conflicting row, so the multi-row
    // statement keeps PutEntry's only_if_newer semantics row by row.
    auto& slot = only_if_newer ? put_entries_newer_ : put_entries_;
    if (!slot) {
      std::string sql = EntrySql(kRowsPerInsert);
      if (only_if_newer) sql += kOnlyIfNewerEntry;
      sqlite3_stmt* raw = nullptr;
      if (sqlite3_prepare_v3(lib_->db().raw(), sql.c_str(), static_cast<int>(sql.size()),
                             SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
        return lib_->db().Error("prepare");
      }
      slot.reset(raw);
    }
    sqlite3_stmt* st = slot.get();
    // Leaves no binding pointing into `rows`, whichever way we return.
    struct Unbind {
      sqlite3_stmt* st;
      ~Unbind() {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
      }
    } unbind{st};
    for (; rows.size() - next >= kRowsPerInsert; next += kRowsPerInsert) {
      for (size_t i = 0; i < kRowsPerInsert; ++i) {
        const EntryRecord& r = rows[next + i];
        auto loc = LocationRow(owner, r.location);
        if (!loc.ok()) {
          return InvalidArgument("entry " + r.uuid.ToString() + " refers to " + loc.status().message());
        }
        BindEntryStatic(st, static_cast<int>(i) * kEntryParams, owner, *loc, r);
      }
      // The set digest takes the rows written from `rows` (store/digest.h).
      OwnerDigests& digests = lib_->digests();
      digests.BeginKnownRows();
      int rc = sqlite3_step(st);
      const auto batch = rows.subspan(next, kRowsPerInsert);
      if (rc != SQLITE_DONE) {
        Status s = IOError(std::string("sqlite: ") + sqlite3_errmsg(lib_->db().raw()));
        // The transaction rolls back, and the digest's deltas with it.
        (void)digests.EndKnownRows(owner, {});
        return s.Wrap("write entries " + rows[next].uuid.ToString() + " to " +
                      rows[next + kRowsPerInsert - 1].uuid.ToString());
      }
      sqlite3_reset(st);
      written += static_cast<uint64_t>(lib_->db().Changes());
      ES_RETURN_IF_ERROR(digests.EndKnownRows(owner, batch));
    }
  }
  for (; next < rows.size(); ++next) {
    ES_ASSIGN_OR_RETURN(bool w, PutEntry(owner, rows[next], only_if_newer));
    written += w ? 1 : 0;
  }
  return written;
}

Result<bool> EntryWriter::PutLocation(DeviceRowId owner, const LocationRecord& r, bool only_if_newer) {
  store::Stmt& st = only_if_newer ? put_location_newer_ : put_location_;
  st.Bind(1, r.uuid).Bind(2, owner.value()).Bind(3, r.root_path).Bind(4, r.name);
  st.Bind(5, r.seq.value()).Bind(6, r.deleted ? 1 : 0);
  auto done = st.Step();
  st.Reset();
  if (!done.ok()) return done.status().Wrap("write location " + r.uuid.ToString());
  return lib_->db().Changes() > 0;
}

}  // namespace entrysync
