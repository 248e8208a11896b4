// strategies_bench: the seed's strategy table, measured end to end. Syncs N
// synthetic entries from a fresh library A to a fresh peer B, each side a
// separate `entrysync` process, over TLS on 127.0.0.1, once per forced
// strategy, and measures wall time, wire bytes, records/s, CPU and peak RSS
// of both sides against a bare-SQLite floor; then the latency of single
// changes between connected daemons. See bench/README.md.
//
// Exits 0 when every run finished and every digest matched, 1 when a run
// failed (its libraries and logs are kept), 2 on bad usage.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strategies/floor.h"
#include "strategies/libraries.h"
#include "strategies/processes.h"
#include "strategies/report.h"
#include "strategies/runs.h"
#include "synthetic_tree.h"

namespace entrysync::bench {
namespace {

std::vector<std::string> SplitCsv(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// 10000, 10K, 1M; nullopt when `s` is not a count.
std::optional<uint64_t> ParseCount(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  std::string unit = end ? std::string(end) : "";
  if (unit == "K" || unit == "k")
    v *= 1e3;
  else if (unit == "M" || unit == "m")
    v *= 1e6;
  else if (!unit.empty() || v < 1)
    return std::nullopt;
  return static_cast<uint64_t>(std::llround(v));
}

// An estimated change run at `n` entries, scaled linearly from the largest
// measured change run in `runs`; nullopt when there is none.
std::optional<BenchRun> EstimateChange(const std::vector<BenchRun>& runs, uint64_t n) {
  const BenchRun* base = nullptr;
  for (const auto& r : runs)
    if (r.strategy == "change" && !r.estimated && (!base || r.entries > base->entries)) base = &r;
  if (!base) return std::nullopt;
  BenchRun e = *base;
  double k = static_cast<double>(n) / base->entries;
  e.entries = n;
  e.wall_s = base->wall_s * k;
  e.wire_sent = static_cast<uint64_t>(base->wire_sent * k);
  e.wire_received = static_cast<uint64_t>(base->wire_received * k);
  e.estimated = true;
  char from[64];
  std::snprintf(from, sizeof from, " x %.0f", k);
  e.estimated_from = Thousands(base->entries) + from;
  e.digest.clear();
  return e;
}

// Runs every size and strategy of `o`, prints the tables, writes the JSON
// and the plot. Returns the process's exit code.
int RunBench(Options o) {
  KillLeftovers cleanup;
  bool temp = o.workdir.empty();
  fs::path work = temp ? fs::temp_directory_path() / ("entrysync-bench-" + std::to_string(getpid()))
                       : fs::path(o.workdir);
  work = fs::absolute(work);
  std::error_code ec;
  fs::create_directories(work, ec);
  if (ec) {
    std::fprintf(stderr, "strategies_bench: create %s: %s\n", work.c_str(), ec.message().c_str());
    return 1;
  }
  std::sort(o.entries.begin(), o.entries.end());
  std::vector<BenchRun> runs;
  Floors floors;
  std::optional<LatencyRun> latency;
  auto log = [&](const std::string& s) {
    if (!o.quiet) std::fprintf(stderr, "bench: %s\n", s.c_str());
  };
  auto run_dir = [&](const std::string& name) {
    RunDir rd{work / name, o.entrysync};
    fs::remove_all(rd.dir, ec);
    fs::create_directories(rd.dir / "logs");
    return rd;
  };
  try {
    for (uint64_t n : o.entries) {
      // One library A holding the N entries, copied for every pull run
      // (with --folder: always, it tells N).
      fs::path tmpl = work / ("a-" + std::to_string(n));
      bool need_template = !o.folder.empty();
      for (const auto& s : o.strategies) need_template |= s != "bulk";
      if (need_template) {
        fs::remove_all(tmpl, ec);
        RunDir rd = run_dir("template-" + std::to_string(n));
        RunOk(rd, "init", {"--library", tmpl.string(), "init", "--name", "alpha"});
        json gen = Populate(rd, "generate", tmpl, o.folder, n, o.seed);
        if (!o.folder.empty()) n = gen["entries"];
        log((o.folder.empty() ? "generated A with " : "indexed " + o.folder + " into A: ") + Thousands(n) +
            " entries: " + gen.dump());
      }
      // Floor, with nothing else running: the same rows into bare SQLite.
      {
        auto rows = o.folder.empty() ? MakeSyntheticTree(n, o.seed) : OwnRows(tmpl);
        floors[n] = FloorSeconds(work / "floor.db", rows);
        log("floor " + Thousands(n) + ": " + Seconds(floors[n]) + " s");
      }
      for (const auto& s : o.strategies) {
        if (s == "change" && n > o.change_max) {
          if (auto e = EstimateChange(runs, n)) {
            e->floor_s = floors[n];
            runs.push_back(*e);
            log("change " + Thousands(n) + ": estimated from " + e->estimated_from);
            continue;
          }
        }
        RunDir rd = run_dir(s + "-" + std::to_string(n));
        log(s + " " + Thousands(n) + " ...");
        BenchRun r = s == "bulk" ? RunBulk(o, n, rd) : RunPull(s, n, tmpl, rd);
        r.floor_s = floors[n];
        log(s + " " + Thousands(n) + ": " + ToJson(r).dump());
        runs.push_back(r);
        if (!o.keep) fs::remove_all(rd.dir, ec);
      }
      if (!o.keep) fs::remove_all(tmpl, ec);
    }
    if (o.latency_samples > 0) {
      uint64_t n = o.folder.empty() ? o.entries.front() : 10000;  // synthetic either way
      RunDir rd = run_dir("latency-" + std::to_string(n));
      log("latency: " + std::to_string(o.latency_samples) + " single renames on a library of " +
          Thousands(n) + " entries ...");
      latency = RunLatency(o, n, rd);
      if (!o.keep) fs::remove_all(rd.dir, ec);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strategies_bench: %s (logs and libraries under %s)\n", e.what(), work.c_str());
    return 1;
  }
  std::printf("%s\n%s", Table(runs, floors).c_str(), SeedTable(runs).c_str());
  if (latency) std::printf("\n%s\n", LatencyLine(*latency).c_str());
  std::fflush(stdout);
  if (!o.json_file.empty()) std::ofstream(o.json_file) << Document(runs, floors, latency).dump(2) << "\n";
  try {
    if (!o.plot_file.empty()) Plot(runs, floors, fs::absolute(o.plot_file), work);
  } catch (const BenchError& e) {
    std::fprintf(stderr, "strategies_bench: %s\n", e.what());
    return 1;
  }
  if (temp && !o.keep) fs::remove_all(work, ec);
  return 0;
}

}  // namespace
}  // namespace entrysync::bench

int main(int argc, char** argv) {
  using namespace entrysync::bench;
  CLI::App app{"strategies_bench: every entrysync sync strategy, measured end to end (see bench/README.md)"};
  Options o;
  o.entrysync = ENTRYSYNC_BIN;  // the entrysync of this build tree
  std::string entries = "10000,100000,1000000";
  std::string strategies = "change,batch,bulk,snapshot";
  app.add_option("--entrysync", o.entrysync, "The entrysync binary to run (default: this build's)")
      ->check(CLI::ExistingFile)
      ->capture_default_str();
  app.add_option("--entries", entries, "Comma-separated entry counts (10000,100K,1M)");
  app.add_option("--strategies", strategies, "Comma-separated: change,batch,bulk,snapshot");
  app.add_option("--json", o.json_file, "Write {\"runs\": [...]} to FILE");
  app.add_option("--plot", o.plot_file, "Draw time and bytes vs entries to FILE.png (gnuplot)");
  app.add_option("--workdir", o.workdir, "Folder for the libraries and logs (default: a temp folder)");
  app.add_flag("--keep", o.keep, "Keep the libraries and logs of every run");
  app.add_option(
      "--change-max", o.change_max,
      "Above this many entries, individual StateChange is estimated from the largest measured run");
  app.add_option("--seed", o.seed, "Synthetic tree seed");
  app.add_flag("--quiet", o.quiet, "No progress lines on stderr");
  app.add_option("--folder", o.folder,
                 "Index this real folder as A's entries instead of a synthetic tree (--entries is ignored)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--latency", o.latency_samples,
                 "Single renames timed from A's commit to B's (0 = skip), on the smallest library");
  CLI11_PARSE(app, argc, argv);

  auto usage = [](const std::string& why) {
    std::fprintf(stderr, "strategies_bench: %s\n", why.c_str());
    return 2;
  };
  o.entries.clear();
  for (const auto& e : SplitCsv(entries)) {
    auto n = ParseCount(e);
    if (!n) return usage("--entries: '" + e + "' is not a count");
    o.entries.push_back(*n);
  }
  if (!o.folder.empty()) o.entries = {0};  // N is the folder's
  o.strategies = SplitCsv(strategies);
  for (const auto& s : o.strategies)
    if (s != "change" && s != "batch" && s != "bulk" && s != "snapshot")
      return usage("--strategies: unknown strategy '" + s + "'");
  if (o.entries.empty() || o.strategies.empty()) return usage("nothing to run");
  o.entrysync = fs::absolute(o.entrysync).string();
  return RunBench(o);
}
