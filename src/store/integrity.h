// Integrity of a library before a daemon serves it.
//
// A daemon passes its library's rows on to every peer, so it looks at the
// file before it serves: a damaged library is refused with one line
// instead of being served (or crashing a session half-way). The checks run
// in order, within one time budget:
//
//   1. structure: SQLite's PRAGMA quick_check over every table and index
//      (b-tree pages, cells, the free list, record formats, NOT NULL and
//      CHECK constraints; it does not compare indexes with their tables,
//      which integrity_check does at several times the cost). It cannot see
//      a changed value that still forms a valid record.
//   2. contents: each owner's rows against its stored set digest
//      (docs/trust.md), recomputed by a scan: catches a value changed
//      inside a valid record, which quick_check cannot see.
//
// Thread safety: a call opens a connection of its own (read-only use) and
// closes it before returning; calls are independent.
#pragma once

#include <chrono>
#include <string>

#include "entrysync/status.h"

namespace entrysync {

struct IntegrityOptions {
  // The checks stop when they run longer (SQLite's progress handler): what
  // ran by then passed, the rest is reported as not checked, not as damage.
  std::chrono::milliseconds budget{15000};
  // At most this many of SQLite's findings are named in the error.
  int max_findings = 3;
};

struct IntegrityReport {
  bool complete = true;  // false: the budget ran out before every check ran
  double seconds = 0;
  std::string summary;  // "quick_check ok in 0.84s", or that the budget ran out
};

// Checks the library in `dir`. Corruption, one line naming the library,
// the check and its first findings, when it is damaged; IOError when it
// cannot be read; NotFound when there is none. Changes nothing.
Result<IntegrityReport> CheckLibraryIntegrity(const std::string& dir, const IntegrityOptions& options = {});

}  // namespace entrysync
