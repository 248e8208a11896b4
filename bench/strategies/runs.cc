#include "strategies/runs.h"

#include <sys/wait.h>

#include <cstdio>
#include <regex>
#include <thread>
#include <tuple>

#include "base/event_bus.h"
#include "proto/frame.h"
#include "store/library.h"
#include "store/transaction_manager.h"
#include "strategies/libraries.h"

namespace entrysync::bench {
namespace {

std::string Listen(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// The size of the one frame A's daemon sends to announce a bulk commit of N.
uint64_t NoticeFrameBytes(uint64_t n) {
  wire::BulkIndexComplete msg;
  msg.set_owner(std::string(16, '\x42'));
  msg.set_location(std::string(16, '\x43'));
  msg.set_entry_count(n);
  msg.set_max_seq(static_cast<int64_t>(n + 1));
  msg.set_epoch(0x1234567890abcdefULL);
  msg.set_time_ms(WallMs());
  return EncodeFrame(msg).size();
}

void Verify(RunDir& rd, const Device& a, const Device& b, BenchRun* r) {
  r->digest = VerifyDigest(rd, a, b, r->strategy + " at " + std::to_string(r->entries) + " entries");
}

}  // namespace

BenchRun RunPull(const std::string& strategy, uint64_t n, const fs::path& a_template, RunDir& rd) {
  BenchRun r;
  r.strategy = strategy;
  r.entries = n;
  uint16_t port = FreePort();
  auto [a, b] = MakePair(rd, a_template, port);
  fs::path a_log;
  std::vector<std::string> serve_args{"--listen", Listen(port)};
  // A prepares its snapshot whatever N (the default threshold is 100,000).
  if (strategy == "snapshot") serve_args.insert(serve_args.end(), {"--snapshot-threshold", "1"});
  pid_t server = StartServe(rd, "serve-a", a.dir, serve_args, Wrapper("ENTRYSYNC_BENCH_WRAP_SENDER"), &a_log);
  WaitFor(
      "A to listen on port " + std::to_string(port), 120, [&] { return PortOpen(port); }, server);
  if (strategy == "snapshot") {
    // A new device joins an owner whose daemon has been up: its index is
    // settled and its snapshot prepared (export timed apart, prepare_s).
    std::smatch m;
    static const std::regex kPrepared(R"(prepared a snapshot of .* in ([0-9.]+)s)");
    WaitFor(
        "A to prepare its snapshot", 600,
        [&] {
          std::string text = ReadFile(a_log);
          if (!std::regex_search(text, m, kPrepared)) return false;
          r.prepare_s = std::stod(m[1]);
          return true;
        },
        server);
  }
  double sender_cpu0 = CpuSeconds(server);
  Exit x;
  std::string out = RunOk(rd, "sync-b",
                          {"--library", b.dir.string(), "sync", "--peer", "alpha", "--strategy", strategy,
                           "--json", "--timeout", "1800"},
                          &x, Wrapper("ENTRYSYNC_BENCH_WRAP_RECEIVER"));
  r.wall_s = x.wall_s;
  r.receiver_peak_rss = static_cast<uint64_t>(x.ru.ru_maxrss) * 1024;
  r.receiver_cpu_s = CpuSeconds(x.ru);
  r.sender_peak_rss = PeakRss(server);
  r.sender_cpu_s = CpuSeconds(server) - sender_cpu0;
  Exit sx = Stop(server);
  if (!Succeeded(sx))
    std::fprintf(stderr, "bench: warning: A's daemon ended with %s\n", Describe(sx).c_str());
  json summary = LastJson(out);
  r.wire_sent = summary.value("wire_sent", 0ULL);
  r.wire_received = summary.value("wire_received", 0ULL);
  r.rows_applied = summary.value("rows_applied", 0ULL);
  Verify(rd, a, b, &r);
  return r;
}

BenchRun RunBulk(const Options& o, uint64_t n, RunDir& rd) {
  BenchRun r;
  r.strategy = "bulk";
  r.entries = n;
  uint16_t port = FreePort();
  Device a, b;  // not a structured binding: the lambdas below capture b
  std::tie(a, b) = MakePair(rd, {}, port);
  pid_t server = StartServe(rd, "serve-a", a.dir, {"--listen", Listen(port)});
  WaitFor(
      "A to listen", 30, [&] { return PortOpen(port); }, server);
  pid_t client = StartServe(rd, "serve-b", b.dir, {"--strategy", "bulk"});
  WaitFor(
      "B to connect to A and be current", 60,
      [&] {
        json st = ReadStatus(b.dir);
        if (st.is_null() || !st.contains("sessions")) return false;
        for (const auto& s : st["sessions"])
          if (s.value("state", "") == "current") return true;
        return false;
      },
      client);
  WatermarkProbe probe(b.dir, a.uuid);
  json gen = Populate(rd, "generate-a", a.dir, o.folder, n, o.seed);
  auto t0 = Clock::now();
  int64_t target = gen["max_seq"];
  r.commit_s = gen["commit_s"];
  WaitFor(
      "B to fetch alpha's bulk index", 1800, [&] { return probe.Seq() >= target; }, client);
  r.wall_s = Since(t0);
  r.until_current_s = r.commit_s + r.wall_s;
  // Wire bytes: from B's status file, written twice a second.
  int64_t done_ms = WallMs();
  json st;
  WaitFor(
      "B's status file to catch up", 10,
      [&] {
        st = ReadStatus(b.dir);
        return !st.is_null() && st.value("updated_ms", int64_t{0}) > done_ms + 50;
      },
      client);
  for (const auto& s : st["sessions"]) {
    r.wire_sent += s.value("wire_sent", 0ULL);
    r.wire_received += s.value("wire_received", 0ULL);
    r.rows_applied += s.value("rows_applied", 0ULL);
  }
  r.receiver_peak_rss = PeakRss(client);
  r.sender_peak_rss = PeakRss(server);
  r.receiver_cpu_s = CpuSeconds(client);
  r.sender_cpu_s = CpuSeconds(server);
  Stop(client);
  Stop(server);
  r.notice_bytes = NoticeFrameBytes(n);
  Verify(rd, a, b, &r);
  return r;
}

LatencyRun RunLatency(const Options& o, uint64_t n, RunDir& rd) {
  LatencyRun lr;
  lr.entries = n;
  uint16_t port = FreePort();
  auto [a, b] = MakePair(rd, {}, port);
  Populate(rd, "generate-a", a.dir, "", n, o.seed);
  pid_t server = StartServe(rd, "serve-a", a.dir, {"--listen", Listen(port)});
  WaitFor(
      "A to listen", 30, [&] { return PortOpen(port); }, server);
  pid_t client = StartServe(rd, "serve-b", b.dir, {});
  auto lib = Library::Open(a.dir.string());
  if (!lib.ok()) Fail(lib.status().message());
  auto locs = (*lib)->ListLocations((*lib)->local_device());
  if (!locs.ok() || locs->empty()) Fail("A has no location");
  auto me = (*lib)->LocalDevice();
  if (!me.ok()) Fail(me.status().message());
  WatermarkProbe probe(b.dir, a.uuid);
  WaitFor(
      "B to be current with A", 120, [&] { return probe.Seq() >= me->max_seq.value(); }, client);
  std::vector<EntryRecord> files;
  auto scan = (*lib)->ScanOwnerEntries((*lib)->local_device(), Seq(0), me->max_seq, 0, [&](EntryRecord&& e) {
    if (e.kind == EntryKind::kFile && files.size() < o.latency_samples) files.push_back(std::move(e));
    return files.size() < o.latency_samples;
  });
  if (!scan.ok() || files.empty()) Fail("no files to rename in A");
  EventBus bus;
  TransactionManager tm(**lib, bus);
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<EntryRecord> change{files[i]};
    change[0].name = "renamed-" + std::to_string(i) + "-" + change[0].name;
    auto t0 = Clock::now();
    auto seq = tm.CommitChanges((*locs)[0], change);
    if (!seq.ok()) Fail(seq.status().message());
    auto deadline = t0 + std::chrono::seconds(10);
    while (probe.Seq() < seq->value()) {
      if (Clock::now() > deadline) Fail("a rename did not reach B within 10 s");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    lr.ms.push_back(Since(t0) * 1000);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Stop(client);
  Stop(server);
  std::sort(lr.ms.begin(), lr.ms.end());
  return lr;
}

}  // namespace entrysync::bench
