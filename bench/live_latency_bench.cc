// How long one change committed inside a daemon takes to reach a connected
// peer: two nodes in this process, connected over TLS on 127.0.0.1, each
// with its own library. A commits a rename through a TransactionManager on
// its node's event bus (as the daemon's own writers do); the clock stops
// when B's node reports that it holds A's rows up to the new seq
// (OwnerAdvancedEvent). Google Benchmark, manual time; counters p50_ms,
// p99_ms and max_ms over the iterations.
//
//   build/bench/live_latency_bench --benchmark_min_time=1000x
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "fixtures.h"
#include "node/node.h"
#include "store/transaction_manager.h"

namespace entrysync::bench {
namespace {

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "live_latency_bench: %s: %s\n", what, s.message().c_str());
    std::exit(1);
  }
}
template <class T>
T Check(Result<T> r, const char* what) {
  Check(r.status(), what);
  return std::move(*r);
}

// What B has of A, as its node reports it.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  int64_t seq = 0;
  void Advanced(int64_t s) {
    std::lock_guard<std::mutex> lock(mu);
    seq = std::max(seq, s);
    cv.notify_all();
  }
  bool WaitFor(int64_t s, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, limit, [&] { return seq >= s; });
  }
};

void BM_LiveChange(benchmark::State& state) {
  const std::string a_dir = ScratchPath("live-a").string(), b_dir = ScratchPath("live-b").string();
  auto a_lib = Check(Library::Create(a_dir, "alpha", std::nullopt), "create A");
  auto b_lib = Check(Library::Create(b_dir, "beta", a_lib->library_id()), "create B");
  Identity a_id = Check(EnsureIdentity(*a_lib), "identity A");
  Identity b_id = Check(EnsureIdentity(*b_lib), "identity B");
  Uuid a_uuid = Check(a_lib->LocalDevice(), "A").uuid;
  Seen seen;
  NodeOptions bo;
  bo.library_dir = b_dir;
  bo.listen = "127.0.0.1:0";
  bo.write_status = false;
  bo.on_event = [&](const NodeEvent& e) {
    if (auto* adv = std::get_if<OwnerAdvancedEvent>(&e); adv && adv->owner == a_uuid)
      seen.Advanced(adv->seq.value());
  };
  Check(b_lib->AddPeer("alpha", a_id.device_id(), "").status(), "pair B");
  auto b = Check(Node::Open(bo), "open B");
  Check(b->Start(), "start B");
  Check(a_lib->AddPeer("beta", b_id.device_id(), "127.0.0.1:" + std::to_string(b->listen_port())).status(),
        "pair A");
  NodeOptions ao;
  ao.library_dir = a_dir;
  ao.write_status = false;
  auto a = Check(Node::Open(ao), "open A");
  Check(a->Start(), "start A");

  TransactionManager tm(*a_lib, a->bus());
  LocationInfo loc = Check(tm.AddLocation("/live", "live"), "location");
  std::vector<EntryRecord>& rows = SyntheticRows(10000);
  Check(tm.CommitBulkEntries(loc, rows).status(), "commit");
  if (!seen.WaitFor(Check(a_lib->LocalDevice(), "A").max_seq.value(), std::chrono::seconds(60))) {
    state.SkipWithError("B did not get A's index within 60 s");
    return;
  }
  std::vector<double> ms;
  size_t i = 0;
  for (auto _ : state) {
    std::vector<EntryRecord> change{rows[1 + i % (rows.size() - 1)]};
    change[0].name = "renamed-" + std::to_string(i++) + "-" + change[0].name;
    auto t0 = std::chrono::steady_clock::now();
    int64_t want = Check(tm.CommitChanges(loc, change), "rename").value();
    if (!seen.WaitFor(want, std::chrono::seconds(10))) {
      state.SkipWithError("a rename did not reach B within 10 s");
      break;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(secs);
    ms.push_back(secs * 1000);
  }
  a->Stop();
  b->Stop();
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  auto q = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
  state.counters["p50_ms"] = q(0.5);
  state.counters["p99_ms"] = q(0.99);
  state.counters["max_ms"] = ms.back();
}
BENCHMARK(BM_LiveChange)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1000);

}  // namespace
}  // namespace entrysync::bench

BENCHMARK_MAIN();
