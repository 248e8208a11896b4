// OwnerDigests: each owner's set digest, kept up to date by the database.
//
// The set digest of an owner is the LtHash (base/lthash.h) of the canonical
// encodings of all its rows, entries and locations, tombstones included.
// SQLite triggers on `entry` and `location` (schema 003) call the functions
// this class registers on the connection with the old and the new version
// of every row written, so every path that writes rows (this device's
// indexing, a replica's apply, an owner reset, a snapshot import) keeps the
// digest without knowing it. The deltas of a transaction are held here and
// folded into `owner_digest` by Flush, which store::Transaction runs just
// before COMMIT; a COMMIT with deltas not flushed is refused (SQLite's
// commit hook), and a rollback drops them.
//
// A connection that writes `entry` or `location` without these functions
// fails ("no such function: es_digest_entry"): the sqlite3 shell cannot
// change rows behind the digest's back.
//
// Not thread-safe; one per connection (Library owns it).
#pragma once

#include <map>
#include <string>

#include "base/lthash.h"
#include "entrysync/record.h"
#include "entrysync/status.h"
#include "entrysync/types.h"
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
  // Registers es_digest_entry, es_digest_location and es_owner_uuid on `db`
  // and installs the commit and rollback hooks. `db` must outlive this.
  explicit OwnerDigests(store::Db& db);
  OwnerDigests(const OwnerDigests&) = delete;
  OwnerDigests& operator=(const OwnerDigests&) = delete;
  ~OwnerDigests();

  // Folds the pending deltas into owner_digest. REQUIRES: inside the write
  // transaction whose rows produced them.
  Status Flush();
  bool pending() const { return !pending_.empty(); }

  // The committed digest of `owner` (zero when it has no rows).
  Result<LtHash> Get(DeviceRowId owner);
  // The digest computed from the rows themselves, by a full scan: for
  // integrity checks and the migration that introduced digests.
  Result<LtHash> Recompute(DeviceRowId owner);
  // Overwrites the stored digest of `owner` (inside a write transaction),
  // dropping any pending delta of it.
  Status Set(DeviceRowId owner, const LtHash& digest);

 private:
  static void EntryFn(sqlite3_context* ctx, int argc, sqlite3_value** argv);
  static void LocationFn(sqlite3_context* ctx, int argc, sqlite3_value** argv);
  static int OnCommit(void* self);
  static void OnRollback(void* self);

  store::Db& db_;
  std::map<int64_t, LtHash> pending_;  // owner row -> delta of this transaction
};

}  // namespace entrysync
