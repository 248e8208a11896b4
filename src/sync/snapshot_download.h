// SnapshotDownloader: the receiving side of a snapshot transfer.
//
// An offer's file goes to LIBRARY/snapshots/OWNER.part, the offer itself to
// OWNER.offer (one line: SHA256 SIZE EPOCH MAX_SEQ), so that a later offer
// of the very same file (same SHA-256, size, epoch and max seq, from this
// peer or after a restart of either side) resumes at the .part file's size. Chunks arrive under the same
// credit as batches. The finished file is handed to the library's writer (sync/writer.h), which checks it
// against the offer's SHA-256 and imports it in one transaction, rows and watermark together; a refused file
// changes nothing.
//
// Thread safety: loop only.
#pragma once

#include <optional>
#include <string>

#include "store/checkpoint.h"
#include "sync/flow_control.h"
#include "sync/session_shared.h"
#include "sync/writer.h"

namespace entrysync {

// One download in progress.
struct Download {
  std::string part_path, offer_path;
  std::string sha256_hex;
  uint64_t size = 0, received = 0, entries = 0;
  Epoch epoch;
  Seq max_seq;
  std::optional<Checkpoint> checkpoint;  // the offer's, at max_seq
  int fd = -1;
  void Close();
};

class SnapshotDownloader {
 public:
  SnapshotDownloader(SessionShared& shared, FlowControl& flow) : s_(shared), flow_(flow) {}

  // Starts (or resumes) the download `offer` describes, for the pull with
  // request id `pull_id` whose progress is `progress`. Returns true when the
  // file is already complete. Protocol/IOError end the session.
  Result<bool> Start(uint64_t pull_id, TransferProgress& progress, const wire::SnapshotOffer& offer,
                     Download* out);
  // Writes a chunk; returns true when the file is complete, else grants
  // one more chunk.
  Result<bool> Write(uint64_t pull_id, TransferProgress& progress, Download& d, const wire::SnapshotChunk& c,
                     size_t frame_bytes);
  // The complete file of `owner`, synced and closed, as a writer job
  // (LibraryWriter::ImportSnapshotFile): it is imported only if it holds
  // the owner, epoch and max seq offered; the .part and .offer files go once
  // the import committed or refused the file, and stay when it failed for a
  // reason that may pass (the disk full), for the next offer of the file.
  SnapshotImportJob ImportJob(Download& d, const Uuid& owner);

 private:
  SessionShared& s_;
  FlowControl& flow_;
};

// Removes what downloads of earlier runs left in LIBRARY/snapshots that no
// offer will resume: OWNER.part and OWNER.offer when `lib`'s watermark of
// OWNER already covers the offer (same epoch, seq >= its max seq: a kill
// came between the import's commit and the removal of its files), or the
// offer is of an older format; a .part without its .offer; OWNER.offer.tmp.
// Each removal is logged. Errors are ignored (a file that cannot be removed
// now is looked at again next time). Called when a node starts, before any
// session.
void RemoveFinishedDownloads(Library& lib, const std::string& library_dir);

}  // namespace entrysync
