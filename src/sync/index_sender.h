// IndexSender: the serving side of a session — the rows of an owner the
// peer asked for, and live changes the peer has not asked for yet.
//
// A StateRequest is answered by size (ChooseStrategy): a few rows as
// StateChanges, more as compressed StateBatches of config.batch_records
// under the peer's credit, a SnapshotOffer (SnapshotUploader) for a peer
// that holds nothing of a large owner; a request with a folder path is an
// on-demand load (folder_server.cc). Each answer starts with the owner's
// locations and ends with Current. Live changes (OnAdvance) go to a peer
// known to hold the owner up to our previous seq as StateChanges when they
// are few, else as a ~70-byte BulkIndexComplete notice the peer pulls.
//
// Thread safety: loop only.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sync/session_shared.h"
#include "sync/snapshot_upload.h"

namespace entrysync {

// This device holds `owner`'s rows up to `max_seq` now (epoch `epoch`);
// `location` names a bulk commit's location when known.
struct Advance {
  Uuid owner;
  Epoch epoch;
  Seq max_seq;
  std::optional<Uuid> location;
};

class IndexSender {
 public:
  IndexSender(SessionShared& shared, SnapshotUploader& uploads) : s_(shared), uploads_(uploads) {}

  Status OnStateRequest(const Frame& f);
  // Credit for a batch stream, and what the peer now holds.
  Status OnCredit(const wire::Credit& c);
  Status OnAdvance(const Advance& a);
  // Sends one batch (or a few changes) per running serve, while the stream
  // takes more; `did_work` is set when something was sent.
  Status Pump(bool* did_work);
  bool busy() const { return !serves_.empty(); }
  void Abort() { serves_.clear(); }

 private:
  struct Serve {
    uint64_t id = 0;  // the peer's request id; 0 for a live push
    Uuid owner;
    DeviceRowId owner_row;
    Epoch epoch;
    Seq since, cursor, upto;
    Strategy strategy = Strategy::kBatch;
    uint32_t credit = 0;
    uint32_t batch_index = 0, total_batches = 0;
    uint64_t total = 0;
    TransferRegistry::Key progress = 0;
    bool locations_sent = false;
  };
  Status PumpOne(Serve& s, bool* did_work);
  Status SendRows(Serve& s, TransferProgress& p, bool* did_work);
  Result<std::string> EncodeBatchWithin(Serve& s, Seq from, std::vector<EntryRecord>* rows);
  Status FinishServe(Serve& s, TransferProgress& p);
  Status PushChanges(const Advance& a, DeviceRowId owner_row, Seq from);

  SessionShared& s_;
  SnapshotUploader& uploads_;
  std::map<uint64_t, Serve> serves_;
};

// The locations of `owner` as one StateBatch of `transfer_id` starting at
// `since` (receivers apply them before the rows).
Status SendLocations(SessionShared& s, const Uuid& owner, DeviceRowId owner_row, Epoch epoch,
                     uint64_t transfer_id, Seq since);

// On demand: the entries along the absolute path `r.folder_path()` of the
// owner's device and the live children of the folder it names, as one small
// transfer that covers no seq range. A path that is not indexed fails the
// request with NotFound; the session goes on.
Status ServeFolder(SessionShared& s, const wire::StateRequest& r, const Uuid& owner, DeviceRowId owner_row,
                   Epoch epoch);

}  // namespace entrysync
