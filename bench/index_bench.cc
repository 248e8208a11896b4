// index_bench: indexes a real folder, then rescans it with nothing changed.
// Google Benchmark; see README.md.
//
//   index_bench [--benchmark_...] PATH
//
//   BM_AddLocation   Indexer::AddLocation of PATH into a fresh library (walk,
//                    then one bulk commit); walk_s and commit_s split it.
//   BM_Rescan        Indexer::Rescan of that location with nothing changed.
//                    A rescan of an unchanged tree must assign no new seq:
//                    when it does (the tree changed under us, or a bug) the
//                    benchmark fails with an error and the exit code is 2.
//
// items_per_second is entries/s of the whole step; db_bytes and wal_bytes are
// the library after the first index.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "base/event_bus.h"
#include "fixtures.h"
#include "index/env.h"
#include "index/indexer.h"
#include "store/library.h"
#include "store/transaction_manager.h"

namespace entrysync::bench {
namespace {

namespace fs = std::filesystem;

std::string g_path;       // the folder indexed (the command line's PATH)
bool g_new_seqs = false;  // a rescan assigned new seqs

double Rate(uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0; }

// A fresh library and an indexer over it.
struct Indexed {
  std::unique_ptr<Library> lib;
  EventBus bus;
  uint64_t events = 0;  // BulkIndexComplete and StateChange published
  std::unique_ptr<TransactionManager> tm;
  std::unique_ptr<Indexer> indexer;
  fs::path db;

  Status Open() {
    fs::path dir = ScratchPath("lib");
    ES_ASSIGN_OR_RETURN(lib, Library::Create(dir.string(), "bench", std::nullopt));
    bus.Subscribe([this](const Event&) { ++events; });
    tm = std::make_unique<TransactionManager>(*lib, bus);
    indexer = std::make_unique<Indexer>(*lib, *tm, DefaultEnv());
    db = dir / Library::kDbFile;
    return Status::Ok();
  }
};

void IndexCounters(benchmark::State& state, const IndexReport& r) {
  state.counters["entries"] = static_cast<double>(r.entries);
  state.counters["walk_s"] = r.walk_seconds;
  state.counters["commit_s"] = r.commit_seconds;
  state.counters["walk_entries_per_s"] = Rate(r.entries, r.walk_seconds);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(r.entries));
}

void BM_AddLocation(benchmark::State& state) {
  IndexReport last;
  for (auto _ : state) {
    state.PauseTiming();
    auto x = std::make_unique<Indexed>();
    Status st = x->Open();
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
    state.ResumeTiming();
    auto r = x->indexer->AddLocation(g_path, IndexOptions{});
    state.PauseTiming();
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    last = *r;
    using benchmark::Counter;
    state.counters["db_bytes"] =
        Counter(static_cast<double>(FileSize(x->db)), Counter::kDefaults, Counter::kIs1024);
    state.counters["wal_bytes"] =
        Counter(static_cast<double>(FileSize(x->db.string() + "-wal")), Counter::kDefaults, Counter::kIs1024);
    fs::path dir = x->db.parent_path();
    x.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    state.ResumeTiming();
  }
  IndexCounters(state, last);
  state.counters["commit_entries_per_s"] = Rate(last.entries, last.commit_seconds);
  state.counters["errors"] = static_cast<double>(last.errors.size());
}

void BM_Rescan(benchmark::State& state) {
  Indexed x;
  Status opened = x.Open();
  if (!opened.ok()) return state.SkipWithError(opened.ToString().c_str());
  auto first = x.indexer->AddLocation(g_path, IndexOptions{});
  if (!first.ok()) return state.SkipWithError(first.status().ToString().c_str());
  IndexReport last;
  uint64_t events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto before = x.lib->MaxStoredSeq(x.lib->local_device());
    uint64_t events_before = x.events;
    state.ResumeTiming();
    auto r = x.indexer->Rescan(first->location, IndexOptions{});
    state.PauseTiming();
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    auto after = x.lib->MaxStoredSeq(x.lib->local_device());
    if (!before.ok() || !after.ok()) {
      state.SkipWithError("cannot read this device's max seq");
      break;
    }
    if (before->value() != after->value()) {
      g_new_seqs = true;
      std::string why = "a rescan of an unchanged tree assigned new seqs: max_seq " +
                        std::to_string(before->value()) + " -> " + std::to_string(after->value()) +
                        " (added " + std::to_string(r->added) + ", modified " + std::to_string(r->modified) +
                        ", deleted " + std::to_string(r->deleted) + ")";
      state.SkipWithError(why.c_str());
      break;
    }
    last = *r;
    events = x.events - events_before;
    state.ResumeTiming();
  }
  IndexCounters(state, last);
  state.counters["unchanged"] = static_cast<double>(last.unchanged);
  state.counters["events"] = static_cast<double>(events);
}

}  // namespace
}  // namespace entrysync::bench

int main(int argc, char** argv) {
  using namespace entrysync::bench;
  benchmark::Initialize(&argc, argv);
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: index_bench [--benchmark_...] PATH (a folder to index)\n");
    return 1;
  }
  g_path = argv[1];
  benchmark::AddCustomContext("path", g_path);
  for (auto* b : {benchmark::RegisterBenchmark("BM_AddLocation", BM_AddLocation),
                  benchmark::RegisterBenchmark("BM_Rescan", BM_Rescan)})
    b->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_new_seqs ? 2 : 0;
}
