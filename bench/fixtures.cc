#include "fixtures.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "synthetic_tree.h"

namespace entrysync::bench {
namespace {

namespace fs = std::filesystem;

// The scratch folder; removed by its destructor at exit.
struct Scratch {
  Scratch() {
    std::string tmpl = (fs::temp_directory_path() / "entrysync-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "bench: mkdtemp %s: %s\n", tmpl.c_str(), std::strerror(errno));
      std::exit(1);
    }
    dir = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir;
  int next = 0;
};

}  // namespace

std::vector<EntryRecord>& SyntheticRows(uint64_t n) {
  static std::map<uint64_t, std::vector<EntryRecord>> rows;
  auto it = rows.find(n);
  if (it == rows.end()) it = rows.emplace(n, MakeSyntheticTree(n, kTreeSeed)).first;
  return it->second;
}

fs::path ScratchPath(const std::string& stem) {
  static Scratch scratch;
  return scratch.dir / (stem + std::to_string(scratch.next++));
}

uint64_t FileSize(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

void SizeArgs(benchmark::internal::Benchmark* b) {
  b->Arg(10'000)->Arg(100'000)->Arg(1'000'000);
  b->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
  b->ComputeStatistics("min",
                       [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
}

}  // namespace entrysync::bench
