// TransactionManager: commits this device's own changes and announces them.
//
// Every change takes the next value of this device's sequence, in the same
// transaction that writes the rows. After the commit, the event bus hears of
// it: one BulkIndexComplete for a bulk commit (never one event per entry),
// one StateChange per row for a small commit. Nothing is published when a
// commit fails, and then nothing was stored.
//
// Not thread-safe: one TransactionManager per writer thread.
#pragma once

#include <vector>

#include "base/event_bus.h"
#include "store/entry_writer.h"
#include "store/library.h"

namespace entrysync {

class TransactionManager {
 public:
  TransactionManager(Library& lib, EventBus& bus) : lib_(lib), bus_(bus) {}

  // Adds a location of this device rooted at `root_path` (absolute,
  // canonical). AlreadyExists when that root is already a location.
  Result<LocationInfo> AddLocation(const std::string& root_path, const std::string& name);

  // Writes a whole index of `location` in one transaction with prepared
  // statements. Assigns each record the next seq, in order (records are
  // updated in place), and publishes exactly one BulkIndexComplete.
  Result<BulkIndexComplete> CommitBulkEntries(const LocationInfo& location,
                                              std::vector<EntryRecord>& entries);

  // Writes a few changed rows (adds, updates, tombstones) in one
  // transaction, assigning seqs, and publishes one StateChange per row.
  // Returns the last seq assigned (the previous max when `entries` is empty).
  Result<Seq> CommitChanges(const LocationInfo& location, std::vector<EntryRecord>& entries);

 private:
  // Writes `entries` with new seqs in one transaction; returns the max seq.
  Result<Seq> WriteWithSeqs(const LocationInfo& location, std::vector<EntryRecord>& entries);

  Library& lib_;
  EventBus& bus_;
};

}  // namespace entrysync
