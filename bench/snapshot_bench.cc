// snapshot_bench: export, inspect and import times of one owner's snapshot.
//
//   snapshot_bench [--entries N] [--seed S] [--dir DIR] [--keep] [--replace]
//
// Generates N synthetic entries (bench/synthetic_tree.h), commits them with
// TransactionManager::CommitBulkEntries into library A, then times
// ExportSnapshot of A's own rows, InspectSnapshot of the file, and
// ImportSnapshot (with the expected SHA-256) into an empty library B of the
// same library id. With --replace, A then changes one row and the newer
// snapshot is imported again into B (which deletes and reinserts all N
// rows). Each timed section starts after sync(2).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "base/event_bus.h"
#include "snapshot/snapshot.h"
#include "store/library.h"
#include "store/transaction_manager.h"
#include "synthetic_tree.h"

namespace {

namespace fs = std::filesystem;
using namespace entrysync;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "snapshot_bench: %s\n", msg.c_str());
  std::exit(1);
}

template <class T>
T Check(Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.status().message());
  return std::move(r).value();
}

double Timed(const std::function<void()>& fn) {
  ::sync();
  auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t n = 1000000, seed = 1;
  std::string dir;
  bool keep = false, replace = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--entries") n = std::stoull(next());
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--dir") dir = next();
    else if (a == "--keep") keep = true;
    else if (a == "--replace") replace = true;
    else Die("unknown argument " + a);
  }
  if (dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "snapshot-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp failed");
    dir = tmpl;
  }
  std::vector<EntryRecord> rows = bench::MakeSyntheticTree(n, seed);
  EventBus bus;
  auto a = Check(Library::Create(dir + "/a", "alpha", std::nullopt), "create A");
  auto b = Check(Library::Create(dir + "/b", "beta", a->library_id()), "create B");
  TransactionManager tm(*a, bus);
  LocationInfo loc = Check(tm.AddLocation("/bench", "bench"), "add location");
  double commit = Timed([&] { Check(tm.CommitBulkEntries(loc, rows), "bulk commit"); });
  std::string file = dir + "/alpha.snap";
  SnapshotInfo info;
  double exp = Timed([&] { info = Check(ExportSnapshot(*a, a->local_device(), file), "export"); });
  double insp = Timed([&] { Check(InspectSnapshot(file), "inspect"); });
  ImportStats st;
  double imp = Timed([&] { st = Check(ImportSnapshot(*b, file, info.sha256), "import"); });
  std::printf("entries %llu  file %.1f MB (%.1f B/entry)  bulk commit %.2f s\n",
              (unsigned long long)info.entries, info.size_bytes / 1e6,
              static_cast<double>(info.size_bytes) / std::max<uint64_t>(1, info.entries), commit);
  std::printf("export %.2f s  inspect %.2f s  import %.2f s (inspect and sha included)\n", exp, insp, imp);
  if (replace) {
    std::vector<EntryRecord> one = {rows[n / 2]};
    one[0].size += 1;
    Check(tm.CommitChanges(loc, one), "change");
    std::string file2 = dir + "/alpha2.snap";
    SnapshotInfo info2 = Check(ExportSnapshot(*a, a->local_device(), file2), "export 2");
    double rep = Timed([&] { st = Check(ImportSnapshot(*b, file2, info2.sha256), "import 2"); });
    std::printf("replace import %.2f s (%llu rows deleted, %llu written)\n", rep,
                (unsigned long long)st.rows_replaced, (unsigned long long)st.rows_written);
  }
  if (!keep) {
    a.reset();
    b.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return 0;
}
