#include "snapshot/snapshot.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "base/hash.h"

// Generated from src/snapshot/schema/*.sql (cmake/embed.cmake).
extern const char* const es_snapshot_schema_names[];
extern const char* const es_snapshot_schema_texts[];
extern const int es_snapshot_schema_count;

namespace entrysync {
namespace {

namespace fs = std::filesystem;
using store::Db;
using store::Stmt;

// Name under which the snapshot file is attached to a library's connection.
constexpr const char* kSchema = "es_snapshot";
constexpr uint32_t kApplicationId = 0x45534e50;  // 'ESNP'
constexpr int kPageSize = 4096;
constexpr const char* kSumFunction = "es_snapshot_sum";

// Columns hashed by the content checksum, per table (docs/snapshot-format.md).
constexpr const char* kEntrySumColumns =
    "seq, uuid, location, parent, name, extension, kind, size, inode, created_ns, modified_ns,"
    " accessed_ns, content_hash, deleted";
constexpr const char* kLocationSumColumns = "id, uuid, root_path, name, seq, deleted";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- content checksum: es_snapshot_sum(v1, v2, ...) ----
//
// An aggregate over rows: each row's values are serialized (a type tag, then
// 8 little-endian bytes for numbers, or a 4-byte length and the bytes for
// text and blobs), the row's CRC-32 is spread over 64 bits by an odd
// multiplier, and the rows' values are summed mod 2^64. Independent of row
// order; any change of one row changes the sum. It guards against accidental
// damage; an attacker is stopped by the SHA-256 the importer is given.
void SumStep(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto* acc = static_cast<uint64_t*>(sqlite3_aggregate_context(ctx, sizeof(uint64_t)));
  if (acc == nullptr) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  thread_local std::string row;
  row.clear();
  for (int i = 0; i < argc; ++i) {
    sqlite3_value* v = argv[i];
    switch (sqlite3_value_type(v)) {
      case SQLITE_INTEGER: {
        int64_t x = sqlite3_value_int64(v);
        char b[9] = {'i'};
        for (int k = 0; k < 8; ++k) b[1 + k] = static_cast<char>(static_cast<uint64_t>(x) >> (8 * k));
        row.append(b, 9);
        break;
      }
      case SQLITE_FLOAT: {
        double d = sqlite3_value_double(v);
        uint64_t x;
        std::memcpy(&x, &d, 8);
        char b[9] = {'f'};
        for (int k = 0; k < 8; ++k) b[1 + k] = static_cast<char>(x >> (8 * k));
        row.append(b, 9);
        break;
      }
      case SQLITE_NULL:
        row.push_back('n');
        break;
      default: {  // text or blob, as stored
        bool text = sqlite3_value_type(v) == SQLITE_TEXT;
        const void* p = text ? static_cast<const void*>(sqlite3_value_text(v)) : sqlite3_value_blob(v);
        uint32_t n = static_cast<uint32_t>(sqlite3_value_bytes(v));
        char b[5] = {text ? 't' : 'b'};
        for (int k = 0; k < 4; ++k) b[1 + k] = static_cast<char>(n >> (8 * k));
        row.append(b, 5);
        if (n > 0) row.append(static_cast<const char*>(p), n);
      }
    }
  }
  uint64_t crc = Crc32(row.data(), row.size());
  *acc += (crc + 1) * 0x9E3779B97F4A7C15ULL;
}

void SumFinal(sqlite3_context* ctx) {
  auto* acc = static_cast<uint64_t*>(sqlite3_aggregate_context(ctx, 0));
  sqlite3_result_int64(ctx, static_cast<int64_t>(acc ? *acc : 0));
}

Status RegisterSum(sqlite3* db) {
  int rc = sqlite3_create_function_v2(db, kSumFunction, -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                      nullptr, SumStep, SumFinal, nullptr);
  if (rc != SQLITE_OK) return Internal(std::string("register checksum function: ") + sqlite3_errstr(rc));
  return Status::Ok();
}

// The content checksum of the snapshot tables in `schema` (of `db`): every
// location row, every entry row and every meta row but 'content_sum'.
Result<uint64_t> ContentSum(Db& db, const std::string& schema) {
  std::string sql = std::string("SELECT (SELECT ") + kSumFunction + "(" + kEntrySumColumns + ") FROM " +
                    schema + ".entry), (SELECT " + kSumFunction + "(" + kLocationSumColumns + ") FROM " +
                    schema + ".location), (SELECT " + kSumFunction + "(key, value) FROM " + schema +
                    ".meta WHERE key <> 'content_sum')";
  ES_ASSIGN_OR_RETURN(Stmt st, db.Prepare(sql));
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Internal("checksum query returned no row");
  // Different multipliers per table so a row cannot move between tables unseen.
  return static_cast<uint64_t>(st.Int(0)) + 3 * static_cast<uint64_t>(st.Int(1)) +
         5 * static_cast<uint64_t>(st.Int(2));
}

// ---- small helpers ----

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

// ATTACHes a file to a library connection; DETACHes on destruction.
// REQUIRES: destroyed after any transaction that uses it has ended.
class Attachment {
 public:
  explicit Attachment(Db& db) : db_(db) {}
  ~Attachment() {
    if (attached_) (void)db_.Exec(std::string("DETACH DATABASE ") + kSchema);
  }
  Status Attach(const std::string& path) {
    ES_ASSIGN_OR_RETURN(Stmt st, db_.Prepare(std::string("ATTACH DATABASE ? AS ") + kSchema));
    st.Bind(1, path);
    ES_RETURN_IF_ERROR(st.Run().Wrap("attach snapshot " + path));
    attached_ = true;
    return Status::Ok();
  }

 private:
  Db& db_;
  bool attached_ = false;
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

Result<int64_t> QueryInt(Db& db, const std::string& sql, std::optional<int64_t> arg = std::nullopt) {
  ES_ASSIGN_OR_RETURN(Stmt st, db.Prepare(sql));
  if (arg) st.Bind(1, *arg);
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Internal("no row from: " + sql);
  return st.Int(0);
}

Status Exec(Db& db, const std::string& sql, std::initializer_list<int64_t> args) {
  ES_ASSIGN_OR_RETURN(Stmt st, db.Prepare(sql));
  int i = 1;
  for (int64_t a : args) st.Bind(i++, a);
  return st.Run();
}

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

// Reads the whole file: its SHA-256 (hex), size and first 100 bytes.
struct FileScan {
  std::string sha256;
  uint64_t size = 0;
  uint8_t header[100] = {};
};
Result<FileScan> ScanFile(const std::string& path, bool fsync_it) {
  int fd = ::open(path.c_str(), fsync_it ? O_RDWR : O_RDONLY);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("snapshot " + path + ": no such file");
    return IOError("open snapshot " + path + ": " + std::strerror(errno));
  }
  FileScan out;
  Sha256 sha;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return IOError("read snapshot " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    if (out.size < sizeof(out.header)) {
      size_t k = std::min<size_t>(sizeof(out.header) - out.size, static_cast<size_t>(n));
      std::memcpy(out.header + out.size, buf.data(), k);
    }
    sha.Update(buf.data(), static_cast<size_t>(n));
    out.size += static_cast<uint64_t>(n);
  }
  if (fsync_it && ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return IOError("sync snapshot " + path + ": " + std::strerror(e));
  }
  ::close(fd);
  out.sha256 = sha.FinishHex();
  return out;
}

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

Status SyncDir(const std::string& file) {
  std::string dir = fs::path(file).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return IOError("open folder " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IOError("sync folder " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The metadata of a snapshot (its meta table), validated.
struct Meta {
  int64_t format_version = 0;
  Uuid library_id;
  Uuid owner;
  std::string owner_name;
  Epoch epoch;
  Seq max_seq;
  int64_t entries = 0;
  int64_t locations = 0;
  uint64_t content_sum = 0;
  Uuid exported_by;
};

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

// What a snapshot file holds: its metadata and the scan of its bytes.
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
  return info;
}

Result<SnapshotInfo> Inspect(const std::string& path, const std::optional<std::string>& expected_sha256) {
  auto bad = [&](std::string why) {
    // SQLite's reports may span lines ("*** in database main ***\n..."): one line for users.
    const std::string banner = "*** in database main ***";
    if (size_t at = why.find(banner); at != std::string::npos) why.erase(at, banner.size());
    for (char& c : why)
      if (c == '\n' || c == '\r') c = ' ';
    size_t b = why.find_first_not_of(' ');
    return Corruption("snapshot " + path + ": " + why.substr(b == std::string::npos ? 0 : b));
  };
  ES_ASSIGN_OR_RETURN(FileScan scan, ScanFile(path, /*fsync_it=*/false));
  if (expected_sha256 && Lower(*expected_sha256) != scan.sha256)
    return bad("SHA-256 mismatch (expected " + Lower(*expected_sha256).substr(0, 16) + "..., file has " +
               scan.sha256.substr(0, 16) + "...)");
  // The SQLite header, before SQLite reads anything (fileformat2.html).
  const uint8_t* h = scan.header;
  if (scan.size < 100 || std::memcmp(h, "SQLite format 3", 16) != 0) return bad("not a SQLite file");
  uint32_t page_size = (uint32_t{h[16]} << 8) | h[17];
  if (page_size == 1) page_size = 65536;
  if (page_size < 512 || (page_size & (page_size - 1)) != 0) return bad("bad page size in header");
  if (h[18] != 1 || h[19] != 1) return bad("not a rollback-journal database (WAL header)");
  if (Be32(h + 24) != Be32(h + 92)) return bad("header page count is not valid");
  uint64_t pages = Be32(h + 28);
  if (pages * page_size != scan.size)
    return bad("file is " + std::to_string(scan.size) + " bytes but its header says " +
               std::to_string(pages * page_size) + " (truncated or extended)");
  if (Be32(h + 68) != kApplicationId) return bad("not an entrysync snapshot (application id)");
  uint32_t version = Be32(h + 60);
  if (version > static_cast<uint32_t>(kSnapshotFormatVersion))
    return InvalidArgument("snapshot " + path + ": format version " + std::to_string(version) +
                           " is newer than this build reads (" + std::to_string(kSnapshotFormatVersion) +
                           ")");
  if (version != static_cast<uint32_t>(kSnapshotFormatVersion))
    return bad("unknown format version " + std::to_string(version));

  // A read-only connection of our own; any SQLite error from here on means
  // the file is damaged.
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close_v2(raw);
    return bad(msg);
  }
  struct Closer {
    sqlite3* db;
    ~Closer() { sqlite3_close_v2(db); }
  } closer{raw};
  auto checks = [&]() -> Result<SnapshotInfo> {
    ES_RETURN_IF_ERROR(RegisterSum(raw));
    // Db wrapper for Prepare; the Closer owns the handle.
    auto prep = [&](const std::string& sql) -> Result<sqlite3_stmt*> {
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(raw, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
        return Corruption(sqlite3_errmsg(raw));
      return st;
    };
    {
      ES_ASSIGN_OR_RETURN(sqlite3_stmt * st, prep("PRAGMA quick_check(1)"));
      int r = sqlite3_step(st);
      std::string res =
          r == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(st, 0)) : sqlite3_errmsg(raw);
      sqlite3_finalize(st);
      if (res != "ok") return Corruption("quick_check: " + res);
    }
    // Borrow the handle through a non-owning Db-like path: plain statements.
    auto one_row = [&](const std::string& sql, int cols, int64_t* out) -> Status {
      ES_ASSIGN_OR_RETURN(sqlite3_stmt * st, prep(sql));
      int r = sqlite3_step(st);
      if (r == SQLITE_ROW) {
        for (int i = 0; i < cols; ++i) out[i] = sqlite3_column_int64(st, i);
      }
      std::string err = r == SQLITE_ROW ? "" : (r == SQLITE_DONE ? "no row" : sqlite3_errmsg(raw));
      sqlite3_finalize(st);
      if (!err.empty()) return Corruption(err);
      return Status::Ok();
    };
    // Meta, through a temporary non-owning view of the connection.
    Meta m;
    {
      ES_ASSIGN_OR_RETURN(sqlite3_stmt * st, prep("SELECT key, value, typeof(value) FROM main.meta"));
      std::map<std::string, int> seen;
      auto uuid_of = [&](const std::string& key, Uuid* out) -> Status {
        if (sqlite3_column_type(st, 1) != SQLITE_BLOB || sqlite3_column_bytes(st, 1) != 16)
          return Corruption("metadata '" + key + "' is not a 16-byte uuid");
        *out = Uuid::FromBytes(sqlite3_column_blob(st, 1));
        return Status::Ok();
      };
      auto int_of = [&](const std::string& key, int64_t* out) -> Status {
        if (sqlite3_column_type(st, 1) != SQLITE_INTEGER)
          return Corruption("metadata '" + key + "' is not an integer");
        *out = sqlite3_column_int64(st, 1);
        return Status::Ok();
      };
      Status s;
      int r;
      while (s.ok() && (r = sqlite3_step(st)) == SQLITE_ROW) {
        const char* k = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        std::string key = k ? k : "";
        seen[key]++;
        int64_t v = 0;
        if (key == "format_version")
          s = int_of(key, &m.format_version);
        else if (key == "library_id")
          s = uuid_of(key, &m.library_id);
        else if (key == "owner_uuid")
          s = uuid_of(key, &m.owner);
        else if (key == "exported_by")
          s = uuid_of(key, &m.exported_by);
        else if (key == "owner_name") {
          if (sqlite3_column_type(st, 1) != SQLITE_TEXT)
            s = Corruption("metadata 'owner_name' is not text");
          else
            m.owner_name = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
        } else if (key == "epoch") {
          s = int_of(key, &v);
          m.epoch = Epoch(static_cast<uint64_t>(v));
        } else if (key == "max_seq") {
          s = int_of(key, &v);
          m.max_seq = Seq(v);
        } else if (key == "entries")
          s = int_of(key, &m.entries);
        else if (key == "locations")
          s = int_of(key, &m.locations);
        else if (key == "content_sum") {
          s = int_of(key, &v);
          m.content_sum = static_cast<uint64_t>(v);
        }
      }
      if (s.ok() && r != SQLITE_DONE) s = Corruption(std::string("metadata: ") + sqlite3_errmsg(raw));
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
    }
    int64_t ec[2] = {0, 0}, lc[2] = {0, 0}, orphans = 0;
    ES_RETURN_IF_ERROR(one_row("SELECT count(*), coalesce(max(seq), 0) FROM main.entry", 2, ec));
    ES_RETURN_IF_ERROR(one_row("SELECT count(*), coalesce(max(seq), 0) FROM main.location", 2, lc));
    if (ec[0] != m.entries)
      return Corruption("holds " + std::to_string(ec[0]) + " entries, metadata says " +
                        std::to_string(m.entries));
    if (lc[0] != m.locations)
      return Corruption("holds " + std::to_string(lc[0]) + " locations, metadata says " +
                        std::to_string(m.locations));
    if (ec[1] > m.max_seq.value())
      return Corruption("holds entry seq " + std::to_string(ec[1]) + " above max_seq " +
                        std::to_string(m.max_seq.value()));
    ES_RETURN_IF_ERROR(one_row(
        "SELECT count(*) FROM main.entry WHERE location NOT IN (SELECT id FROM main.location)", 1, &orphans));
    if (orphans != 0) return Corruption(std::to_string(orphans) + " entries refer to no location");
    // The row checksum guards against damage after the file was written.
    // A file whose SHA-256 equals the one its exporter computed while
    // writing it (given by the caller, received over an authenticated
    // channel) cannot have such damage: the sum is implied and skipped.
    if (!expected_sha256) {
      // ContentSum needs a Db; run the same query on the raw handle.
      std::string sql = std::string("SELECT (SELECT ") + kSumFunction + "(" + kEntrySumColumns +
                        ") FROM main.entry), (SELECT " + kSumFunction + "(" + kLocationSumColumns +
                        ") FROM main.location), (SELECT " + kSumFunction +
                        "(key, value) FROM main.meta WHERE key <> 'content_sum')";
      int64_t sums[3];
      ES_RETURN_IF_ERROR(one_row(sql, 3, sums));
      uint64_t sum = static_cast<uint64_t>(sums[0]) + 3 * static_cast<uint64_t>(sums[1]) +
                     5 * static_cast<uint64_t>(sums[2]);
      if (sum != m.content_sum) return Corruption("content checksum mismatch (rows altered)");
    }
    return InfoOf(m, scan);
  };
  auto r = checks();
  if (!r.ok()) {
    if (r.status().code() == Code::kCorruption) return bad(r.status().message());
    return r.status().Wrap("snapshot " + path);
  }
  return r;
}

}  // namespace

// ---- export ----

Result<SnapshotInfo> ExportSnapshot(Library& lib, DeviceRowId owner, const std::string& path) {
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  RemoveOnExit cleanup(tmp);
  ES_RETURN_IF_ERROR(CreateSnapshotFile(tmp).Wrap("create snapshot " + tmp));

  Db& db = lib.db();
  const std::string s = kSchema;
  Meta m;
  {
    Attachment att(db);
    ES_RETURN_IF_ERROR(att.Attach(tmp));
    ES_RETURN_IF_ERROR(db.Exec("PRAGMA " + s + ".journal_mode = OFF; PRAGMA " + s +
                               ".synchronous = OFF; PRAGMA " + s + ".cache_size = -32768;"));
    ES_RETURN_IF_ERROR(RegisterSum(db.raw()));
    DeferredTxn txn(db);
    ES_RETURN_IF_ERROR(txn.Begin());
    // Everything below reads one consistent state of main.
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
    const int64_t o = owner.value(), mx = m.max_seq.value();
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
    m.entries = db.Changes();
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
    ES_ASSIGN_OR_RETURN(m.locations, QueryInt(db, "SELECT count(*) FROM " + s + ".location"));

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
    ES_RETURN_IF_ERROR(put_uuid("library_id", m.library_id));
    ES_RETURN_IF_ERROR(put_uuid("owner_uuid", m.owner));
    meta.Bind(1, std::string_view("owner_name")).Bind(2, std::string_view(m.owner_name));
    ES_RETURN_IF_ERROR(meta.Run());
    ES_RETURN_IF_ERROR(put_int("epoch", static_cast<int64_t>(m.epoch.value())));
    ES_RETURN_IF_ERROR(put_int("max_seq", mx));
    ES_RETURN_IF_ERROR(put_int("entries", m.entries));
    ES_RETURN_IF_ERROR(put_int("locations", m.locations));
    ES_RETURN_IF_ERROR(put_uuid("exported_by", m.exported_by));
    ES_RETURN_IF_ERROR(put_int("created_ms", NowMs()));
    ES_ASSIGN_OR_RETURN(m.content_sum, ContentSum(db, s));
    ES_RETURN_IF_ERROR(put_int("content_sum", static_cast<int64_t>(m.content_sum)));
    ES_RETURN_IF_ERROR(txn.Commit().Wrap("write snapshot " + tmp));
  }  // detached

  ES_ASSIGN_OR_RETURN(FileScan scan, ScanFile(tmp, /*fsync_it=*/true));
  fs::rename(tmp, path, ec);
  if (ec) return IOError("rename " + tmp + " to " + path + ": " + ec.message());
  cleanup.Release();
  ES_RETURN_IF_ERROR(SyncDir(path));

  return InfoOf(m, scan);
}

// ---- inspect ----

Result<SnapshotInfo> InspectSnapshot(const std::string& path) { return Inspect(path, std::nullopt); }

// ---- import ----

Result<ImportStats> ImportSnapshot(Library& lib, const std::string& path,
                                   std::optional<std::string> expected_sha256,
                                   std::optional<DeviceRowId> source) {
  auto t0 = std::chrono::steady_clock::now();
  ES_ASSIGN_OR_RETURN(SnapshotInfo info, Inspect(path, expected_sha256));
  if (info.library_id != lib.library_id())
    return PermissionDenied("snapshot " + path + " belongs to library " + info.library_id.ToString() +
                            ", not to this library " + lib.library_id().ToString());
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib.LocalDevice());
  if (info.owner == me.uuid)
    return PermissionDenied("snapshot " + path + " holds this device's own index; refusing to overwrite it");

  Db& db = lib.db();
  const std::string s = kSchema;
  ImportStats stats;
  stats.info = info;
  {
    Attachment att(db);
    ES_RETURN_IF_ERROR(att.Attach(path));
    store::Transaction txn(db);
    ES_RETURN_IF_ERROR(txn.Begin());
    // The attached file must still be the one inspected.
    auto again = ReadMeta(db, s);
    if (!again.ok() || again->owner != info.owner || again->epoch != info.epoch ||
        again->max_seq != info.max_seq || again->content_sum == 0 ||
        static_cast<uint64_t>(again->entries) != info.entries)
      return Corruption("snapshot " + path + " changed while being imported");

    ES_ASSIGN_OR_RETURN(DeviceRowId owner, lib.EnsureDevice(info.owner, info.owner_name));
    stats.owner = owner;
    ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(owner));
    if (wm && wm->epoch == info.epoch && wm->seq >= info.max_seq)
      return AlreadyExists("snapshot " + path + " is not newer than what this library holds of " +
                           info.owner_name + " (seq " + std::to_string(wm->seq.value()) +
                           " >= snapshot max seq " + std::to_string(info.max_seq.value()) +
                           "): already current");
    const int64_t o = owner.value();
    ES_RETURN_IF_ERROR(Exec(db, "DELETE FROM main.entry WHERE owner = ?1", {o}));
    stats.rows_replaced += static_cast<uint64_t>(db.Changes());
    ES_RETURN_IF_ERROR(Exec(db, "DELETE FROM main.location WHERE owner = ?1", {o}));
    stats.rows_replaced += static_cast<uint64_t>(db.Changes());

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
    stats.rows_written = info.entries + info.locations;

    ES_RETURN_IF_ERROR(lib.SetEpoch(owner, info.epoch));
    ES_ASSIGN_OR_RETURN(
        Stmt wmst,
        db.Prepare("INSERT INTO main.watermark(owner, epoch, seq, source, updated_ms) VALUES(?, ?, ?, ?, ?)"
                   " ON CONFLICT(owner) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq,"
                   " source = excluded.source, updated_ms = excluded.updated_ms"));
    wmst.Bind(1, o).Bind(2, static_cast<int64_t>(info.epoch.value())).Bind(3, info.max_seq.value());
    if (source)
      wmst.Bind(4, source->value());
    else
      wmst.BindNull(4);
    wmst.Bind(5, NowMs());
    ES_RETURN_IF_ERROR(wmst.Run());
    if (stats.rows_written > 0) {
      ES_ASSIGN_OR_RETURN(Stmt count,
                          db.Prepare("INSERT INTO main.meta(key, value) VALUES('rows_applied', ?1)"
                                     " ON CONFLICT(key) DO UPDATE SET value = value + ?1"));
      count.Bind(1, static_cast<int64_t>(stats.rows_written));
      ES_RETURN_IF_ERROR(count.Run());
    }
    ES_RETURN_IF_ERROR(txn.Commit().Wrap("import snapshot " + path));
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace entrysync
