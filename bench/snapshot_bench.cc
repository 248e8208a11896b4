// snapshot_bench: export, inspect and import times of one owner's snapshot
// at 10K, 100K and 1M synthetic entries (synthetic_tree.h). Google
// Benchmark; see README.md.
//
// Library A holds N entries, committed once per size with
// TransactionManager::CommitBulkEntries (untimed; bulk_commit_bench times
// that), and A's snapshot of its own rows is exported once. Then:
//
//   BM_ExportSnapshot/N         ExportSnapshot of A's rows to a new file.
//   BM_InspectSnapshot/N        InspectSnapshot of A's file (every check,
//                               the row checksum included).
//   BM_ImportSnapshot/N         ImportSnapshot with the expected SHA-256 into
//                               an empty library B of the same library id;
//                               checked untimed: every row written.
//   BM_ImportSnapshotReplace/N  B already holds A's snapshot; A changed one
//                               row; the newer snapshot is imported over it
//                               (every row deleted and reinserted).
//
// Each timed section starts after sync(2). file_bytes is the size of A's
// snapshot file; items_per_second is entries/s.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "base/event_bus.h"
#include "fixtures.h"
#include "snapshot/snapshot.h"
#include "store/library.h"
#include "store/transaction_manager.h"

namespace entrysync::bench {
namespace {

namespace fs = std::filesystem;

// Library A with N synthetic entries and its snapshot files.
struct Owner {
  std::unique_ptr<Library> lib;
  EventBus bus;
  std::unique_ptr<TransactionManager> tm;
  LocationInfo loc;
  fs::path file;  // A's snapshot of the N rows
  SnapshotInfo info;
  fs::path newer_file;  // after one row changed; empty until first needed
  SnapshotInfo newer;
  std::string error;  // why making A failed; "" when A is ready
};

// A at `n` entries, made on first use and kept for the life of the process.
Owner& OwnerOf(uint64_t n) {
  static std::map<uint64_t, std::unique_ptr<Owner>> owners;
  auto& o = owners[n];
  if (o) return *o;
  o = std::make_unique<Owner>();
  auto lib = Library::Create(ScratchPath("a").string(), "alpha", std::nullopt);
  if (!lib.ok()) {
    o->error = "create A: " + lib.status().ToString();
    return *o;
  }
  o->lib = std::move(*lib);
  o->tm = std::make_unique<TransactionManager>(*o->lib, o->bus);
  auto loc = o->tm->AddLocation("/bench", "bench");
  if (!loc.ok()) {
    o->error = "add location: " + loc.status().ToString();
    return *o;
  }
  o->loc = *loc;
  auto ev = o->tm->CommitBulkEntries(o->loc, SyntheticRows(n));
  if (!ev.ok()) {
    o->error = "bulk commit: " + ev.status().ToString();
    return *o;
  }
  o->file = ScratchPath("alpha.snap");
  auto info = ExportSnapshot(*o->lib, o->lib->local_device(), o->file.string());
  if (!info.ok()) {
    o->error = "export: " + info.status().ToString();
    return *o;
  }
  o->info = *info;
  return *o;
}

// A's snapshot after one row of A's changed (made on first use).
bool MakeNewer(Owner& a, uint64_t n, std::string* error) {
  if (!a.newer_file.empty()) return true;
  std::vector<EntryRecord> one = {SyntheticRows(n)[n / 2]};
  one[0].size += 1;
  auto seq = a.tm->CommitChanges(a.loc, one);
  if (!seq.ok()) {
    *error = "change: " + seq.status().ToString();
    return false;
  }
  fs::path file = ScratchPath("alpha-newer.snap");
  auto info = ExportSnapshot(*a.lib, a.lib->local_device(), file.string());
  if (!info.ok()) {
    *error = "export newer: " + info.status().ToString();
    return false;
  }
  a.newer_file = file;
  a.newer = *info;
  return true;
}

// An empty library B of A's library, in a new folder.
Result<std::unique_ptr<Library>> NewPeer(const Owner& a) {
  return Library::Create(ScratchPath("b").string(), "beta", a.lib->library_id());
}

void Finish(benchmark::State& state, const Owner& a) {
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(a.info.entries));
  state.counters["file_bytes"] = benchmark::Counter(
      static_cast<double>(a.info.size_bytes), benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
  state.counters["bytes_per_entry"] =
      static_cast<double>(a.info.size_bytes) / std::max<uint64_t>(1, a.info.entries);
}

void BM_ExportSnapshot(benchmark::State& state) {
  Owner& a = OwnerOf(static_cast<uint64_t>(state.range(0)));
  if (!a.error.empty()) return state.SkipWithError(a.error.c_str());
  for (auto _ : state) {
    state.PauseTiming();
    fs::path file = ScratchPath("export.snap");
    ::sync();
    state.ResumeTiming();
    auto info = ExportSnapshot(*a.lib, a.lib->local_device(), file.string());
    state.PauseTiming();
    if (!info.ok()) {
      state.SkipWithError(info.status().ToString().c_str());
      break;
    }
    std::error_code ec;
    fs::remove(file, ec);
    state.ResumeTiming();
  }
  Finish(state, a);
}

void BM_InspectSnapshot(benchmark::State& state) {
  Owner& a = OwnerOf(static_cast<uint64_t>(state.range(0)));
  if (!a.error.empty()) return state.SkipWithError(a.error.c_str());
  for (auto _ : state) {
    state.PauseTiming();
    ::sync();
    state.ResumeTiming();
    auto info = InspectSnapshot(a.file.string());
    if (!info.ok()) {
      state.SkipWithError(info.status().ToString().c_str());
      break;
    }
  }
  Finish(state, a);
}

void BM_ImportSnapshot(benchmark::State& state) {
  Owner& a = OwnerOf(static_cast<uint64_t>(state.range(0)));
  if (!a.error.empty()) return state.SkipWithError(a.error.c_str());
  for (auto _ : state) {
    state.PauseTiming();
    auto b = NewPeer(a);
    if (!b.ok()) {
      state.SkipWithError(b.status().ToString().c_str());
      break;
    }
    ::sync();
    state.ResumeTiming();
    auto st = ImportSnapshot(**b, a.file.string(), a.info.sha256);
    state.PauseTiming();
    if (!st.ok()) {
      state.SkipWithError(st.status().ToString().c_str());
      break;
    }
    if (st->rows_written != a.info.entries + a.info.locations) {
      state.SkipWithError("the import wrote a different number of rows than the snapshot holds");
      break;
    }
    std::string dir = (*b)->dir();
    b->reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    state.ResumeTiming();
  }
  Finish(state, a);
}

void BM_ImportSnapshotReplace(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  Owner& a = OwnerOf(n);
  std::string error = a.error;
  if (error.empty()) MakeNewer(a, n, &error);
  if (!error.empty()) return state.SkipWithError(error.c_str());
  for (auto _ : state) {
    state.PauseTiming();
    auto b = NewPeer(a);
    if (!b.ok()) {
      state.SkipWithError(b.status().ToString().c_str());
      break;
    }
    auto first = ImportSnapshot(**b, a.file.string(), a.info.sha256);
    if (!first.ok()) {
      state.SkipWithError(first.status().ToString().c_str());
      break;
    }
    ::sync();
    state.ResumeTiming();
    auto st = ImportSnapshot(**b, a.newer_file.string(), a.newer.sha256);
    state.PauseTiming();
    if (!st.ok()) {
      state.SkipWithError(st.status().ToString().c_str());
      break;
    }
    state.counters["rows_replaced"] = static_cast<double>(st->rows_replaced);
    state.counters["rows_written"] = static_cast<double>(st->rows_written);
    std::string dir = (*b)->dir();
    b->reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    state.ResumeTiming();
  }
  Finish(state, a);
}

BENCHMARK(BM_ExportSnapshot)->Apply(SizeArgs);
BENCHMARK(BM_InspectSnapshot)->Apply(SizeArgs);
BENCHMARK(BM_ImportSnapshot)->Apply(SizeArgs);
BENCHMARK(BM_ImportSnapshotReplace)->Apply(SizeArgs);

}  // namespace
}  // namespace entrysync::bench

BENCHMARK_MAIN();
