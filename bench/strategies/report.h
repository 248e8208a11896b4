// What strategies_bench prints and writes: the Markdown tables, the JSON
// document (bench/results/strategies.json) and the gnuplot figure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "strategies/runs.h"

namespace entrysync::bench {

// Floor seconds by entry count.
using Floors = std::map<uint64_t, double>;

// One run as an element of "runs" in the JSON document.
json ToJson(const BenchRun& r);

// {"runs": [...], "floor": [...], "latency": {...}, "machine": {...}}.
json Document(const std::vector<BenchRun>& runs, const Floors& floors,
              const std::optional<LatencyRun>& latency);

// Every run and floor: wall, ratio to the floor, records/s, wire, RSS.
std::string Table(const std::vector<BenchRun>& runs, const Floors& floors);

// The seed's estimates beside the measured figures at the largest N.
std::string SeedTable(const std::vector<BenchRun>& runs);

// "One changed file reaching a connected peer: p50 ..., p99 ..., max ...".
std::string LatencyLine(const LatencyRun& latency);

// Draws wall time and wire bytes vs entries (log-log) to `png` with
// gnuplot, its data and script written in `work`. Throws BenchError when
// gnuplot fails.
void Plot(const std::vector<BenchRun>& runs, const Floors& floors, const fs::path& png, const fs::path& work);

std::string Thousands(uint64_t v);
std::string Seconds(double s);

}  // namespace entrysync::bench
