// bulk_commit_bench: how fast one bulk commit of a whole index is, next to
// what raw SQLite can do with the same rows and schema.
//
//   bulk_commit_bench [--entries N] [--json FILE] [--dir DIR] [--keep]
//                     [--seed S] [--repeat R] [--diag] [--no-raw] [--no-lib] [--only LABEL_PART]
//                     [--rows-per-stmt K]
//                     [--pragmas "PRAGMA ...; PRAGMA ..."]...
//
// Generates N synthetic entries (bench/synthetic_tree.h) in memory, then
// times TransactionManager::CommitBulkEntries into a fresh library, then
// inserts the same rows with the bare SQLite C API into empty databases made
// from the same schema file (001_init.sql): one prepared INSERT, in batches
// of 1000 rows per transaction and in one transaction. Each figure includes
// BEGIN..COMMIT and the WAL checkpoint the commit triggers. --diag adds raw
// variants that isolate single costs (upsert clause, SQLITE_TRANSIENT binds,
// secondary indexes, journal mode). Each run starts from a fresh database
// after sync(2); --pragmas adds a raw one-transaction variant run with
// exactly those PRAGMAs (repeatable; upsert, --rows-per-stmt rows per
// INSERT). --only runs just the raw variants whose label contains a text
// (for callgrind), --no-lib skips the entrysync run. With --repeat R the best wall time of R runs is reported
// (the machine is shared), with the CPU time of that run beside it.
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/event_bus.h"
#include "store/library.h"
#include "store/transaction_manager.h"
#include "synthetic_tree.h"

// Generated from src/store/schema/*.sql (cmake/embed.cmake).
extern const char* const es_schema_names[];
extern const char* const es_schema_texts[];
extern const int es_schema_count;

namespace {

namespace fs = std::filesystem;
using entrysync::EntryRecord;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// User + system CPU seconds of this process so far.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Wall and CPU time of one timed section. Dirty pages of earlier runs are
// flushed first (untimed) so one run's writeback does not land in the next.
struct Timer {
  Timer() {
    ::sync();
    wall0 = Clock::now();
    cpu0 = CpuSeconds();
  }
  double Wall() const { return Since(wall0); }
  double Cpu() const { return CpuSeconds() - cpu0; }
  Clock::time_point wall0;
  double cpu0;
};

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "bulk_commit_bench: %s\n", msg.c_str());
  std::exit(1);
}

uint64_t FileSize(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

// The PRAGMAs the raw floor runs with: the durability the library has
// (WAL, synchronous=NORMAL) and the same page cache, so the ratio measures
// entrysync's own overhead, not a weaker durability setting.
constexpr const char* kFloorPragmas =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
    " PRAGMA temp_store=MEMORY;";

struct RawOptions {
  std::string label;
  size_t batch = 0;  // rows per transaction; 0 = all in one
  bool upsert = false;
  bool transient = false;
  bool drop_secondary_indexes = false;
  size_t rows_per_stmt = 1;  // > 1: multi-row INSERT ... VALUES (...), (...)
  std::string pragmas = kFloorPragmas;
};

struct Run {
  std::string label;
  uint64_t entries = 0;
  double seconds = 0;      // wall clock, best of --repeat
  double cpu_seconds = 0;  // user + sys of that run
  uint64_t db_bytes = 0;
  uint64_t wal_bytes = 0;
};

void Check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
    Die(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db));
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK)
    Die("sqlite exec '" + sql.substr(0, 60) + "': " + (err ? err : "?"));
}

const char* InitSchema() {
  for (int i = 0; i < es_schema_count; ++i)
    if (std::strstr(es_schema_names[i], "001_init") != nullptr) return es_schema_texts[i];
  Die("001_init.sql is not embedded");
}

// The floor: same rows, same table, bare SQLite, nothing of entrysync's.
Run RawInsert(const fs::path& file, const std::vector<EntryRecord>& rows, const RawOptions& o) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK)
    Die("open " + file.string());
  Exec(db, o.pragmas);
  Exec(db, InitSchema());
  if (o.drop_secondary_indexes) Exec(db, "DROP INDEX entry_parent; DROP INDEX entry_owner_seq;");
  Exec(db,
       "INSERT INTO device(id, uuid, name, is_local, trusted) VALUES(1, zeroblob(16), 'bench', 1, 1);"
       "INSERT INTO location(id, uuid, owner, root_path, name, seq) VALUES(1, randomblob(16), 1, '/x', 'x', "
       "1);");
  // One statement for `k` rows: INSERT ... VALUES (15 params) x k.
  auto make = [&](size_t k) {
    std::string sql =
        "INSERT INTO entry(uuid, owner, location, parent, name, extension, kind, size, inode,"
        " created_ns, modified_ns, accessed_ns, content_hash, seq, deleted) VALUES";
    for (size_t i = 0; i < k; ++i)
      sql += i ? ",(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    if (o.upsert) {
      sql +=
          " ON CONFLICT(uuid) DO UPDATE SET owner = excluded.owner, location = excluded.location,"
          " parent = excluded.parent, name = excluded.name, extension = excluded.extension,"
          " kind = excluded.kind, size = excluded.size, inode = excluded.inode,"
          " created_ns = excluded.created_ns, modified_ns = excluded.modified_ns,"
          " accessed_ns = excluded.accessed_ns, content_hash = excluded.content_hash,"
          " seq = excluded.seq, deleted = excluded.deleted";
    }
    sqlite3_stmt* st = nullptr;
    Check(db, sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), "prepare");
    return st;
  };
  const size_t per = std::max<size_t>(1, o.rows_per_stmt);
  sqlite3_stmt* multi = make(per);
  sqlite3_stmt* single = per > 1 ? make(1) : multi;
  sqlite3_destructor_type keep = o.transient ? SQLITE_TRANSIENT : SQLITE_STATIC;

  Timer timer;
  size_t in_txn = 0;
  int64_t seq = 1;
  Exec(db, "BEGIN IMMEDIATE");
  for (size_t next = 0; next < rows.size();) {
    size_t k = rows.size() - next >= per ? per : 1;
    sqlite3_stmt* st = k == per ? multi : single;
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
    Check(db, sqlite3_step(st), "insert");
    sqlite3_reset(st);
    next += k;
    in_txn += k;
    if (o.batch != 0 && in_txn >= o.batch) {
      Exec(db, "COMMIT");
      Exec(db, "BEGIN IMMEDIATE");
      in_txn = 0;
    }
  }
  Exec(db, "COMMIT");
  Run run{o.label, rows.size(), timer.Wall(), timer.Cpu(), 0, 0};
  if (single != multi) sqlite3_finalize(single);
  sqlite3_finalize(multi);
  run.db_bytes = FileSize(file);
  run.wal_bytes = FileSize(file.string() + "-wal");
  sqlite3_close_v2(db);
  return run;
}

struct Args {
  uint64_t entries = 1'000'000;
  uint64_t seed = 42;
  std::string json;
  std::string dir;
  bool keep = false;
  bool diag = false;
  bool raw = true;
  bool lib = true;
  size_t rows_per_stmt = 1;  // for --pragmas variants
  std::string only;          // run only raw variants whose label contains this
  int repeat = 1;
  std::vector<std::string> pragmas;  // extra raw one-txn variants
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(k + " needs a value");
      return argv[++i];
    };
    if (k == "--entries")
      a.entries = std::stoull(next());
    else if (k == "--seed")
      a.seed = std::stoull(next());
    else if (k == "--pragmas")
      a.pragmas.push_back(next());
    else if (k == "--repeat")
      a.repeat = std::max(1, std::stoi(next()));
    else if (k == "--json")
      a.json = next();
    else if (k == "--dir")
      a.dir = next();
    else if (k == "--keep")
      a.keep = true;
    else if (k == "--diag")
      a.diag = true;
    else if (k == "--no-raw")
      a.raw = false;
    else if (k == "--no-lib")
      a.lib = false;
    else if (k == "--only")
      a.only = next();
    else if (k == "--rows-per-stmt")
      a.rows_per_stmt = std::stoull(next());
    else if (k == "--help" || k == "-h") {
      std::printf(
          "usage: bulk_commit_bench [--entries N] [--json FILE] [--dir DIR] [--keep]"
          " [--seed S] [--repeat R] [--diag] [--no-raw] [--no-lib]"
          " [--only LABEL_PART] [--rows-per-stmt K]"
          " [--pragmas SQL]...\n");
      std::exit(0);
    } else {
      Die("unknown argument " + k + " (see --help)");
    }
  }
  return a;
}

std::string Mb(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(b) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = Parse(argc, argv);
  std::string base = args.dir.empty() ? fs::temp_directory_path().string() : args.dir;
  std::string tmpl = (fs::path(base) / "entrysync-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp in " + base + ": " + std::strerror(errno));
  fs::path work(tmpl);

  // 1. Generate.
  auto t0 = Clock::now();
  std::vector<EntryRecord> rows = entrysync::bench::MakeSyntheticTree(args.entries, args.seed);
  double gen_s = Since(t0);
  auto stats = entrysync::bench::DescribeTree(rows);
  std::printf(
      "generated %zu entries in %.2f s: %llu files, %llu folders, max depth %d,"
      " %.1f children per non-empty folder, names %.1f chars\n",
      rows.size(), gen_s, static_cast<unsigned long long>(stats.files),
      static_cast<unsigned long long>(stats.dirs), stats.max_depth, stats.avg_children, stats.avg_name_len);

  // 2. entrysync: one bulk commit into a fresh library.
  std::vector<Run> runs;
  auto keep_best = [&](Run r) {
    for (Run& have : runs) {
      if (have.label != r.label) continue;
      if (r.seconds < have.seconds) have = r;
      return;
    }
    runs.push_back(r);
  };
  for (int rep = 0; args.lib && rep < args.repeat; ++rep) {
    fs::path dir = work / ("lib" + std::to_string(rep));
    auto lib = entrysync::Library::Create(dir.string(), "bench", std::nullopt);
    if (!lib.ok()) Die(lib.status().ToString());
    entrysync::EventBus bus;
    int bulk_events = 0;
    bus.Subscribe([&](const entrysync::Event& e) {
      if (std::holds_alternative<entrysync::BulkIndexComplete>(e)) ++bulk_events;
    });
    entrysync::TransactionManager tm(**lib, bus);
    auto loc = tm.AddLocation("/bench/home", "home");
    if (!loc.ok()) Die(loc.status().ToString());
    Timer timer;
    auto ev = tm.CommitBulkEntries(*loc, rows);
    double wall = timer.Wall(), cpu = timer.Cpu();
    if (!ev.ok()) Die(ev.status().ToString());
    if (bulk_events != 1 || ev->entry_count != rows.size()) Die("unexpected BulkIndexComplete");
    // Untimed: every row is stored, and a sample reads back equal.
    auto count = (*lib)->CountEntries((*lib)->local_device(), true);
    if (!count.ok() || *count != rows.size())
      Die("stored entry count differs from " + std::to_string(rows.size()));
    std::vector<size_t> sample;
    for (size_t i = 0; i < rows.size(); i += 997) sample.push_back(i);
    if (!rows.empty()) sample.push_back(rows.size() - 1);
    for (size_t i : sample) {
      auto got = (*lib)->FindEntry(rows[i].uuid);
      if (!got.ok() || !got->has_value() || **got != rows[i])
        Die("entry " + rows[i].uuid.ToString() + " reads back different");
    }
    fs::path db = dir / entrysync::Library::kDbFile;
    keep_best({"entrysync CommitBulkEntries", rows.size(), wall, cpu, FileSize(db),
               FileSize(db.string() + "-wal")});
    lib->reset();
    if (!args.keep) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }

  // 3. The raw SQLite floor with the same rows.
  if (args.raw) {
    std::vector<RawOptions> variants = {
        {"raw SQLite, batches of 1000", 1000},
        {"raw SQLite, one transaction", 0},
    };
    if (args.diag) {
      RawOptions v{"diag: one txn + ON CONFLICT upsert", 0};
      v.upsert = true;
      variants.push_back(v);
      v = {"diag: one txn + upsert + TRANSIENT binds", 0};
      v.upsert = v.transient = true;
      variants.push_back(v);
      v = {"diag: one txn, no secondary indexes", 0};
      v.drop_secondary_indexes = true;
      variants.push_back(v);
      v = {"diag: one txn + upsert, 50 rows per INSERT", 0};
      v.upsert = true;
      v.rows_per_stmt = 50;
      variants.push_back(v);
      v = {"diag: one txn, journal_mode=OFF sync=OFF", 0};
      v.pragmas = "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;";
      variants.push_back(v);
    }
    for (const std::string& p : args.pragmas) {
      RawOptions v{"custom: one txn, " + std::to_string(args.rows_per_stmt) + " rows/INSERT, " + p, 0};
      v.pragmas = p;
      v.upsert = true;
      v.rows_per_stmt = args.rows_per_stmt;
      variants.push_back(v);
    }
    for (int rep = 0; rep < args.repeat; ++rep) {
      int i = 0;
      for (const RawOptions& o : variants) {
        if (!args.only.empty() && o.label.find(args.only) == std::string::npos) continue;
        fs::path file = work / ("raw" + std::to_string(i++) + ".db");
        keep_best(RawInsert(file, rows, o));
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix, ec);
      }
    }
  }

  double floor_s = 0;
  for (const Run& r : runs)
    if (r.label == "raw SQLite, one transaction") floor_s = r.seconds;

  std::printf("\n| run | entries | seconds | cpu s | entries/s | x floor (1 txn) | db MB | wal MB |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Run& r : runs) {
    std::string ratio = floor_s > 0 ? std::to_string(r.seconds / floor_s).substr(0, 4) : "-";
    std::printf("| %s | %llu | %.2f | %.2f | %.0f | %s | %s | %s |\n", r.label.c_str(),
                static_cast<unsigned long long>(r.entries), r.seconds, r.cpu_seconds,
                static_cast<double>(r.entries) / r.seconds, ratio.c_str(), Mb(r.db_bytes).c_str(),
                Mb(r.wal_bytes).c_str());
  }
  std::printf("\n(best of %d; generation %.2f s, not included; sqlite %s; work dir %s%s)\n", args.repeat,
              gen_s, sqlite3_libversion(), work.c_str(), args.keep ? ", kept" : ", removed");

  if (!args.json.empty()) {
    nlohmann::json j;
    j["entries"] = rows.size();
    j["generate_seconds"] = gen_s;
    j["repeat"] = args.repeat;
    j["sqlite_version"] = sqlite3_libversion();
    j["tree"] = {{"files", stats.files},
                 {"dirs", stats.dirs},
                 {"max_depth", stats.max_depth},
                 {"avg_children", stats.avg_children}};
    for (const Run& r : runs) {
      j["runs"].push_back({{"label", r.label},
                           {"entries", r.entries},
                           {"seconds", r.seconds},
                           {"cpu_seconds", r.cpu_seconds},
                           {"entries_per_second", static_cast<double>(r.entries) / r.seconds},
                           {"db_bytes", r.db_bytes},
                           {"wal_bytes", r.wal_bytes}});
    }
    std::ofstream(args.json) << j.dump(2) << "\n";
  }
  if (!args.keep) {
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  return 0;
}
