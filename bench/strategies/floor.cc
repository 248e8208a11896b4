#include "strategies/floor.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "strategies/processes.h"

// Generated from src/store/schema/*.sql (cmake/embed.cmake).
extern const char* const es_schema_names[];
extern const char* const es_schema_texts[];
extern const int es_schema_count;

namespace entrysync::bench {
namespace {

const char* InitSchema() {
  for (int i = 0; i < es_schema_count; ++i)
    if (std::strstr(es_schema_names[i], "001_init") != nullptr) return es_schema_texts[i];
  Fail("001_init.sql is not embedded");
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "?";
    sqlite3_free(err);
    Fail("sqlite '" + sql.substr(0, 60) + "': " + why);
  }
}

}  // namespace

double FloorSeconds(const fs::path& file, const std::vector<EntryRecord>& rows) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix, ec);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK)
    Fail("open " + file.string());
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(db, sqlite3_close);
  Exec(db,
       "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
       " PRAGMA temp_store=MEMORY;");
  Exec(db, InitSchema());
  Exec(db,
       "INSERT INTO device(id, uuid, name, is_local, trusted) VALUES(1, zeroblob(16), 'bench', 1, 1);"
       "INSERT INTO location(id, uuid, owner, root_path, name, seq) VALUES(1, randomblob(16), 1, '/x', 'x', "
       "1);");
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(
          db,
          "INSERT INTO entry(uuid, owner, location, parent, name, extension, kind, size, inode,"
          " created_ns, modified_ns, accessed_ns, content_hash, seq, deleted)"
          " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
          -1, &st, nullptr) != SQLITE_OK)
    Fail(std::string("prepare: ") + sqlite3_errmsg(db));
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st_guard(st, sqlite3_finalize);
  sync();
  auto t0 = Clock::now();
  int64_t seq = 1;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i % 1000 == 0) Exec(db, "BEGIN");
    const EntryRecord& r = rows[i];
    sqlite3_bind_blob(st, 1, r.uuid.bytes.data(), 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, 1);
    sqlite3_bind_int64(st, 3, 1);
    if (r.parent.is_nil())
      sqlite3_bind_null(st, 4);
    else
      sqlite3_bind_blob(st, 4, r.parent.bytes.data(), 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r.name.data(), static_cast<int>(r.name.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r.extension.data(), static_cast<int>(r.extension.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, static_cast<int64_t>(r.kind));
    sqlite3_bind_int64(st, 8, static_cast<int64_t>(r.size));
    sqlite3_bind_int64(st, 9, static_cast<int64_t>(r.inode));
    sqlite3_bind_int64(st, 10, r.created_ns);
    sqlite3_bind_int64(st, 11, r.modified_ns);
    sqlite3_bind_int64(st, 12, r.accessed_ns);
    sqlite3_bind_null(st, 13);
    sqlite3_bind_int64(st, 14, ++seq);
    sqlite3_bind_int64(st, 15, 0);
    if (sqlite3_step(st) != SQLITE_DONE) Fail(std::string("floor insert: ") + sqlite3_errmsg(db));
    sqlite3_reset(st);
    if (i % 1000 == 999 || i + 1 == rows.size()) Exec(db, "COMMIT");
  }
  double s = Since(t0);
  st_guard.reset();
  guard.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix, ec);
  return s;
}

}  // namespace entrysync::bench
