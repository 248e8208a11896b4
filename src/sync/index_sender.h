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
// Reads run off the loop, on the node's Reader (sync/reader.h): a serve
// asks the reader for its next batch (rows after its read cursor, encoded
// and compressed within the peer's largest frame) and sends it when it
// comes back, under credit and while the stream takes more. It keeps one
// batch read ahead, so that reading overlaps the wire: at most
// kReadAhead encoded batches are held per serve. Folder loads read on the
// reader too. Live pushes (a few rows) read on the loop: a hop to another
// thread would only add latency.
//
// Thread safety: loop only.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/batch.h"
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

// What a serve's read needs to know, by value (it runs off the loop).
struct ChunkRequest {
  BatchHeader header;  // batch_index: the chunk's own
  Seq from, upto;      // rows with from < seq <= upto
  uint32_t max_rows = 0;
  size_t max_frame = 0;  // the peer's largest frame
  bool batch = true;     // one StateBatch, else a StateChange per row
};
struct ChunkRead {
  std::vector<std::string> frames;
  uint64_t rows = 0, bytes = 0;
  Seq end;  // the last row sent (or `upto` when fewer rows than max_rows were left)
};
// Reads at most `max_rows` rows of `owner_row` and encodes them. A batch
// larger than `max_frame` keeps only its first half until it fits (the rest
// comes with the next chunk; `end` is its last row); InvalidArgument when a
// single row does not fit. Runs on any thread with its own `lib`.
Result<ChunkRead> ReadChunk(Library& lib, DeviceRowId owner_row, const ChunkRequest& r);

class IndexSender {
 public:
  IndexSender(SessionShared& shared, SnapshotUploader& uploads) : s_(shared), uploads_(uploads) {}

  Status OnStateRequest(const Frame& f);
  // Credit for a batch stream, and what the peer now holds.
  Status OnCredit(const wire::Credit& c);
  Status OnAdvance(const Advance& a);
  // Sends one batch (or a few changes) per running serve, when it was read
  // and the stream takes more, and asks the reader for the next ones;
  // `did_work` is set when something was sent. A batch that comes back
  // from the reader wakes the session's pump (SessionShared::wake).
  Status Pump(bool* did_work);
  bool busy() const { return !serves_.empty(); }
  // Drops every serve; batches still being read are dropped when they
  // come back.
  void Abort() { serves_.clear(); }

  // Encoded batches held per serve, read ahead of the wire.
  static constexpr size_t kReadAhead = 2;
  // Requests of the peer served at once (serves and folder loads); one more
  // ends the session. A peer asks for one pull per owner at a time.
  static constexpr size_t kMaxRequests = 256;

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
    uint64_t serial = 0;          // tells this serve from an earlier one of the same id
    Seq read_cursor;              // rows after it are not read yet (cursor: not sent yet)
    bool reading = false;         // the next chunk is on the reader
    std::deque<ChunkRead> ready;  // read, not sent; at most kReadAhead
  };
  Status PumpOne(Serve& s, bool* did_work);
  // Asks the reader for the chunk after `s.read_cursor` when there is room.
  void ReadAhead(Serve& s);
  Status OnChunkRead(uint64_t id, uint64_t serial, Result<ChunkRead> chunk);
  void SendChunk(Serve& s, TransferProgress& p, ChunkRead&& c);
  Status FinishServe(Serve& s, TransferProgress& p);
  Status PushChanges(const Advance& a, DeviceRowId owner_row, Seq from);

  SessionShared& s_;
  SnapshotUploader& uploads_;
  std::map<uint64_t, Serve> serves_;
  uint64_t next_serial_ = 0;
};

// The locations of `owner` as one StateBatch of `transfer_id` starting at
// `since` (receivers apply them before the rows): the frame, or sent.
Result<std::string> EncodeLocations(Library& lib, const Uuid& owner, DeviceRowId owner_row, Epoch epoch,
                                    uint64_t transfer_id, Seq since);
Status SendLocations(SessionShared& s, const Uuid& owner, DeviceRowId owner_row, Epoch epoch,
                     uint64_t transfer_id, Seq since);

// On demand: the entries along the absolute path `r.folder_path()` of the
// owner's device and the live children of the folder it names, as one small
// transfer that covers no seq range, read and encoded on the reader. A path
// that is not indexed fails the request with NotFound; the session goes on.
Status ServeFolder(SessionShared& s, const wire::StateRequest& r, const Uuid& owner, DeviceRowId owner_row,
                   Epoch epoch);

}  // namespace entrysync
