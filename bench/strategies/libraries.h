// The libraries of one strategies_bench run: made with `entrysync init`,
// paired with `entrysync peer add`, filled with A's entries, compared with
// `entrysync digest`, and watched while the daemons run.
//
// Failures throw BenchError.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "entrysync/record.h"
#include "entrysync/types.h"
#include "strategies/processes.h"

namespace entrysync::bench {

// One library folder and the identity `entrysync id --json` reports for it.
struct Device {
  fs::path dir;
  std::string device_id, library_id, uuid;
};

// Makes A (alpha) and B (beta) in `rd.dir`, B joining A's library, paired
// both ways, B dialing A at 127.0.0.1:port_a. A is a copy of `a_template`
// (a library already holding the entries) when given, else empty.
std::pair<Device, Device> MakePair(RunDir& rd, const fs::path& a_template, uint16_t port_a);

// Fills library `lib` (no daemon needs to be stopped) with A's entries and
// returns {"entries", "max_seq", "commit_s", ...}:
//  - without `folder`: N synthetic entries (synthetic_tree.h, `seed`) as a
//    new location, in one TransactionManager::CommitBulkEntries made by
//    this process (commit_s: the commit alone, generation excluded);
//  - with `folder`: an index of that real folder, by `entrysync location
//    add` (commit_s: that process's wall time, walk included).
json Populate(RunDir& rd, const std::string& label, const fs::path& lib, const std::string& folder,
              uint64_t n, uint64_t seed);

// The rows of the library's own device in `lib` (the floor of --folder).
std::vector<EntryRecord> OwnRows(const fs::path& lib);

// Compares `entrysync digest` of A's own entries in A with B's copy of
// alpha's; returns the digest, or fails naming `what` when they differ.
std::string VerifyDigest(RunDir& rd, const Device& a, const Device& b, const std::string& what);

// `status.json` of a running daemon's library, or null while it is missing
// or half-written.
json ReadStatus(const fs::path& lib_dir);

// The seq B's watermark holds of owner `owner_uuid`, read from B's library
// file while B's daemon runs (WAL: readers never block the writer). -1
// while B has no watermark of that owner.
class WatermarkProbe {
 public:
  WatermarkProbe(const fs::path& lib_dir, const std::string& owner_uuid);
  ~WatermarkProbe();
  WatermarkProbe(const WatermarkProbe&) = delete;
  WatermarkProbe& operator=(const WatermarkProbe&) = delete;
  int64_t Seq();

 private:
  Uuid owner_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* st_ = nullptr;
};

}  // namespace entrysync::bench
