// SnapshotUploader: the serving side of a snapshot transfer.
//
// Offers a peer that holds nothing of a large owner the owner's rows as a
// SQLite file (from the snapshot cache, sync/snapshot_cache.h, exported if
// missing, off the loop), then streams the file in zstd-compressed chunks of
// config.snapshot_chunk_bytes from the byte offset the peer asks for, under
// its credit.
//
// Thread safety: loop only.
#pragma once

#include <map>
#include <string>

#include "sync/session_shared.h"
#include "sync/snapshot_cache.h"

namespace entrysync {

class SnapshotUploader {
 public:
  explicit SnapshotUploader(SessionShared& shared) : s_(shared) {}
  ~SnapshotUploader() { Abort(); }

  // Answers request `transfer_id` for `owner` (up to seq `upto`) with an
  // offer, once the snapshot was found or exported on the Reader's export
  // lane (off the loop); fails the request (INTERNAL) when no snapshot can
  // be made.
  Status Offer(uint64_t transfer_id, const Uuid& owner, DeviceRowId owner_row, Epoch epoch, Seq upto,
               const std::string& owner_name);
  Status OnSnapshotRequest(const Frame& f);
  void OnCredit(uint64_t transfer_id, uint32_t chunks);
  // Sends chunks while there is credit and the stream takes more.
  Status Pump(bool* did_work);
  bool busy() const { return !uploads_.empty(); }
  // Snapshot files streamed at once (each holds a descriptor); one more
  // ends the session.
  static constexpr size_t kMaxUploads = 64;
  // Closes the files being streamed.
  void Abort();

 private:
  struct Upload {
    uint64_t id = 0;
    Uuid owner;
    int fd = -1;
    uint64_t size = 0, offset = 0, entries = 0;
    uint32_t credit = 0;
    TransferRegistry::Key progress = 0;
  };
  Status SendOffer(uint64_t transfer_id, const Uuid& owner, const std::string& owner_name,
                   Result<ServedSnapshot> o);
  // Sends chunks of `u`; true when the file was sent to its end.
  Result<bool> PumpOne(Upload& u, bool* did_work);

  SessionShared& s_;
  std::map<std::string, ServedSnapshot> offered_;  // offered in this session, by sha256 hex
  std::map<uint64_t, Upload> uploads_;
};

}  // namespace entrysync
