// One measured run of strategies_bench: A's entries reaching B by one forced
// strategy, or the latency of single changes between connected daemons.
// Each run makes its own pair of libraries under `rd.dir`; failures
// (including a digest mismatch) throw BenchError.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "strategies/processes.h"

namespace entrysync::bench {

struct Options {
  std::string entrysync;  // the binary every child process runs
  std::vector<uint64_t> entries{10000, 100000, 1000000};
  std::vector<std::string> strategies{"change", "batch", "bulk", "snapshot"};
  std::string json_file, plot_file, workdir;
  bool keep = false;
  uint64_t change_max = 100000;
  uint64_t seed = 1;
  bool quiet = false;
  uint32_t latency_samples = 200;  // 0 = skip the latency run
  std::string folder;              // index this real folder instead of generating entries
};

struct BenchRun {
  std::string strategy;
  uint64_t entries = 0;
  uint32_t peers = 1;  // receiving devices; one (B) in every run today
  double wall_s = 0;
  uint64_t wire_sent = 0, wire_received = 0;  // as seen by B
  uint64_t sender_peak_rss = 0, receiver_peak_rss = 0;
  double floor_s = 0;
  bool estimated = false;
  std::string estimated_from;
  double commit_s = -1;         // bulk: A's bulk commit (generation excluded)
  double prepare_s = -1;        // snapshot: A's background export, before B asked
  double until_current_s = -1;  // bulk: commit + notice + fetch
  uint64_t notice_bytes = 0;    // bulk: one BulkIndexComplete frame
  uint64_t rows_applied = 0;
  double sender_cpu_s = -1, receiver_cpu_s = -1;  // user + sys
  std::string digest;
  uint64_t wire_bytes() const { return wire_sent + wire_received; }
  double records_per_s() const { return wall_s > 0 ? entries / wall_s : 0; }
};

// One changed file reaching a connected peer: latency of each sample.
struct LatencyRun {
  uint64_t entries = 0;
  std::vector<double> ms;  // sorted
  double Quantile(double q) const {
    if (ms.empty()) return 0;
    size_t i = std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())));
    return ms[i];
  }
};

// change / batch / snapshot: A (a copy of `a_template`, which holds the N
// entries) serves; B runs `entrysync sync --strategy S --json`, timed from
// start to exit. For snapshot, A's daemon first prepares its export
// (reported apart as prepare_s).
BenchRun RunPull(const std::string& strategy, uint64_t n, const fs::path& a_template, RunDir& rd);

// bulk: B's daemon (`serve --strategy bulk`) is connected to A's and current
// before A's bulk commit of N entries; A's daemon announces it and B fetches
// in the background. Timed from the end of the commit until B's watermark of
// A reaches A's max seq.
BenchRun RunBulk(const Options& o, uint64_t n, RunDir& rd);

// latency: A (N synthetic entries) and B's daemons connected and current;
// this process renames one file of A's at a time (one CommitChanges on A's
// library, as `rescan` would) and times each from just before the commit
// until B's watermark covers it. Samples are spaced by 20 ms so each one is
// a single change on an idle connection.
LatencyRun RunLatency(const Options& o, uint64_t n, RunDir& rd);

}  // namespace entrysync::bench
