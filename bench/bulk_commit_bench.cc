// bulk_commit_bench: how fast one bulk commit of a whole index is, next to
// what raw SQLite does with the same rows and schema, at 10K, 100K and 1M
// synthetic entries (synthetic_tree.h). Google Benchmark; see README.md.
//
//   BM_CommitBulkEntries/N        TransactionManager::CommitBulkEntries into
//                                 a fresh library; checked untimed: one
//                                 BulkIndexComplete, every row stored, a
//                                 sample of rows reads back equal.
//   BM_CommitDiag_without_digest/N  the same without the set digest's
//                                 pre-update hook: what the digest's
//                                 upkeep costs the commit (docs/trust.md).
//   BM_RawFloor/batches_1000/N    the floor: the bare SQLite C API into an
//   BM_RawFloor/one_txn/N         empty database made from 001_init.sql, one
//                                 prepared INSERT, SQLITE_STATIC binds, 1000
//                                 rows per transaction or all in one, with
//                                 the library's durability (WAL,
//                                 synchronous=NORMAL, 64 MB cache).
//   BM_RawDiag/<variant>/N        raw one-transaction variants that isolate
//                                 one cost each (upsert clause, TRANSIENT
//                                 binds, secondary indexes, rows per
//                                 INSERT, journal mode).
//   BM_GenerateTree/N             making the rows (in no figure above).
//
// Each timed section is the commit alone, BEGIN..COMMIT and the WAL
// checkpoint it triggers included, on a fresh file after sync(2); setup and
// checks are untimed. items_per_second is entries/s; db_bytes and wal_bytes
// are the files after the last commit.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "base/event_bus.h"
#include "fixtures.h"
#include "store/library.h"
#include "store/transaction_manager.h"
#include "synthetic_tree.h"

// Generated from src/store/schema/*.sql (cmake/embed.cmake).
extern const char* const es_schema_names[];
extern const char* const es_schema_texts[];
extern const int es_schema_count;

namespace entrysync::bench {
namespace {

namespace fs = std::filesystem;

// The PRAGMAs the raw floor runs with: the durability the library has
// (WAL, synchronous=NORMAL) and the same page cache, so the ratio measures
// entrysync's own overhead, not a weaker durability setting.
constexpr const char* kFloorPragmas =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
    " PRAGMA temp_store=MEMORY;";

struct RawOptions {
  size_t batch = 0;  // rows per transaction; 0 = all in one
  bool upsert = false;
  bool transient = false;
  bool drop_secondary_indexes = false;
  size_t rows_per_stmt = 1;  // > 1: multi-row INSERT ... VALUES (...), (...)
  const char* pragmas = kFloorPragmas;
};

const char* InitSchema() {
  for (int i = 0; i < es_schema_count; ++i)
    if (std::strstr(es_schema_names[i], "001_init") != nullptr) return es_schema_texts[i];
  return nullptr;
}

// A fresh database at `file` made from 001_init.sql, holding one device and
// one location, with the INSERT statements of one variant prepared. On any
// SQLite error, ok() turns false and error() says what failed.
class RawDb {
 public:
  RawDb(const fs::path& file, const RawOptions& o) : file_(file), o_(o) {
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      error_ = "open " + file.string();
      return;
    }
    const char* schema = InitSchema();
    if (!schema) {
      error_ = "001_init.sql is not embedded";
      return;
    }
    if (!Exec(o.pragmas) || !Exec(schema)) return;
    if (o.drop_secondary_indexes && !Exec("DROP INDEX entry_parent; DROP INDEX entry_owner_seq;")) return;
    if (!Exec("INSERT INTO device(id, uuid, name, is_local, trusted) VALUES(1, zeroblob(16), 'bench', 1, 1);"
              "INSERT INTO location(id, uuid, owner, root_path, name, seq)"
              " VALUES(1, randomblob(16), 1, '/x', 'x', 1);"))
      return;
    per_ = std::max<size_t>(1, o.rows_per_stmt);
    multi_ = Prepare(per_);
    single_ = per_ > 1 ? Prepare(1) : nullptr;
  }
  ~RawDb() {
    sqlite3_finalize(single_);
    sqlite3_finalize(multi_);
    sqlite3_close_v2(db_);
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Inserts `rows` with seqs 2.., committing every o.batch rows (0: once).
  bool Insert(const std::vector<EntryRecord>& rows) {
    sqlite3_destructor_type keep = o_.transient ? SQLITE_TRANSIENT : SQLITE_STATIC;
    size_t in_txn = 0;
    int64_t seq = 1;
    if (!Exec("BEGIN IMMEDIATE")) return false;
    for (size_t next = 0; next < rows.size();) {
      size_t k = rows.size() - next >= per_ ? per_ : 1;
      sqlite3_stmt* st = k == per_ ? multi_ : single_;
      for (size_t j = 0; j < k; ++j) {
        const EntryRecord& r = rows[next + j];
        int b = static_cast<int>(j * 15);
        sqlite3_bind_blob(st, b + 1, r.uuid.bytes.data(), 16, keep);
        sqlite3_bind_int64(st, b + 2, 1);
        sqlite3_bind_int64(st, b + 3, 1);
        if (r.parent.is_nil())
          sqlite3_bind_null(st, b + 4);
        else
          sqlite3_bind_blob(st, b + 4, r.parent.bytes.data(), 16, keep);
        sqlite3_bind_text(st, b + 5, r.name.data(), static_cast<int>(r.name.size()), keep);
        sqlite3_bind_text(st, b + 6, r.extension.data(), static_cast<int>(r.extension.size()), keep);
        sqlite3_bind_int64(st, b + 7, static_cast<int64_t>(r.kind));
        sqlite3_bind_int64(st, b + 8, static_cast<int64_t>(r.size));
        sqlite3_bind_int64(st, b + 9, static_cast<int64_t>(r.inode));
        sqlite3_bind_int64(st, b + 10, r.created_ns);
        sqlite3_bind_int64(st, b + 11, r.modified_ns);
        sqlite3_bind_int64(st, b + 12, r.accessed_ns);
        sqlite3_bind_null(st, b + 13);
        sqlite3_bind_int64(st, b + 14, ++seq);
        sqlite3_bind_int64(st, b + 15, 0);
      }
      if (sqlite3_step(st) != SQLITE_DONE) {
        error_ = std::string("insert: ") + sqlite3_errmsg(db_);
        return false;
      }
      sqlite3_reset(st);
      next += k;
      in_txn += k;
      if (o_.batch != 0 && in_txn >= o_.batch) {
        if (!Exec("COMMIT") || !Exec("BEGIN IMMEDIATE")) return false;
        in_txn = 0;
      }
    }
    return Exec("COMMIT");
  }

 private:
  bool Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK) return true;
    error_ = "'" + sql.substr(0, 60) + "': " + (err ? err : "?");
    sqlite3_free(err);
    return false;
  }

  // One statement for `k` rows: INSERT ... VALUES (15 params) x k.
  sqlite3_stmt* Prepare(size_t k) {
    std::string sql =
        "INSERT INTO entry(uuid, owner, location, parent, name, extension, kind, size, inode,"
        " created_ns, modified_ns, accessed_ns, content_hash, seq, deleted) VALUES";
    for (size_t i = 0; i < k; ++i)
      sql += i ? ",(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    if (o_.upsert) {
      sql +=
          " ON CONFLICT(uuid) DO UPDATE SET owner = excluded.owner, location = excluded.location,"
          " parent = excluded.parent, name = excluded.name, extension = excluded.extension,"
          " kind = excluded.kind, size = excluded.size, inode = excluded.inode,"
          " created_ns = excluded.created_ns, modified_ns = excluded.modified_ns,"
          " accessed_ns = excluded.accessed_ns, content_hash = excluded.content_hash,"
          " seq = excluded.seq, deleted = excluded.deleted";
    }
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      error_ = std::string("prepare: ") + sqlite3_errmsg(db_);
    return st;
  }

  fs::path file_;
  RawOptions o_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* multi_ = nullptr;
  sqlite3_stmt* single_ = nullptr;
  size_t per_ = 1;
  std::string error_;
};

void SetFileCounters(benchmark::State& state, const fs::path& db) {
  using benchmark::Counter;
  state.counters["db_bytes"] =
      Counter(static_cast<double>(FileSize(db)), Counter::kDefaults, Counter::kIs1024);
  state.counters["wal_bytes"] =
      Counter(static_cast<double>(FileSize(db.string() + "-wal")), Counter::kDefaults, Counter::kIs1024);
}

// `digest` false removes the set digest's pre-update hook (store/digest.h)
// first: the difference to the default is what keeping the digest costs the
// commit.
void CommitBulkEntries(benchmark::State& state, bool digest) {
  auto& rows = SyntheticRows(static_cast<uint64_t>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    fs::path dir = ScratchPath("lib");
    auto lib = Library::Create(dir.string(), "bench", std::nullopt);
    if (!lib.ok()) {
      state.SkipWithError(lib.status().ToString().c_str());
      break;
    }
    EventBus bus;
    int bulk_events = 0;
    bus.Subscribe([&](const Event& e) {
      if (std::holds_alternative<BulkIndexComplete>(e)) ++bulk_events;
    });
    if (!digest) sqlite3_preupdate_hook((*lib)->db().raw(), nullptr, nullptr);
    TransactionManager tm(**lib, bus);
    auto loc = tm.AddLocation("/bench/home", "home");
    if (!loc.ok()) {
      state.SkipWithError(loc.status().ToString().c_str());
      break;
    }
    ::sync();
    state.ResumeTiming();
    auto ev = tm.CommitBulkEntries(*loc, rows);
    state.PauseTiming();
    if (!ev.ok()) {
      state.SkipWithError(ev.status().ToString().c_str());
      break;
    }
    if (bulk_events != 1 || ev->entry_count != rows.size()) {
      state.SkipWithError("not one BulkIndexComplete of every row");
      break;
    }
    auto count = (*lib)->CountEntries((*lib)->local_device(), true);
    if (!count.ok() || *count != rows.size()) {
      state.SkipWithError("stored entry count differs from the rows committed");
      break;
    }
    std::vector<size_t> sample;
    for (size_t i = 0; i < rows.size(); i += 997) sample.push_back(i);
    if (!rows.empty()) sample.push_back(rows.size() - 1);
    bool equal = true;
    for (size_t i : sample) {
      auto got = (*lib)->FindEntry(rows[i].uuid);
      equal &= got.ok() && got->has_value() && **got == rows[i];
    }
    if (!equal) {
      state.SkipWithError("an entry reads back different");
      break;
    }
    SetFileCounters(state, dir / Library::kDbFile);
    lib->reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(rows.size()));
}

// The rows into a fresh RawDb of variant `o`, timed from BEGIN to the last COMMIT.
void RawInsert(benchmark::State& state, const RawOptions& o) {
  const auto& rows = SyntheticRows(static_cast<uint64_t>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    fs::path file = ScratchPath("raw");
    {
      RawDb db(file, o);
      if (!db.ok()) {
        state.SkipWithError(db.error().c_str());
        break;
      }
      ::sync();
      state.ResumeTiming();
      bool ok = db.Insert(rows);
      state.PauseTiming();
      if (!ok) {
        state.SkipWithError(db.error().c_str());
        break;
      }
      SetFileCounters(state, file);
    }
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix, ec);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(rows.size()));
}

void BM_GenerateTree(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  std::vector<EntryRecord> rows;
  for (auto _ : state) {
    state.PauseTiming();
    rows = {};
    state.ResumeTiming();
    rows = MakeSyntheticTree(n, kTreeSeed);
    benchmark::DoNotOptimize(rows.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
  TreeStats t = DescribeTree(rows);
  state.counters["files"] = static_cast<double>(t.files);
  state.counters["dirs"] = static_cast<double>(t.dirs);
  state.counters["max_depth"] = t.max_depth;
  state.counters["children_per_dir"] = t.avg_children;
  state.counters["name_chars"] = t.avg_name_len;
}

void BM_CommitBulkEntries(benchmark::State& state) { CommitBulkEntries(state, true); }
void BM_CommitDiag_without_digest(benchmark::State& state) { CommitBulkEntries(state, false); }

// The floor, and raw variants that isolate one cost each.
void BM_RawFloor(benchmark::State& state, RawOptions o) { RawInsert(state, o); }
void BM_RawDiag(benchmark::State& state, RawOptions o) { RawInsert(state, o); }

BENCHMARK(BM_CommitBulkEntries)->Apply(SizeArgs);
BENCHMARK(BM_CommitDiag_without_digest)->Apply(SizeArgs);
BENCHMARK_CAPTURE(BM_RawFloor, batches_1000, RawOptions{.batch = 1000})->Apply(SizeArgs);
BENCHMARK_CAPTURE(BM_RawFloor, one_txn, RawOptions{})->Apply(SizeArgs);
BENCHMARK_CAPTURE(BM_RawDiag, upsert, RawOptions{.upsert = true})->Apply(SizeArgs);
BENCHMARK_CAPTURE(BM_RawDiag, upsert_transient_binds, RawOptions{.upsert = true, .transient = true})
    ->Apply(SizeArgs);
BENCHMARK_CAPTURE(BM_RawDiag, no_secondary_indexes, RawOptions{.drop_secondary_indexes = true})
    ->Apply(SizeArgs);
BENCHMARK_CAPTURE(BM_RawDiag, upsert_50_rows_per_insert, RawOptions{.upsert = true, .rows_per_stmt = 50})
    ->Apply(SizeArgs);
BENCHMARK_CAPTURE(
    BM_RawDiag, journal_off_sync_off,
    RawOptions{.pragmas = "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;"})
    ->Apply(SizeArgs);
BENCHMARK(BM_GenerateTree)->Apply(SizeArgs);

}  // namespace
}  // namespace entrysync::bench

BENCHMARK_MAIN();
