// The content checksum of a snapshot's rows (docs/snapshot-format.md): the
// SQL aggregate es_snapshot_sum and the query that sums a snapshot's tables.
//
// Thread safety: as the connection it is registered on or run against.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "entrysync/status.h"
#include "store/sqlite.h"

namespace entrysync::snapshot_internal {

// Registers the aggregate es_snapshot_sum(v1, v2, ...) on `db`. Internal
// when SQLite refuses.
Status RegisterSum(sqlite3* db);

// A query returning one row of three sums: of every entry row, every
// location row and every meta row but 'content_sum' of the snapshot tables
// in `schema`. REQUIRES: RegisterSum ran on the connection that runs it.
std::string ContentSumQuery(const std::string& schema);

// The content checksum from the three sums of ContentSumQuery's row.
uint64_t CombineSums(int64_t entry_sum, int64_t location_sum, int64_t meta_sum);

// The content checksum of the snapshot tables in `schema` of `db`.
// REQUIRES: RegisterSum ran on db.raw().
Result<uint64_t> ContentSum(store::Db& db, const std::string& schema);

}  // namespace entrysync::snapshot_internal
