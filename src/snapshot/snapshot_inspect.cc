// InspectSnapshot: the defensive checks of a snapshot file that may come
// from anywhere, from its raw bytes up to its rows.
#include <sqlite3.h>

#include <array>
#include <cctype>
#include <cstring>
#include <map>

#include "snapshot/snapshot.h"
#include "snapshot/snapshot_shared.h"
#include "snapshot/snapshot_sum.h"

// Generated from src/snapshot/schema/*.sql (cmake/embed.cmake).
extern const char* const es_snapshot_schema_texts[];

namespace entrysync {
namespace snapshot_internal {
namespace {

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The Corruption a user sees: one line naming the file.
Status Bad(const std::string& path, std::string why) {
  // SQLite's reports may span lines ("*** in database main ***\n..."): one line for users.
  const std::string banner = "*** in database main ***";
  if (size_t at = why.find(banner); at != std::string::npos) why.erase(at, banner.size());
  for (char& c : why)
    if (c == '\n' || c == '\r') c = ' ';
  size_t b = why.find_first_not_of(' ');
  return Corruption("snapshot " + path + ": " + why.substr(b == std::string::npos ? 0 : b));
}

// Checks the SQLite header, before SQLite reads anything (fileformat2.html):
// a rollback-journal SQLite file whose page count matches the file's size,
// with the snapshot application id and format version.
Status CheckHeader(const std::string& path, const FileScan& scan) {
  const uint8_t* h = scan.header;
  if (scan.size < 100 || std::memcmp(h, "SQLite format 3", 16) != 0) return Bad(path, "not a SQLite file");
  uint32_t page_size = (uint32_t{h[16]} << 8) | h[17];
  if (page_size == 1) page_size = 65536;
  if (page_size < 512 || (page_size & (page_size - 1)) != 0) return Bad(path, "bad page size in header");
  if (h[18] != 1 || h[19] != 1) return Bad(path, "not a rollback-journal database (WAL header)");
  if (Be32(h + 24) != Be32(h + 92)) return Bad(path, "header page count is not valid");
  uint64_t pages = Be32(h + 28);
  if (pages * page_size != scan.size)
    return Bad(path, "file is " + std::to_string(scan.size) + " bytes but its header says " +
                         std::to_string(pages * page_size) + " (truncated or extended)");
  if (Be32(h + 68) != kApplicationId) return Bad(path, "not an entrysync snapshot (application id)");
  uint32_t version = Be32(h + 60);
  if (version > static_cast<uint32_t>(kSnapshotFormatVersion))
    return InvalidArgument("snapshot " + path + ": format version " + std::to_string(version) +
                           " is newer than this build reads (" + std::to_string(kSnapshotFormatVersion) +
                           ")");
  if (version != static_cast<uint32_t>(kSnapshotFormatVersion))
    return Bad(path, "unknown format version " + std::to_string(version));
  return Status::Ok();
}

// A read-only connection of its own to the file being inspected. Any SQLite
// error on it means the file is damaged: its methods fail with Corruption
// and SQLite's reason.
class ReadOnlyDb {
 public:
  ReadOnlyDb() = default;
  ~ReadOnlyDb() { sqlite3_close_v2(db_); }
  ReadOnlyDb(const ReadOnlyDb&) = delete;
  ReadOnlyDb& operator=(const ReadOnlyDb&) = delete;

  Status Open(const std::string& path) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) return Corruption(db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    return Status::Ok();
  }
  sqlite3* raw() const { return db_; }
  const char* ErrMsg() const { return sqlite3_errmsg(db_); }

  // A statement the caller finalizes.
  Result<sqlite3_stmt*> Prepare(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return Corruption(ErrMsg());
    return st;
  }

  // The first `cols` integer columns of the first row of `sql` into `out`.
  Status OneRow(const std::string& sql, int cols, int64_t* out) {
    ES_ASSIGN_OR_RETURN(sqlite3_stmt * st, Prepare(sql));
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
      for (int i = 0; i < cols; ++i) out[i] = sqlite3_column_int64(st, i);
    }
    std::string err = r == SQLITE_ROW ? "" : (r == SQLITE_DONE ? "no row" : ErrMsg());
    sqlite3_finalize(st);
    if (!err.empty()) return Corruption(err);
    return Status::Ok();
  }

 private:
  sqlite3* db_ = nullptr;
};

Status QuickCheck(ReadOnlyDb& db) {
  ES_ASSIGN_OR_RETURN(sqlite3_stmt * st, db.Prepare("PRAGMA quick_check(1)"));
  int r = sqlite3_step(st);
  std::string res = r == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(st, 0)) : db.ErrMsg();
  sqlite3_finalize(st);
  if (res != "ok") return Corruption("quick_check: " + res);
  return Status::Ok();
}

// The structure of the database on `db`: every schema object (type, name,
// table) and every column of the format's tables (name, type, not null,
// primary key), one line each; comments and CHECK constraints aside. The
// error of SQLite when it cannot read the schema.
Result<std::string> StructureOf(sqlite3* db) {
  std::string out;
  auto each_row = [&](const std::string& sql) -> Status {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      return Corruption(sqlite3_errmsg(db));
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* v = sqlite3_column_text(st, i);
        out += v ? reinterpret_cast<const char*>(v) : "NULL";
        out += '|';
      }
      out += '\n';
    }
    Status s = r == SQLITE_DONE ? Status::Ok() : Corruption(sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return s;
  };
  ES_RETURN_IF_ERROR(each_row("SELECT type, name, tbl_name FROM main.sqlite_schema ORDER BY name"));
  for (const char* table : {"meta", "location", "entry"})
    ES_RETURN_IF_ERROR(
        each_row(std::string("SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo('") + table + "')"));
  return out;
}

// A file's SQL runs when it is read: a view, a trigger or a table of
// another shape in place of the format's could make reading it do anything
// SQL can (a recursive view never ends). So the structure must be exactly
// the one the writer creates from the format's schema.
Status CheckStructure(ReadOnlyDb& db) {
  static const Result<std::string> expected = []() -> Result<std::string> {
    sqlite3* mem = nullptr;
    if (sqlite3_open(":memory:", &mem) != SQLITE_OK) {
      sqlite3_close(mem);
      return Internal("cannot open an in-memory database");
    }
    Result<std::string> r = Internal("the snapshot schema does not build");
    if (sqlite3_exec(mem, es_snapshot_schema_texts[kSnapshotFormatVersion - 1], nullptr, nullptr, nullptr) ==
        SQLITE_OK)
      r = StructureOf(mem);
    sqlite3_close(mem);
    return r;
  }();
  ES_RETURN_IF_ERROR(expected.status());
  ES_ASSIGN_OR_RETURN(std::string actual, StructureOf(db.raw()));
  if (actual != *expected)
    return Corruption("tables, views, indexes or triggers are not the snapshot format's");
  return Status::Ok();
}

// The value of meta row `st` as a uuid or an integer, or Corruption naming
// `key` when it has another type.
Status UuidOf(sqlite3_stmt* st, const std::string& key, Uuid* out) {
  if (sqlite3_column_type(st, 1) != SQLITE_BLOB || sqlite3_column_bytes(st, 1) != 16)
    return Corruption("metadata '" + key + "' is not a 16-byte uuid");
  *out = Uuid::FromBytes(sqlite3_column_blob(st, 1));
  return Status::Ok();
}
Status IntOf(sqlite3_stmt* st, const std::string& key, int64_t* out) {
  if (sqlite3_column_type(st, 1) != SQLITE_INTEGER)
    return Corruption("metadata '" + key + "' is not an integer");
  *out = sqlite3_column_int64(st, 1);
  return Status::Ok();
}

// A meta BLOB of exactly out->size() bytes, or Corruption naming `key`.
template <size_t N>
Status BytesOf(sqlite3_stmt* st, const std::string& key, std::array<uint8_t, N>* out) {
  if (sqlite3_column_type(st, 1) != SQLITE_BLOB || sqlite3_column_bytes(st, 1) != static_cast<int>(N))
    return Corruption("metadata '" + key + "' is not " + std::to_string(N) + " bytes");
  std::memcpy(out->data(), sqlite3_column_blob(st, 1), N);
  return Status::Ok();
}

// Stores the value of meta row `st` (named `key`) in `m` (the checkpoint's
// parts in `cp`), checking its type; ignores keys it does not know.
Status ReadMetaValue(sqlite3_stmt* st, const std::string& key, Meta* m, Checkpoint* cp) {
  int64_t v = 0;
  Status s;
  if (key == "checkpoint_digest")
    s = BytesOf(st, key, &cp->digest);
  else if (key == "checkpoint_public_key")
    s = BytesOf(st, key, &cp->public_key);
  else if (key == "checkpoint_signature")
    s = BytesOf(st, key, &cp->signature);
  else if (key == "format_version")
    s = IntOf(st, key, &m->format_version);
  else if (key == "library_id")
    s = UuidOf(st, key, &m->library_id);
  else if (key == "owner_uuid")
    s = UuidOf(st, key, &m->owner);
  else if (key == "exported_by")
    s = UuidOf(st, key, &m->exported_by);
  else if (key == "owner_name") {
    if (sqlite3_column_type(st, 1) != SQLITE_TEXT)
      s = Corruption("metadata 'owner_name' is not text");
    else
      m->owner_name = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
  } else if (key == "epoch") {
    s = IntOf(st, key, &v);
    m->epoch = Epoch(static_cast<uint64_t>(v));
  } else if (key == "max_seq") {
    s = IntOf(st, key, &v);
    m->max_seq = Seq(v);
  } else if (key == "entries")
    s = IntOf(st, key, &m->entries);
  else if (key == "locations")
    s = IntOf(st, key, &m->locations);
  else if (key == "content_sum") {
    s = IntOf(st, key, &v);
    m->content_sum = static_cast<uint64_t>(v);
  }
  return s;
}

// Reads the meta table, each value with the type it must have; every key
// present, the format version the header's, no negative count or seq.
Result<Meta> ReadCheckedMeta(ReadOnlyDb& db) {
  Meta m;
  Checkpoint cp;
  ES_ASSIGN_OR_RETURN(sqlite3_stmt * st, db.Prepare("SELECT key, value, typeof(value) FROM main.meta"));
  std::map<std::string, int> seen;
  Status s;
  int r;
  while (s.ok() && (r = sqlite3_step(st)) == SQLITE_ROW) {
    const char* k = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    std::string key = k ? k : "";
    seen[key]++;
    s = ReadMetaValue(st, key, &m, &cp);
  }
  if (s.ok() && r != SQLITE_DONE) s = Corruption(std::string("metadata: ") + db.ErrMsg());
  sqlite3_finalize(st);
  ES_RETURN_IF_ERROR(s);
  for (const char* k : {"format_version", "library_id", "owner_uuid", "owner_name", "epoch", "max_seq",
                        "entries", "locations", "content_sum", "exported_by"}) {
    if (!seen.count(k)) return Corruption(std::string("metadata '") + k + "' missing");
  }
  if (m.format_version != kSnapshotFormatVersion)
    return Corruption("metadata format_version " + std::to_string(m.format_version) +
                      " does not match the header's " + std::to_string(kSnapshotFormatVersion));
  if (m.entries < 0 || m.locations < 0 || m.max_seq.value() < 0)
    return Corruption("negative count or seq in metadata");
  // The owner's checkpoint: all three keys or none; its signature must
  // verify for this owner, epoch and max seq (docs/trust.md).
  const size_t parts = seen.count("checkpoint_digest") + seen.count("checkpoint_public_key") +
                       seen.count("checkpoint_signature");
  if (parts != 0 && parts != 3) return Corruption("metadata 'checkpoint_*' is incomplete");
  if (parts == 3) {
    cp.owner = m.owner;
    cp.epoch = m.epoch;
    cp.seq = m.max_seq;
    Status ok = VerifyCheckpoint(cp, m.library_id);
    if (!ok.ok()) return Corruption("its checkpoint does not verify: " + ok.message());
    m.checkpoint = cp;
  }
  return m;
}

// The rows against the metadata: the counts, no entry above max_seq, no
// entry without its location.
Status CheckRows(ReadOnlyDb& db, const Meta& m) {
  int64_t ec[2] = {0, 0}, lc[2] = {0, 0}, orphans = 0;
  ES_RETURN_IF_ERROR(db.OneRow("SELECT count(*), coalesce(max(seq), 0) FROM main.entry", 2, ec));
  ES_RETURN_IF_ERROR(db.OneRow("SELECT count(*), coalesce(max(seq), 0) FROM main.location", 2, lc));
  if (ec[0] != m.entries)
    return Corruption("holds " + std::to_string(ec[0]) + " entries, metadata says " +
                      std::to_string(m.entries));
  if (lc[0] != m.locations)
    return Corruption("holds " + std::to_string(lc[0]) + " locations, metadata says " +
                      std::to_string(m.locations));
  if (ec[1] > m.max_seq.value())
    return Corruption("holds entry seq " + std::to_string(ec[1]) + " above max_seq " +
                      std::to_string(m.max_seq.value()));
  ES_RETURN_IF_ERROR(db.OneRow(
      "SELECT count(*) FROM main.entry WHERE location NOT IN (SELECT id FROM main.location)", 1, &orphans));
  if (orphans != 0) return Corruption(std::to_string(orphans) + " entries refer to no location");
  return Status::Ok();
}

Status CheckContentSum(ReadOnlyDb& db, const Meta& m) {
  int64_t sums[3];
  ES_RETURN_IF_ERROR(db.OneRow(ContentSumQuery("main"), 3, sums));
  if (CombineSums(sums[0], sums[1], sums[2]) != m.content_sum)
    return Corruption("content checksum mismatch (rows altered)");
  return Status::Ok();
}

// Everything after the header, on a connection of its own. Errors are
// plain reasons (the caller names the file).
Result<SnapshotInfo> CheckContents(const std::string& path, const FileScan& scan, bool check_sum) {
  ReadOnlyDb db;
  ES_RETURN_IF_ERROR(db.Open(path));
  ES_RETURN_IF_ERROR(RegisterSum(db.raw()));
  ES_RETURN_IF_ERROR(QuickCheck(db));
  ES_RETURN_IF_ERROR(CheckStructure(db));
  ES_ASSIGN_OR_RETURN(Meta m, ReadCheckedMeta(db));
  ES_RETURN_IF_ERROR(CheckRows(db, m));
  if (check_sum) ES_RETURN_IF_ERROR(CheckContentSum(db, m));
  return InfoOf(m, scan);
}

}  // namespace

Result<SnapshotInfo> InspectFile(const std::string& path, const std::optional<std::string>& expected_sha256) {
  ES_ASSIGN_OR_RETURN(FileScan scan, ScanFile(path, /*fsync_it=*/false));
  if (expected_sha256 && Lower(*expected_sha256) != scan.sha256)
    return Bad(path, "SHA-256 mismatch (expected " + Lower(*expected_sha256).substr(0, 16) +
                         "..., file has " + scan.sha256.substr(0, 16) + "...)");
  ES_RETURN_IF_ERROR(CheckHeader(path, scan));
  // The row checksum guards against damage after the file was written.
  // A file whose SHA-256 equals the one its exporter computed while
  // writing it (given by the caller, received over an authenticated
  // channel) cannot have such damage: the sum is implied and skipped.
  auto r = CheckContents(path, scan, /*check_sum=*/!expected_sha256);
  if (!r.ok()) {
    if (r.status().code() == Code::kCorruption) return Bad(path, r.status().message());
    return r.status().Wrap("snapshot " + path);
  }
  return r;
}

}  // namespace snapshot_internal

Result<SnapshotInfo> InspectSnapshot(const std::string& path) {
  return snapshot_internal::InspectFile(path, std::nullopt);
}

}  // namespace entrysync
