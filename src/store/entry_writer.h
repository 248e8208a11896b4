// EntryWriter: the one place entry and location rows are written.
//
// Used inside a transaction the caller opened, by the TransactionManager
// (this device's own changes) and by Replica (rows received from peers).
// Not thread-safe; bound to one Library.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>

#include "entrysync/record.h"
#include "store/library.h"
#include "store/sqlite.h"

namespace entrysync {

class EntryWriter {
 public:
  static Result<EntryWriter> Make(Library& lib);

  // Inserts or updates the entry with r.uuid. With `only_if_newer`, an
  // existing row whose seq is >= r.seq is left alone (replays of rows already
  // applied are no-ops). A row of another owner with that uuid is left alone
  // too: a row belongs to one owner for good, so no peer can take over this
  // device's rows (or another owner's). Returns whether the row was written.
  // Fails with InvalidArgument when r.location is not a location of `owner`.
  Result<bool> PutEntry(DeviceRowId owner, const EntryRecord& r, bool only_if_newer);

  // Writes `rows` in order as PutEntry(owner, r, only_if_newer) would,
  // several rows per statement (the bulk path, and Replica's apply path).
  // Returns how many rows were written (with `only_if_newer`, rows whose
  // stored seq is already >= theirs are left alone and not counted). Fails
  // with InvalidArgument when a row's location is unknown and with IOError
  // when SQLite refuses a statement (the error names the statement's first
  // and last uuid); rows of earlier statements stay written either way, so
  // the caller's transaction must be rolled back on failure.
  Result<uint64_t> PutEntries(DeviceRowId owner, std::span<const EntryRecord> rows,
                              bool only_if_newer = false);

  // Same for a location row (a location of another owner with that uuid is
  // left alone).
  Result<bool> PutLocation(DeviceRowId owner, const LocationRecord& r, bool only_if_newer);

  // Forgets the cached location rows: call after location rows were deleted
  // or renumbered behind this writer's back (an owner reset, a snapshot
  // import).
  void ForgetLocations() { locations_.clear(); }

  // The local row of `owner`'s location `location` (cached). NotFound when
  // `owner` has no such location.
  Result<LocationRowId> LocationRow(DeviceRowId owner, const Uuid& location);

 private:
  explicit EntryWriter(Library& lib) : lib_(&lib) {}
  Library* lib_;
  store::Stmt put_entry_;
  store::Stmt put_entry_newer_;
  // PutEntries' multi-row statement, prepared at its first use. A raw handle
  // because it binds with SQLITE_STATIC, which store::Stmt does not offer.
  struct Finalize {
    void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
  };
  std::unique_ptr<sqlite3_stmt, Finalize> put_entries_;
  std::unique_ptr<sqlite3_stmt, Finalize> put_entries_newer_;
  store::Stmt put_location_;
  store::Stmt put_location_newer_;
  store::Stmt find_location_;
  std::unordered_map<Uuid, LocationRowId> locations_;  // of locations_owner_
  DeviceRowId locations_owner_;
};

}  // namespace entrysync
