// What export (snapshot_export.cc), inspection (snapshot_inspect.cc) and
// import (snapshot_import.cc) of snapshots have in common: the file's
// constants, its metadata, reading its bytes, attaching it to a library's
// connection. Internal to es_snapshot.
//
// Thread safety: none of its own; see snapshot.h.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "entrysync/status.h"
#include "entrysync/types.h"
#include "snapshot/snapshot.h"
#include "store/sqlite.h"

namespace entrysync::snapshot_internal {

// Name under which the snapshot file is attached to a library's connection.
inline constexpr const char* kSchema = "es_snapshot";
inline constexpr uint32_t kApplicationId = 0x45534e50;  // 'ESNP'
inline constexpr int kPageSize = 4096;

// Wall-clock milliseconds since the Unix epoch.
int64_t NowMs();

// ATTACHes a file to a library connection as kSchema; DETACHes on
// destruction.
// REQUIRES: destroyed after any transaction that uses it has ended.
class Attachment {
 public:
  explicit Attachment(store::Db& db) : db_(db) {}
  ~Attachment();
  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;
  // The SQLite error, prefixed "attach snapshot <path>", on failure.
  Status Attach(const std::string& path);

 private:
  store::Db& db_;
  bool attached_ = false;
};

// The first column of the first row of `sql`, with `arg` bound to ?1 when
// given. Internal when there is no row.
Result<int64_t> QueryInt(store::Db& db, const std::string& sql, std::optional<int64_t> arg = std::nullopt);

// Runs `sql` with `args` bound to ?1, ?2, ...
Status Exec(store::Db& db, const std::string& sql, std::initializer_list<int64_t> args);

// What reading a whole file found: its SHA-256 (hex), size and first 100
// bytes (the SQLite header; zeros past the end of a shorter file).
struct FileScan {
  std::string sha256;
  uint64_t size = 0;
  uint8_t header[100] = {};
};

// Reads the file at `path` once; with `fsync_it`, also syncs it to disk.
// NotFound when it does not exist, IOError when it cannot be read or synced.
Result<FileScan> ScanFile(const std::string& path, bool fsync_it);

// The metadata of a snapshot (its meta table).
struct Meta {
  int64_t format_version = 0;
  Uuid library_id;
  Uuid owner;
  std::string owner_name;
  Epoch epoch;
  Seq max_seq;
  int64_t entries = 0;
  int64_t locations = 0;
  uint64_t content_sum = 0;
  Uuid exported_by;
  std::optional<Checkpoint> checkpoint;  // the optional checkpoint_* keys
};

// What a snapshot file holds: its metadata and the scan of its bytes.
SnapshotInfo InfoOf(const Meta& m, const FileScan& scan);

// InspectSnapshot (snapshot_inspect.cc), with the import's option: given
// `expected_sha256`, the file must have it and the row checksum is skipped.
Result<SnapshotInfo> InspectFile(const std::string& path, const std::optional<std::string>& expected_sha256);

}  // namespace entrysync::snapshot_internal
