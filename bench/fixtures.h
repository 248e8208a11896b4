// What the in-process benchmarks (Google Benchmark) share: the sizes they
// run at, the synthetic tree at each size, and a scratch folder.
//
// Not thread-safe: benchmarks here run on one thread.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "entrysync/record.h"

namespace entrysync::bench {

// The seed of every synthetic tree the in-process benchmarks use.
inline constexpr uint64_t kTreeSeed = 42;

// MakeSyntheticTree(n, kTreeSeed), made on first use and kept for the life
// of the process: every benchmark at size n reuses the same rows. Mutable
// because TransactionManager commits assign seq and location in place; the
// rest of each row (uuid, parent, name, ...) stays as generated.
std::vector<EntryRecord>& SyntheticRows(uint64_t n);

// A path that does not exist yet, `stem` plus a number, in one scratch
// folder made under $TMPDIR (or /tmp) on first use and removed with its
// contents when the process exits.
std::filesystem::path ScratchPath(const std::string& stem);

// Size of a file, 0 when it does not exist.
uint64_t FileSize(const std::filesystem::path& p);

// Entry counts 10K, 100K, 1M; wall time (UseRealTime) and the process's CPU
// time, in ms; and a "min" statistic beside mean and median when run with
// --benchmark_repetitions (the machine is shared: best of R is the steadier
// figure).
void SizeArgs(benchmark::internal::Benchmark* b);

}  // namespace entrysync::bench
