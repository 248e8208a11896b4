// The floor every strategy's wall time is compared with: the same rows
// inserted by the bare SQLite C API, with no network and no protocol.
#pragma once

#include <filesystem>
#include <vector>

#include "entrysync/record.h"

namespace entrysync::bench {

// Inserts `rows` into an empty `entry` table of the library's schema
// (001_init.sql) in a fresh database at `file`, with the library's
// durability (WAL, synchronous=NORMAL, 64 MB cache), one prepared
// single-row INSERT, 1000 rows per transaction. Returns the seconds taken,
// including the checkpoint the last commit triggers; `file` is removed
// afterwards. Throws BenchError on any SQLite error.
double FloorSeconds(const std::filesystem::path& file, const std::vector<EntryRecord>& rows);

}  // namespace entrysync::bench
