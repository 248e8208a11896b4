// Snapshots: one owner's locations and entries as a standalone SQLite file.
//
// A snapshot lets a peer that holds nothing of an owner take that owner's
// whole index in one file instead of a stream of batches, then continue with
// deltas after the snapshot's seq. The file layout, its checks and the import
// rules are written down in docs/snapshot-format.md.
//
// Thread safety: each call uses the given Library's connection (ATTACHing the
// snapshot file to it for the duration of the call) and must run on the
// thread that owns that Library. REQUIRES: no transaction is open on it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "entrysync/status.h"
#include "entrysync/types.h"
#include "store/checkpoint.h"
#include "store/library.h"

namespace entrysync {

// The snapshot format this build writes and reads (stored as the file's
// PRAGMA user_version and as meta 'format_version').
inline constexpr int kSnapshotFormatVersion = 1;

struct SnapshotInfo {
  Uuid owner;               // the owner's device uuid
  std::string owner_name;   // the owner's name as the exporter knew it
  Epoch epoch;              // the owner's index epoch
  Seq max_seq;              // every row of the owner with seq <= max_seq, none above
  uint64_t entries = 0;     // entry rows, tombstones included
  uint64_t locations = 0;   // location rows, tombstones included
  uint64_t size_bytes = 0;  // size of the file
  std::string sha256;       // SHA-256 of the whole file, 64 lowercase hex digits
  Uuid library_id;          // library the owner belongs to
  Uuid exported_by;         // uuid of the device that wrote the file
  // The owner's signed checkpoint at (epoch, max_seq), when the file
  // carries one; inspection verified its signature.
  std::optional<Checkpoint> checkpoint;
};

struct ImportStats {
  SnapshotInfo info;           // what was imported (as InspectSnapshot saw it)
  DeviceRowId owner;           // the owner's device row in the importing library
  uint64_t rows_written = 0;   // locations + entries inserted (added to meta rows_applied)
  uint64_t rows_replaced = 0;  // rows of the owner this library held before, deleted
  double seconds = 0;          // wall time of the whole import, checks included
};

// Writes the rows of `owner` that `lib` holds as a snapshot file at `path`
// (written as `path`.tmp, synced, then renamed over `path`).
//   - owner is the local device: every row, max_seq = the device's max_seq;
//   - owner is a remote owner: the rows with seq <= its watermark, max_seq =
//     the watermark's seq, epoch = the watermark's epoch. A location changed
//     after the watermark but still referenced by an exported entry is
//     included as stored (see docs/snapshot-format.md).
// Rows are read inside one read transaction, so the file is a consistent cut
// even while a writer commits. Fails with NotFound when `owner` is unknown or
// a remote owner has no watermark, IOError when the file cannot be written;
// nothing is left at `path` or `path`.tmp on failure.
Result<SnapshotInfo> ExportSnapshot(Library& lib, DeviceRowId owner, const std::string& path);

// Opens the snapshot at `path` read-only and checks it: SQLite header and
// page count against the file size, application id and format version,
// PRAGMA quick_check, its structure exactly the format's (tables only: no
// view or trigger, whose SQL would run), metadata present and well-typed,
// row counts and the content checksum of every row against the metadata, no
// entry above max_seq. Returns its info (sha256 of the whole file included). A file that
// is not a snapshot, truncated or altered fails with Corruption (or
// InvalidArgument for a newer format version), one line naming the file.
// Needs no Library.
Result<SnapshotInfo> InspectSnapshot(const std::string& path);

// What a peer's SnapshotOffer said its file holds. A downloaded file is
// imported only when it holds exactly that owner, epoch and max seq.
struct SnapshotOffered {
  Uuid owner;
  Epoch epoch;
  Seq max_seq;
  std::string peer;  // the peer that offered it, named in the refusal
};

// Verifies the snapshot at `path` (its SHA-256 must equal `expected_sha256`
// when given, hex, case-insensitive; then InspectSnapshot's checks, except
// the row checksum, which a matching SHA-256 from the exporter implies; its
// owner, epoch and max seq must be the `offered` ones when given) and
// imports it into `lib` in one transaction: the owner's device row is ensured, every
// location and entry `lib` holds of that owner is replaced by the snapshot's,
// the owner's watermark becomes (epoch, max_seq) with `source` (NULL when
// not given) and meta 'rows_applied' grows by the rows written.
// Refuses, changing nothing:
//   - Corruption: checksum, format or count mismatch;
//   - PermissionDenied: another library id, or the owner is this device, or
//     the file is not what `offered` says (the message names the peer);
//   - AlreadyExists: "already current", when the stored watermark has the
//     snapshot's epoch and a seq >= its max_seq.
// Any failure during the transaction rolls it back: all or nothing. A full
// disk is an IOError naming the library, the space the import needs and the
// space available (base/disk_space.h).
Result<ImportStats> ImportSnapshot(Library& lib, const std::string& path,
                                   const std::optional<std::string>& expected_sha256,
                                   std::optional<DeviceRowId> source = std::nullopt,
                                   const std::optional<SnapshotOffered>& offered = std::nullopt);

// Whether a failed ImportSnapshot may succeed later with the same file: the
// disk full, the library busy or locked, an I/O error (IOError with SQLite's
// or the system's message for those). The file passed its checks then, so a
// downloader keeps it. False for every refusal (the file is bad, or not for
// this library) and for errors the same file would hit again (a constraint
// the rows break).
bool ImportMayRetry(const Status& s);

// About how much free space importing a snapshot file of `file_bytes` takes
// in the library's filesystem: its rows and indexes (measured: ~1.8x the
// file), written to the WAL first and then to the database.
inline uint64_t ImportSpaceNeeded(uint64_t file_bytes) { return file_bytes * 4; }

}  // namespace entrysync
