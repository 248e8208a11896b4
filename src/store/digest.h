// OwnerDigests: each owner's set digest, kept up to date by the database.
//
// The set digest of an owner is the LtHash (base/lthash.h) of the canonical
// encodings of all its rows, entries and locations, tombstones included.
// SQLite's pre-update hook hands this class the old and the new version of
// every row written to `entry` and `location` on the library's connection,
// so every path that writes rows (this device's indexing, a replica's
// apply, an owner reset, a snapshot import) keeps the digest without
// knowing it. The hook only copies each row's element into a batch; full
// batches are hashed on a helper thread (store/element_hasher.h), the rest
// by Flush, which store::Transaction runs just before COMMIT and which
// folds the transaction's deltas into `owner_digest`. A COMMIT with deltas
// not flushed is refused (SQLite's commit hook), and a rollback drops them.
//
// Another connection (the sqlite3 shell, a second program) writes rows
// without this hook: the stored digest then no longer matches the rows,
// which Recompute, and `serve`'s start-up integrity check, catch.
//
// Not thread-safe; one per connection (Library owns it).
#pragma once

#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/lthash.h"
#include "entrysync/record.h"
#include "entrysync/status.h"
#include "entrysync/types.h"
#include "store/element_hasher.h"
#include "store/sqlite.h"

namespace entrysync {

// The canonical byte encodings the digest hashes: every field that travels
// on the wire, fixed-width little-endian integers and length-prefixed
// strings, the location by uuid (never a local row id). Two replicas hold
// the same row exactly when the encodings are equal.
std::string EntryElement(const EntryRecord& r);
std::string LocationElement(const LocationRecord& r);

class OwnerDigests {
 public:
  // Registers es_owner_uuid on `db` and installs the commit and rollback
  // hooks. `db` must outlive this.
  explicit OwnerDigests(store::Db& db);
  OwnerDigests(const OwnerDigests&) = delete;
  OwnerDigests& operator=(const OwnerDigests&) = delete;
  ~OwnerDigests();

  // Checks that `entry` and `location` have the columns the hook reads
  // (the current schema), then starts watching their rows. Library calls
  // it once its schema is migrated.
  Status WatchRows();

  // Folds the pending deltas into owner_digest. REQUIRES: inside the write
  // transaction whose rows produced them.
  Status Flush();
  // True while the open transaction changed rows whose digest is not stored.
  bool pending();

  // EntryWriter's multi-row upserts, the bulk paths: between BeginKnownRows
  // and EndKnownRows, an entry row the statement inserts or updates is
  // hashed from the caller's record instead of being read back from SQLite
  // (the version an update replaces still is). EndKnownRows(owner, rows)
  // adds the records that were written: all of them when the statement
  // wrote as many rows (the rule), else those whose row ids the hook saw,
  // looked up. REQUIRES: `rows` are the statement's, in order, of `owner`,
  // each with the uuid of the location row it was bound to.
  void BeginKnownRows() { known_ = true; }
  Status EndKnownRows(DeviceRowId owner, std::span<const EntryRecord> rows);

  // The committed digest of `owner` (zero when it has no rows).
  Result<LtHash> Get(DeviceRowId owner);
  // The digest computed from the rows themselves, by a full scan: for
  // integrity checks and the migration that introduced digests.
  Result<LtHash> Recompute(DeviceRowId owner);
  // Overwrites the stored digest of `owner` (inside a write transaction),
  // dropping any pending delta of it.
  Status Set(DeviceRowId owner, const LtHash& digest);

 private:
  static void OnPreUpdate(void* self, sqlite3* db, int op, const char* schema, const char* table,
                          sqlite3_int64 old_key, sqlite3_int64 new_key);
  static int OnCommit(void* self);
  static void OnRollback(void* self);
  void AddEntry(sqlite3* db, int sign, bool old_row);
  void AddLocation(sqlite3* db, int sign, bool old_row, int64_t id);
  void AddRecord(int64_t owner, const EntryRecord& r);
  void SubmitIfFull();
  // Hashes everything collected so far into pending_ (the unresolved
  // elements get their location's uuid first).
  Status Settle();
  void Drop();

  store::Db& db_;
  bool watching_ = false;
  ElementBatch batch_;                         // elements not yet handed to hasher_
  ElementBatch unresolved_;                    // entry elements whose location uuid is not known yet
  std::vector<int64_t> unresolved_locations_;  // their location row ids, in order
  ElementHasher hasher_;
  DeltaMap pending_;                    // owner row -> hashed delta of this transaction
  bool known_ = false;                  // inside BeginKnownRows .. EndKnownRows
  std::vector<int64_t> known_written_;  // row ids the known statement inserted or updated
  // Location row id -> uuid, as of the last change the hook saw (a removed
  // location keeps its last uuid: rows of it may be removed after it).
  // Cleared on rollback; filled by the hook and by Settle's lookups.
  std::unordered_map<int64_t, Uuid> location_uuids_;
};

}  // namespace entrysync
