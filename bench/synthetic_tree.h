// A synthetic but realistic folder tree for benchmarks.
//
// MakeSyntheticTree(n, seed) returns exactly `n` EntryRecords in the order
// the indexer's walk produces them (a folder's children are listed, and take
// their uuids, when the folder is listed; child folders are then walked
// depth-first in listing order), so parents always come before children and
// uuids (NewUuidV7) grow in walk order. The first record is the root folder
// (nil parent). `location` and `seq` are left unset.
//
// Shape: every folder lists ~20-200 children (small leaf folders may list
// fewer), a few of them folders; the tree is 6-12 levels deep; folder
// sizes follow a skewed distribution (a few huge subtrees, many small ones).
// Names, extensions, sizes and ns times follow the folder's theme (photos,
// documents, source code, music, system files). Deterministic for a seed,
// except for the uuids.
#pragma once

#include <cstdint>
#include <vector>

#include "entrysync/record.h"

namespace entrysync::bench {

std::vector<EntryRecord> MakeSyntheticTree(uint64_t n, uint64_t seed);

struct TreeStats {
  uint64_t files = 0;
  uint64_t dirs = 0;
  int max_depth = 0;
  double avg_children = 0;  // per non-empty folder
  double avg_name_len = 0;
};
TreeStats DescribeTree(const std::vector<EntryRecord>& rows);

}  // namespace entrysync::bench
