// Library: one device's SQLite library (library.db in the library folder).
//
// A Library owns one SQLite connection. It is not thread-safe: use one
// Library per thread (WAL lets readers run beside the single writer; writes
// from several connections are serialized by SQLite's lock).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "entrysync/record.h"
#include "entrysync/status.h"
#include "entrysync/types.h"
#include "store/checkpoint.h"
#include "store/commit_notice.h"
#include "store/digest.h"
#include "store/sqlite.h"

namespace entrysync {

struct DeviceInfo {
  DeviceRowId id;
  Uuid uuid;
  std::string name;
  std::optional<DeviceId> device_id;
  std::string addr;  // "" when never dialed
  bool is_local = false;
  bool trusted = false;
  bool revoked = false;  // removed: its rows and checkpoints are refused from anyone
  Epoch epoch;
  Seq max_seq;  // local device only
};

struct LocationInfo {
  LocationRowId id;
  DeviceRowId owner;
  LocationRecord record;
};

struct WatermarkInfo {
  DeviceRowId owner;
  Epoch epoch;
  Seq seq;
  Seq verified_seq;  // the digest matched the owner's checkpoint at this seq
  bool verified() const { return verified_seq == seq && seq.value() > 0; }
};

class Library {
 public:
  static constexpr int kSchemaVersion = 4;
  static constexpr const char* kDbFile = "library.db";

  // Creates `dir` if needed and a new library in it, with this device as
  // `device_name`, a new device uuid and a new random index epoch. With
  // `library_id` the device joins that library; otherwise a new library id
  // is drawn. Fails with AlreadyExists when `dir` already holds a library.
  static Result<std::unique_ptr<Library>> Create(const std::string& dir, const std::string& device_name,
                                                 std::optional<Uuid> library_id);
  // Opens an existing library and migrates its schema forward. Fails with
  // NotFound when `dir` holds no library, and with InvalidArgument when the
  // schema is newer than this build.
  static Result<std::unique_ptr<Library>> Open(const std::string& dir);
  // Opens an existing library for reading only (PRAGMA query_only: every
  // write through it fails), beside a writer: WAL lets it read committed
  // rows while the writer commits. It does not migrate: fails with
  // InvalidArgument when the schema is not this build's (open the writer
  // first), NotFound when `dir` holds no library.
  static Result<std::unique_ptr<Library>> OpenForReading(const std::string& dir);

  const std::string& dir() const { return dir_; }
  // After each commit on this connection, a daemon serving the library
  // hears of it (store/commit_notice.h). On by default; a daemon turns it
  // off for its own connection.
  void SetCommitNotices(bool on) { notices_on_ = on; }
  store::Db& db() { return db_; }
  const Uuid& library_id() const { return library_id_; }
  DeviceRowId local_device() const { return local_device_; }
  int schema_version() const;

  // ---- devices ----
  Result<std::vector<DeviceInfo>> ListDevices();
  Result<DeviceInfo> GetDevice(DeviceRowId id);
  Result<DeviceInfo> LocalDevice() { return GetDevice(local_device_); }
  // NotFound when no such device.
  Result<DeviceInfo> FindDeviceByName(const std::string& name);
  Result<DeviceInfo> FindDeviceByUuid(const Uuid& uuid);
  Result<DeviceInfo> FindDeviceById(const DeviceId& id);
  // Returns the row of the device with `uuid`, inserting it (untrusted, as a
  // remote owner known by name) when missing.
  Result<DeviceRowId> EnsureDevice(const Uuid& uuid, const std::string& name);
  // Records this device's own key: its certificate fingerprint, and the
  // owner uuid derived from it (OwnerUuidOf). A new key is a new owner.
  Status SetLocalDeviceId(const DeviceId& id);
  // Pairs a peer: trusted (and no longer revoked), with its device id and
  // address. Its uuid is derived from `id`, so the row that already holds
  // the owner's rows (known through a relay) is the one paired, and no
  // later Hello can move a pairing to another key.
  Result<DeviceRowId> AddPeer(const std::string& name, const DeviceId& id, const std::string& addr);
  // Records the key of an owner known through a relay, once one of its
  // checkpoints verified. REQUIRES: OwnerUuidOf(id) is its uuid.
  Status SetDeviceId(DeviceRowId device, const DeviceId& id);
  // Unpairs and revokes: trusted = 0, revoked = 1, so its rows and
  // checkpoints are refused from every peer afterwards. With `purge`, its
  // rows, watermark, checkpoints and digest are deleted too (one
  // transaction). NotFound if unknown.
  Status RemovePeer(const std::string& name, bool purge = false);
  Status SetEpoch(DeviceRowId device, Epoch epoch);

  // ---- locations ----
  Result<std::vector<LocationInfo>> ListLocations(std::optional<DeviceRowId> owner);
  Result<LocationInfo> FindLocationByUuid(const Uuid& uuid);
  // The local location whose root is `root_path` (already canonical).
  Result<LocationInfo> FindLocalLocationByPath(const std::string& root_path);

  // ---- entries ----
  // Every entry of a location, tombstones included when asked.
  Result<std::vector<EntryRecord>> LoadLocationEntries(LocationRowId location, bool include_deleted);
  // The live children of a folder.
  Result<std::vector<EntryRecord>> ListChildren(const Uuid& parent);
  // The root entry of a location (parent NULL); NotFound when not indexed.
  Result<EntryRecord> LocationRoot(LocationRowId location);
  Result<std::optional<EntryRecord>> FindEntry(const Uuid& uuid);
  // Calls `fn` for each entry of `owner` with after < seq <= upto, in seq
  // order, at most `limit` rows (0 = no limit). Stops early when `fn`
  // returns false.
  Status ScanOwnerEntries(DeviceRowId owner, Seq after, Seq upto, size_t limit,
                          const std::function<bool(EntryRecord&&)>& fn);
  // Calls `fn` for each entry of `owner` in uuid order (tombstones included).
  Status ScanOwnerByUuid(DeviceRowId owner, const std::function<bool(EntryRecord&&)>& fn);
  Result<uint64_t> CountEntries(DeviceRowId owner, bool include_deleted);
  // Highest seq of `owner` stored here (entries and locations).
  Result<Seq> MaxStoredSeq(DeviceRowId owner);

  // ---- replication bookkeeping ----
  Result<std::optional<WatermarkInfo>> GetWatermark(DeviceRowId owner);
  Result<std::vector<WatermarkInfo>> ListWatermarks();
  // Rows written by replication over the library's lifetime (all owners).
  Result<uint64_t> RowsAppliedTotal();
  // Records that the digest of `owner` matched its checkpoint at `seq`.
  Status SetVerifiedSeq(DeviceRowId owner, Seq seq);

  // ---- set digests and checkpoints (docs/trust.md) ----
  OwnerDigests& digests() { return *digests_; }
  // The latest checkpoint stored of `owner` in `epoch`, if any.
  Result<std::optional<Checkpoint>> GetCheckpoint(DeviceRowId owner, Epoch epoch);
  // Stores `cp` (signature already verified) unless a checkpoint of a
  // higher or equal seq of that epoch is stored. Returns whether it was.
  Result<bool> PutCheckpoint(DeviceRowId owner, const Checkpoint& cp);
  // Stores `cp` whatever is stored of its epoch (this device's own).
  Status ReplaceCheckpoint(DeviceRowId owner, const Checkpoint& cp);

 private:
  Library(std::string dir, store::Db db);
  static int OnWalCommit(void* self, sqlite3* db, const char* name, int wal_pages);
  Status Configure();
  Status Migrate();
  // Fills owner_digest from the rows stored before schema 3.
  Status ComputeAllDigests();
  Status LoadMeta();

  std::string dir_;
  store::Db db_;
  std::unique_ptr<OwnerDigests> digests_;
  CommitNotifier notifier_;
  bool notices_on_ = true;
  Uuid library_id_;
  DeviceRowId local_device_;
};

// Of `locations`, the one whose root holds absolute `path` most closely
// (its own root included), or null when none does.
const LocationInfo* InnermostLocation(const std::vector<LocationInfo>& locations, const std::string& path);

// Reads an entry row selected with kEntryColumns starting at column `first`.
EntryRecord ReadEntryRow(const store::Stmt& st, int first = 0);
// The entry columns, in the order ReadEntryRow expects, for a query of
// `entry e JOIN location l ON l.id = e.location`.
extern const char* const kEntryColumns;

}  // namespace entrysync
