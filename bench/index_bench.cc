// index_bench: indexes a real folder, then rescans it with nothing changed.
//
//   index_bench PATH [--json FILE] [--dir DIR] [--keep]
//
// Creates a fresh library in a temporary folder, runs Indexer::AddLocation
// on PATH (walk, then one bulk commit) and prints walk and commit seconds,
// then Indexer::Rescan of the same location and this device's max seq before
// and after it. A rescan of an unchanged tree must assign no new seq; the
// exit code is 2 when it did (the tree changed under us, or a bug).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/event_bus.h"
#include "index/env.h"
#include "index/indexer.h"
#include "store/library.h"
#include "store/transaction_manager.h"

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "index_bench: %s\n", msg.c_str());
  std::exit(1);
}

uint64_t FileSize(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

double Rate(uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0; }

}  // namespace

int main(int argc, char** argv) {
  std::string path, json, dir;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(k + " needs a value");
      return argv[++i];
    };
    if (k == "--json")
      json = next();
    else if (k == "--dir")
      dir = next();
    else if (k == "--keep")
      keep = true;
    else if (k == "--help" || k == "-h") {
      std::printf("usage: index_bench PATH [--json FILE] [--dir DIR] [--keep]\n");
      return 0;
    } else if (!k.empty() && k[0] == '-') {
      Die("unknown argument " + k + " (see --help)");
    } else {
      path = k;
    }
  }
  if (path.empty()) Die("usage: index_bench PATH [--json FILE] [--dir DIR] [--keep]");

  std::string base = dir.empty() ? fs::temp_directory_path().string() : dir;
  std::string tmpl = (fs::path(base) / "entrysync-index-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp in " + base + ": " + std::strerror(errno));
  fs::path work(tmpl);

  auto lib = entrysync::Library::Create((work / "lib").string(), "bench", std::nullopt);
  if (!lib.ok()) Die(lib.status().ToString());
  entrysync::EventBus bus;
  uint64_t bulk_events = 0, state_changes = 0;
  bus.Subscribe([&](const entrysync::Event& e) {
    if (std::holds_alternative<entrysync::BulkIndexComplete>(e))
      ++bulk_events;
    else
      ++state_changes;
  });
  entrysync::TransactionManager tm(**lib, bus);
  entrysync::Indexer indexer(**lib, tm, entrysync::DefaultEnv());
  entrysync::IndexOptions opts;

  auto first = indexer.AddLocation(path, opts);
  if (!first.ok()) Die(first.status().ToString());
  fs::path db = work / "lib" / entrysync::Library::kDbFile;
  uint64_t db_bytes = FileSize(db), wal_bytes = FileSize(db.string() + "-wal");
  auto owner = (*lib)->local_device();
  auto before = (*lib)->MaxStoredSeq(owner);
  if (!before.ok()) Die(before.status().ToString());

  uint64_t events_before = bulk_events + state_changes;
  auto again = indexer.Rescan(first->location, opts);
  if (!again.ok()) Die(again.status().ToString());
  auto after = (*lib)->MaxStoredSeq(owner);
  if (!after.ok()) Die(after.status().ToString());
  uint64_t rescan_events = bulk_events + state_changes - events_before;

  const auto& a = *first;
  const auto& r = *again;
  std::printf("index %s: %llu entries, %zu errors (unreadable folders etc.)\n\n",
              a.location.record.root_path.c_str(), static_cast<unsigned long long>(a.entries),
              a.errors.size());
  std::printf("| step | entries | walk s | commit s | walk entries/s | commit entries/s |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  std::printf("| AddLocation (first index) | %llu | %.2f | %.2f | %.0f | %.0f |\n",
              static_cast<unsigned long long>(a.entries), a.walk_seconds, a.commit_seconds,
              Rate(a.entries, a.walk_seconds), Rate(a.entries, a.commit_seconds));
  std::printf("| Rescan (nothing changed) | %llu | %.2f | %.2f | %.0f | - |\n",
              static_cast<unsigned long long>(r.entries), r.walk_seconds, r.commit_seconds,
              Rate(r.entries, r.walk_seconds));
  std::printf("\nlibrary: %.1f MB db + %.1f MB wal\n", static_cast<double>(db_bytes) / 1048576.0,
              static_cast<double>(wal_bytes) / 1048576.0);
  std::printf("rescan: added %llu, modified %llu, deleted %llu, unchanged %llu; events %llu\n",
              static_cast<unsigned long long>(r.added), static_cast<unsigned long long>(r.modified),
              static_cast<unsigned long long>(r.deleted), static_cast<unsigned long long>(r.unchanged),
              static_cast<unsigned long long>(rescan_events));
  bool same = before->value() == after->value();
  std::printf("max_seq before rescan %lld, after %lld: %s\n", static_cast<long long>(before->value()),
              static_cast<long long>(after->value()), same ? "no new seq" : "NEW SEQS ASSIGNED");

  if (!json.empty()) {
    nlohmann::json j = {{"path", a.location.record.root_path},
                        {"entries", a.entries},
                        {"errors", a.errors.size()},
                        {"walk_seconds", a.walk_seconds},
                        {"commit_seconds", a.commit_seconds},
                        {"db_bytes", db_bytes},
                        {"wal_bytes", wal_bytes},
                        {"rescan",
                         {{"walk_seconds", r.walk_seconds},
                          {"commit_seconds", r.commit_seconds},
                          {"added", r.added},
                          {"modified", r.modified},
                          {"deleted", r.deleted},
                          {"unchanged", r.unchanged},
                          {"max_seq_before", before->value()},
                          {"max_seq_after", after->value()}}}};
    std::ofstream(json) << j.dump(2) << "\n";
  }
  lib->reset();
  if (!keep) {
    std::error_code ec;
    fs::remove_all(work, ec);
  } else {
    std::printf("library kept in %s\n", (work / "lib").c_str());
  }
  return same ? 0 : 2;
}
