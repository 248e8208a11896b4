// Indexer: walks a location's folder tree and records it in the library.
//
// The walk never follows symlinks (they are recorded as symlinks), skips a
// folder it has already visited (bind-mount loops), and survives what a live
// filesystem does: an unreadable folder is recorded and reported, not
// fatal; a file or folder that vanishes mid-walk is skipped.
//
// Rescan compares the tree with what is stored: added and changed entries
// take new seqs, removed ones become tombstones (a removed folder's whole
// subtree), unchanged ones keep their seq. An entry that kept its inode but
// was renamed or moved keeps its uuid. The contents of a folder that cannot
// be read now are kept as they were, never tombstoned.
//
// Not thread-safe: one Indexer per writer thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "index/env.h"
#include "store/library.h"
#include "store/transaction_manager.h"

namespace entrysync {

struct IndexReport {
  LocationInfo location;
  uint64_t entries = 0;  // live entries in the location after the run
  uint64_t added = 0;
  uint64_t modified = 0;  // changed metadata, moved or renamed
  uint64_t deleted = 0;   // new tombstones
  uint64_t unchanged = 0;
  bool bulk = false;  // committed with CommitBulkEntries
  Seq max_seq;        // this device's max seq after the commit
  double walk_seconds = 0;
  double commit_seconds = 0;
  std::vector<std::string> errors;  // one line each: unreadable folders etc.
};

struct IndexOptions {
  // A rescan with more changes than this commits as one bulk commit (one
  // BulkIndexComplete) instead of one StateChange per row.
  uint64_t bulk_threshold = 1000;
  // Called now and then during the walk with the number of entries seen.
  std::function<void(uint64_t)> progress;
};

class Indexer {
 public:
  Indexer(Library& lib, TransactionManager& tm, Env* env) : lib_(lib), tm_(tm), env_(env) {}

  // Makes `path` a new location of this device and indexes it with one bulk
  // commit. Fails, storing nothing, when `path` is missing or not a folder,
  // or is already a location.
  Result<IndexReport> AddLocation(const std::string& path, const IndexOptions& options);

  // Rescans an existing location of this device.
  Result<IndexReport> Rescan(const LocationInfo& location, const IndexOptions& options);

 private:
  Library& lib_;
  TransactionManager& tm_;
  Env* env_;
};

// Splits a file name into its extension: "a.tar.GZ" -> "gz"; "" for folders,
// names without a dot, and dotfiles like ".bashrc".
std::string ExtensionOf(const std::string& name, EntryKind kind);

}  // namespace entrysync
