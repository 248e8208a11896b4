// The snapshots a node serves: exports of an owner's rows kept in
// LIBRARY/snapshots/serve-OWNER-EPOCH-MAXSEQ.db, each with a NAME.info line
// "SHA256 SIZE ENTRIES". One export serves every new peer while the owner
// has moved on by at most `max_lag` seqs: the peer imports it, then pulls
// the few rows after its max seq as ordinary deltas (and an interrupted
// download resumes against the very same bytes).
//
// Thread safety: the functions serialize exports within the process; each
// call uses the given Library on the calling thread only.
#pragma once

#include <optional>
#include <string>

#include "entrysync/status.h"
#include "entrysync/types.h"
#include "store/library.h"

namespace entrysync {

struct ServedSnapshot {
  std::string path;
  std::string sha256_hex;  // 64 lowercase hex digits
  uint64_t size = 0;
  uint64_t entries = 0;
  Epoch epoch;
  Seq max_seq;
  double export_seconds = 0;  // 0 when a cached export was reused
};

// A cached export of `owner` (device uuid `uuid`) in epoch `epoch` whose
// max seq is within `max_lag` of `max_seq`; else, when `export_if_missing`,
// a new export (older exports of the owner are deleted: a stream still
// reading one keeps its open descriptor); else nullopt. IOError when the
// folder or file cannot be written; the export's own errors otherwise.
Result<std::optional<ServedSnapshot>> FindOrExportSnapshot(Library& lib, const std::string& library_dir,
                                                           DeviceRowId owner, const Uuid& uuid, Epoch epoch,
                                                           Seq max_seq, uint64_t max_lag,
                                                           bool export_if_missing);

// Small sidecar files of snapshots (NAME.info, OWNER.offer): `text` is
// written to a temporary file, then renamed over `path`, so a reader sees
// the old content or the new, never a part. IOError on failure.
Status WriteSmallFileAtomically(const std::string& path, const std::string& text);

}  // namespace entrysync
