// Transfers of one session and their progress: what `status`, the progress
// line and TransferProgressEvents show.
//
// Thread safety: loop only; Session copies List() into its snapshot.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "entrysync/types.h"
#include "sync/config.h"

namespace entrysync {

// Progress of one transfer (a pull or a serve): its total is known up front.
struct TransferProgress {
  uint64_t id = 0;      // the request id on the wire
  bool pulling = true;  // true: we receive; false: we serve
  Uuid owner;
  std::string owner_name;
  Strategy strategy = Strategy::kBatch;
  uint64_t total = 0;  // records in the transfer
  uint64_t done = 0;
  uint64_t bytes = 0;             // payload bytes moved so far
  uint64_t total_bytes = 0;       // bytes of the whole transfer when known (snapshots), else 0
  double started = 0;             // Clock seconds
  double finished = 0;            // 0 while running
  double Rate(double now) const;  // records per second
  double Eta(double now) const;   // seconds left, -1 when unknown
};

struct SessionCounters {
  uint64_t rows_applied = 0;  // rows written to our library
  uint64_t rows_skipped = 0;  // rows received that were already current
  uint64_t rows_sent = 0;
  uint64_t batches_sent = 0;
  uint64_t batches_received = 0;
  uint64_t changes_sent = 0;
  uint64_t changes_received = 0;
  uint64_t notices_sent = 0;
  uint64_t notices_received = 0;
  uint64_t snapshots_sent = 0;      // snapshot downloads served to the end
  uint64_t snapshots_imported = 0;  // snapshots downloaded and imported
  // Replicas of an owner this peer served that did not verify against the
  // owner's signed checkpoint (dropped and fetched again), and owners the
  // peer's digest differed from ours at the same seq (docs/trust.md).
  uint64_t verification_failures = 0;
  uint64_t divergences = 0;
};

// The transfers of one session, running and recently finished. A running
// transfer stays until it finishes; of the finished ones the newest
// kKeepFinished are kept, so a long-lived session's list stays small.
class TransferRegistry {
 public:
  static constexpr size_t kKeepFinished = 16;
  using Key = uint64_t;

  // Registers a running transfer; returns the key that finds it. May drop
  // the oldest finished transfers (references to them become invalid).
  Key Add(TransferProgress p);
  // REQUIRES: `key` from Add, its transfer not dropped (running ones never are).
  TransferProgress& at(Key key) { return items_.at(key); }
  // In the order they started.
  std::vector<TransferProgress> List() const;

 private:
  Key next_ = 1;
  std::map<Key, TransferProgress> items_;
};

}  // namespace entrysync
