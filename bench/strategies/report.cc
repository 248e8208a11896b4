#include "strategies/report.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace entrysync::bench {
namespace {

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string MB(uint64_t b) { return Fmt("%.1f", b / 1e6); }

const char* LongName(const std::string& s) {
  if (s == "change") return "individual StateChange";
  if (s == "batch") return "StateBatch";
  if (s == "bulk") return "bulk notice + background fetch";
  if (s == "snapshot") return "snapshot";
  return "?";
}

}  // namespace

std::string Thousands(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string Seconds(double s) { return s < 10 ? Fmt("%.2f", s) : s < 100 ? Fmt("%.1f", s) : Fmt("%.0f", s); }

json ToJson(const BenchRun& r) {
  json j{{"strategy", r.strategy},
         {"entries", r.entries},
         {"peers", r.peers},
         {"wall_s", r.wall_s},
         {"wire_bytes", r.wire_bytes()},
         {"wire_sent", r.wire_sent},
         {"wire_received", r.wire_received},
         {"bytes_per_entry", r.entries ? static_cast<double>(r.wire_bytes()) / r.entries : 0},
         {"records_per_s", r.records_per_s()},
         {"sender_peak_rss", r.sender_peak_rss},
         {"receiver_peak_rss", r.receiver_peak_rss},
         {"floor_s", r.floor_s},
         {"x_floor", r.floor_s > 0 ? r.wall_s / r.floor_s : 0},
         {"estimated", r.estimated}};
  if (r.estimated) j["estimated_from"] = r.estimated_from;
  if (!r.digest.empty()) j["digest"] = r.digest;
  if (r.commit_s >= 0) j["commit_s"] = r.commit_s;
  if (r.prepare_s >= 0) j["prepare_s"] = r.prepare_s;
  if (r.until_current_s >= 0) j["commit_to_current_s"] = r.until_current_s;
  if (r.notice_bytes) j["notice_bytes"] = r.notice_bytes;
  if (!r.estimated) j["rows_applied"] = r.rows_applied;
  if (r.sender_cpu_s >= 0) j["sender_cpu_s"] = r.sender_cpu_s;
  if (r.receiver_cpu_s >= 0) j["receiver_cpu_s"] = r.receiver_cpu_s;
  return j;
}

json Document(const std::vector<BenchRun>& runs, const Floors& floors,
              const std::optional<LatencyRun>& latency) {
  json doc{{"runs", json::array()}};
  for (const auto& r : runs) doc["runs"].push_back(ToJson(r));
  for (const auto& [n, f] : floors) doc["floor"].push_back({{"entries", n}, {"floor_s", f}});
  if (latency)
    doc["latency"] = {{"entries", latency->entries},
                      {"samples", latency->ms.size()},
                      {"p50_ms", latency->Quantile(0.5)},
                      {"p99_ms", latency->Quantile(0.99)},
                      {"max_ms", latency->ms.back()}};
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  doc["machine"] = {{"cores", std::thread::hardware_concurrency()}, {"host", host}};
  return doc;
}

std::string Table(const std::vector<BenchRun>& runs, const Floors& floors) {
  std::string t =
      "| strategy | entries | wall s | x floor | records/s | wire MB (both ways) | bytes/entry | sender peak "
      "RSS MB "
      "| receiver peak RSS MB |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [n, f] : floors)
    t += "| floor: bare SQLite, batches of 1000 | " + Thousands(n) + " | " + Seconds(f) + " | 1.00 | " +
         Thousands(static_cast<uint64_t>(n / f)) + " | - | - | - | - |\n";
  for (const auto& r : runs) {
    std::string name = LongName(r.strategy);
    if (r.estimated) name += " (**estimated** from " + r.estimated_from + ")";
    if (r.prepare_s >= 0) name += " (A's export prepared beforehand: " + Seconds(r.prepare_s) + " s)";
    t += "| " + name + " | " + Thousands(r.entries) + " | " + Seconds(r.wall_s) + " | " +
         (r.floor_s > 0 ? Fmt("%.2f", r.wall_s / r.floor_s) : "-") + " | " +
         Thousands(static_cast<uint64_t>(r.records_per_s())) + " | " + MB(r.wire_bytes()) + " | " +
         Fmt("%.1f", static_cast<double>(r.wire_bytes()) / r.entries) + " | " +
         (r.estimated ? "-" : MB(r.sender_peak_rss)) + " | " + (r.estimated ? "-" : MB(r.receiver_peak_rss)) +
         " |\n";
  }
  return t;
}

std::string SeedTable(const std::vector<BenchRun>& runs) {
  uint64_t n = 0;
  for (const auto& r : runs) n = std::max(n, r.entries);
  std::map<std::string, std::string> seed{{"change", "500 MB / 10 min"},
                                          {"batch", "50 MB / 2 min"},
                                          {"bulk", "1 KB / async"},
                                          {"snapshot", "150 MB / 30 s"}};
  std::string t = "| Strategy | seed estimate, 1M entries (data / time) | measured, " + Thousands(n) +
                  " entries (data / time) |\n|---|---|---|\n";
  for (const char* s : {"change", "batch", "bulk", "snapshot"}) {
    for (const auto& r : runs) {
      if (r.strategy != s || r.entries != n) continue;
      std::string m = MB(r.wire_bytes()) + " MB / " + Seconds(r.wall_s) + " s";
      if (r.strategy == "bulk")
        m = std::to_string(r.notice_bytes) + " B notice (frame) / async; fetch " + MB(r.wire_bytes()) +
            " MB in " + Seconds(r.wall_s) + " s after the commit";
      if (r.estimated) m += " (estimated from " + r.estimated_from + ")";
      if (r.prepare_s >= 0) m += " (+ " + Seconds(r.prepare_s) + " s export, done before the peer asked)";
      t += std::string("| ") + LongName(s) + " | " + seed[s] + " | " + m + " |\n";
    }
  }
  return t;
}

void Plot(const std::vector<BenchRun>& runs, const Floors& floors, const fs::path& png,
          const fs::path& work) {
  fs::path dat = work / "plot.dat", gp = work / "plot.gp";
  std::ofstream d(dat);
  std::vector<std::string> series;
  for (const char* s : {"change", "batch", "bulk", "snapshot"}) {
    bool any = false;
    for (const auto& r : runs)
      if (r.strategy == s) {
        if (!any) d << "# " << s << "\n";
        any = true;
        d << r.entries << " " << r.wall_s << " " << r.wire_bytes() << " " << (r.estimated ? 1 : 0) << "\n";
      }
    if (any) {
      d << "\n\n";
      series.push_back(s);
    }
  }
  d << "# floor\n";
  for (const auto& [n, f] : floors) d << n << " " << f << " 0 0\n";
  d.close();
  std::ofstream g(gp);
  g << "set terminal pngcairo size 1100,450 font ',10'\n"
    << "set output '" << png.string() << "'\n"
    << "set multiplot layout 1,2 title 'entrysync strategies: A -> B, two processes, TLS on loopback'\n"
    << "set logscale xy\nset grid\nset key top left\nset xlabel 'entries'\nset format x '%.0s%c'\n"
    << "set ylabel 'wall seconds until B is current'\n";
  g << "plot ";
  for (size_t i = 0; i < series.size(); ++i)
    g << "'" << dat.string() << "' index " << i << " using 1:2 with linespoints lw 2 title '" << series[i]
      << (series[i] == "change" ? " (dashed point: estimated)" : "") << "', ";
  g << "'" << dat.string() << "' index " << series.size()
    << " using 1:2 with linespoints lw 2 dt 2 lc rgb 'black' title 'floor: bare SQLite'\n";
  g << "set ylabel 'bytes on the wire (both directions)'\nset format y '%.0s%cB'\nplot ";
  for (size_t i = 0; i < series.size(); ++i)
    g << (i ? ", " : "") << "'" << dat.string() << "' index " << i
      << " using 1:3 with linespoints lw 2 title '" << series[i] << "'";
  g << "\nunset multiplot\n";
  g.close();
  std::string cmd = "gnuplot '" + gp.string() + "' 2>'" + (work / "gnuplot.err").string() + "'";
  if (std::system(cmd.c_str()) != 0)
    Fail("gnuplot failed (is gnuplot installed? apt-get install gnuplot-nox): " +
         Tail(ReadFile(work / "gnuplot.err")));
}

std::string LatencyLine(const LatencyRun& latency) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "One changed file reaching a connected peer (%zu renames, library of %s entries): "
                "p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                latency.ms.size(), Thousands(latency.entries).c_str(), latency.Quantile(0.5),
                latency.Quantile(0.99), latency.ms.back());
  return buf;
}

}  // namespace entrysync::bench
