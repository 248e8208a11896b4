// Session: the sync protocol with one peer over one ByteStream.
//
// Each side sends Hello (what it holds of every owner and what it can
// serve), then pulls what it lacks with StateRequest; the other side answers
// with StateChanges (a few rows) or a StateBatch stream under the
// receiver's credit, and ends each answer with Current. Live changes are
// pushed as StateChanges to a peer known to be current, or announced with a
// BulkIndexComplete notice that the peer pulls. See docs/wire-format.md.
//
// Threading: every session of a node runs on the node's sync loop (an asio
// executor, one thread; see sync/loop.h), which also owns the library's
// one write connection (host.library()). Nothing here waits: frames,
// advances, credit, "the socket drained" and timers (keepalive, idle
// timeout, rate limit) are all events posted to that loop. The stream's own
// executor (the io thread for TLS) only decodes frames and answers pings.
// The public methods post to the loop and are thread-safe; Snapshot() and
// the state queries read a copy guarded by a mutex.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/byte_stream.h"
#include "proto/frame.h"
#include "store/library.h"
#include "store/replica.h"
#include "sync/config.h"
#include "sync/loop.h"
#include "sync/snapshot_cache.h"

namespace entrysync {

class Session;

// Progress of one transfer: known total up front.
struct TransferProgress {
  uint64_t id = 0;
  bool pulling = true;  // true: we receive; false: we serve
  Uuid owner;
  std::string owner_name;
  Strategy strategy = Strategy::kBatch;
  uint64_t total = 0;  // records in the transfer
  uint64_t done = 0;
  uint64_t bytes = 0;             // payload bytes moved so far
  uint64_t total_bytes = 0;       // bytes of the whole transfer when known (snapshots), else 0
  double started = 0;             // steady-clock seconds
  double finished = 0;            // 0 while running
  double Rate(double now) const;  // records per second
  double Eta(double now) const;   // seconds left, -1 when unknown
};

struct SessionCounters {
  uint64_t rows_applied = 0;  // rows written to our library
  uint64_t rows_skipped = 0;  // rows received that were already current
  uint64_t rows_sent = 0;
  uint64_t batches_sent = 0;
  uint64_t batches_received = 0;
  uint64_t changes_sent = 0;
  uint64_t changes_received = 0;
  uint64_t notices_sent = 0;
  uint64_t notices_received = 0;
  uint64_t snapshots_sent = 0;      // snapshot downloads served to the end
  uint64_t snapshots_imported = 0;  // snapshots downloaded and imported
};

struct SessionSnapshot {
  std::string peer_name;
  Uuid peer_uuid;
  std::string address;
  std::string state;  // "handshake", "syncing", "current", "closed"
  std::string close_reason;
  uint64_t wire_sent = 0, wire_received = 0;
  SessionCounters counters;
  std::vector<TransferProgress> transfers;  // running and recently finished
};

// What a session needs from the node it runs in. Implemented by SyncService.
// Every method is called on the sync loop only.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual const std::string& library_dir() const = 0;
  virtual const SyncConfig& config() const = 0;
  // The library's write connection, owned by the loop.
  virtual Library& library() = 0;
  // Claims the right to pull `owner` (one pull per owner per node at a
  // time); false when another session pulls it.
  virtual bool ClaimPull(const Uuid& owner, const Session* by) = 0;
  virtual void ReleasePull(const Uuid& owner, const Session* by) = 0;
  // The peer's Hello was accepted. False: another connection with the same
  // device is kept instead (one connection per pair of devices); this one
  // then closes quietly.
  virtual bool OnPeerReady(Session* s) = 0;
  // Rows were written, a pull finished or the session closed: other
  // sessions may now pull, and what advanced flows on to other peers.
  virtual void OnSessionChanged(const Session* s) = 0;
  // The session's counters or transfers moved (for status and progress).
  virtual void OnSessionUpdated(const Session* s) = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `stream` is not yet started; `outbound` says whether this device dialed
  // it. Create with std::make_shared.
  Session(SessionHost& host, std::unique_ptr<ByteStream> stream, SyncExecutor exec, bool outbound);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts the stream; sends Hello. Thread-safe.
  void Start();
  // Ends the session: sends Error (when `why` is an error), closes the
  // stream. Idempotent, thread-safe (runs on the loop soon).
  void Close(Status why);
  // Close at once. Loop only; the host calls it when it shuts down, so that
  // nothing of the session refers to the host afterwards.
  void CloseNow(Status why) { Teardown(why); }

  // This device holds `owner`'s rows up to `max_seq` now (epoch `epoch`):
  // push or announce them to the peer. `location` names the bulk commit's
  // location when known.
  void NotifyAdvance(const Uuid& owner, Epoch epoch, Seq max_seq, std::optional<Uuid> location);
  // Re-evaluates what to pull from this peer (another pull finished).
  void Poke();
  // Loads on demand, from this peer, the entries along `path` (absolute on
  // the owner's device) and the children of the folder it names, and keeps
  // them. `done` runs on the sync loop with OK, NotFound, or the reason the
  // session ended. Thread-safe.
  void RequestPath(const Uuid& owner, const std::string& path, std::function<void(Status)> done);
  // True once the peer's Hello was accepted.
  bool ready() const;

  bool closed() const { return closed_.load(); }
  bool outbound() const { return outbound_; }
  // The peer's device id as proven by the transport.
  DeviceId remote_id() const { return stream_->RemoteId(); }
  // Loop only: the peer's uuid once its Hello was accepted.
  const Uuid& peer_uuid() const { return peer_uuid_; }
  Status close_status() const;
  // True once the peer's Hello arrived, nothing is being pulled, and the
  // peer said it pulled everything it wanted from us.
  bool BothCurrent() const;
  SessionSnapshot Snapshot() const;
  std::string peer_name() const;

 private:
  struct Advance {
    Uuid owner;
    Epoch epoch;
    Seq max_seq;
    std::optional<Uuid> location;
  };
  struct PathRequest {
    Uuid owner;
    std::string path;
    std::function<void(Status)> done;
  };

  // A snapshot download (receiver side): the offer's file goes to
  // LIBRARY/snapshots/OWNER.part, the offer itself to OWNER.offer, so that a
  // later offer of the same file resumes at the .part file's size.
  struct Download {
    std::string part_path, offer_path;
    std::string sha256_hex;
    uint64_t size = 0, received = 0, entries = 0;
    Epoch epoch;
    Seq max_seq;
    int fd = -1;
  };
  struct Pull {
    uint64_t id;
    Uuid owner;
    DeviceRowId owner_row;
    bool folder_only = false;  // an on-demand path load: never moves the watermark
    size_t progress_index = 0;
    std::function<void(Status)> done;  // path loads only
    std::optional<Download> download;  // after a SnapshotOffer
  };
  // A snapshot file streamed to the peer (server side), under its credit.
  struct SnapServe {
    uint64_t id;
    Uuid owner;
    int fd = -1;
    uint64_t size = 0, offset = 0, entries = 0;
    uint32_t credit = 0;
    size_t progress_index = 0;
  };

  struct Serve {
    uint64_t id;
    Uuid owner;
    DeviceRowId owner_row;
    Epoch epoch;
    Seq since, cursor, upto;
    Strategy strategy;
    uint32_t credit = 0;
    uint32_t batch_index = 0, total_batches = 0;
    uint64_t total = 0;
    size_t progress_index = 0;
    bool locations_sent = false;
  };
  struct PeerHas {
    Epoch epoch;
    Seq max_seq;
    std::string name;
  };

  // Runs `fn` on the loop while the session lives and has not ended; an
  // error it returns ends the session.
  void Post(std::function<Status(Session&)> fn);
  void OnData(std::string_view data);  // stream's executor
  Status Begin();                      // loop: sends Hello
  void StartStream();                  // loop: frames start to arrive
  Status HandleFrame(const Frame& f);
  // Sends what serves and snapshot uploads may send now; again soon while
  // there is more, or once the stream drained when it is full.
  Status Pump();
  void SchedulePump();
  void ArmTick();
  void OnTick();
  void ArmRateTimer();
  void OnRateTimer();
  // Loop: the session ends with `why`; releases everything it holds.
  void Teardown(Status why);
  void PublishSnapshot();
  Status OnHello(const Frame& f);
  Status OnStateRequest(const Frame& f);
  Status OnStateBatch(const Frame& f);
  Status OnStateChange(const Frame& f);
  Status OnCredit(const Frame& f);
  Status OnCurrent(const Frame& f);
  Status OnBulkNotice(const Frame& f);
  Status OnAdvance(const Advance& a);
  Status OnPathRequest(PathRequest& r);
  Status ServePath(const wire::StateRequest& r, const Uuid& owner, DeviceRowId owner_row, Epoch epoch);
  Status OnError(const Frame& f);
  // Fails one request of the peer's with an Error frame; the session goes on.
  Status FailRequest(uint64_t request_id, const Status& why);
  Status OfferSnapshot(const Serve& s, const std::string& owner_name);
  Status OnSnapshotOffer(const Frame& f);
  Status OnSnapshotRequest(const Frame& f);
  Status OnSnapshotChunk(const Frame& f);
  Status PumpSnapshots(bool* did_work);
  Status FinishDownload(uint64_t pull_id);

  Status PrepareFolderLoad(DeviceRowId owner, Epoch epoch);
  void GrantCredit(uint64_t transfer_id, std::optional<wire::Ack> ack);
  void FlushCredits();
  Status EvaluatePulls();
  Status PumpServes(bool* did_work);
  Status PumpOne(Serve& s, bool* did_work);
  Status SendLocations(const Serve& s);
  Status EnsureEpoch(DeviceRowId owner, Epoch epoch, Seq from);
  void MaybeSendDone();
  void Send(std::string frame);
  Result<DeviceRowId> OwnerRow(const Uuid& owner, const std::string& name);
  // The epoch and highest seq this library can serve of `owner`.
  Result<std::pair<Epoch, Seq>> Servable(DeviceRowId owner);
  Result<uint64_t> CountRange(DeviceRowId owner, Seq after, Seq upto);
  double Now() const;

  SessionHost& host_;
  const SyncConfig config_;
  const SyncExecutor exec_;
  const bool outbound_;
  std::unique_ptr<ByteStream> stream_;

  // Shared between threads.
  mutable std::mutex mu_;
  Status close_status_;       // guarded by mu_
  SessionSnapshot snapshot_;  // guarded by mu_; copied out by Snapshot()
  std::atomic<bool> closed_{false};
  std::atomic<bool> ended_{false};  // Close() or Teardown() began: posts are dropped
  std::atomic<double> last_receive_{0};
  std::atomic<bool> wants_writable_{false};  // Pump stopped at the high-water mark
  FrameDecoder decoder_;                     // stream's executor only

  // Loop only.
  Library* lib_ = nullptr;
  std::optional<Replica> replica_;
  SyncTimer tick_;        // keepalive and idle timeout
  SyncTimer rate_timer_;  // held credits and pulls deferred by the rate limit
  bool rate_timer_armed_ = false;
  bool pump_scheduled_ = false;
  Uuid my_uuid_;
  bool hello_received_ = false;
  DeviceRowId peer_row_;
  Uuid peer_uuid_;
  std::map<Uuid, PeerHas> peer_has_;    // what the peer can serve
  std::map<Uuid, PeerHas> peer_holds_;  // what the peer holds (its watermarks)
  std::map<uint64_t, Pull> pulls_;
  std::vector<PathRequest> deferred_paths_;  // asked before the peer's Hello
  std::map<uint64_t, Serve> serves_;
  std::map<uint64_t, SnapServe> snap_serves_;
  std::map<std::string, ServedSnapshot> offered_;  // offered in this session, by sha256 hex
  std::set<Uuid> snapshot_refused_;                // owners whose snapshot failed here: pulled as batches
  uint64_t next_id_ = 1;
  bool peer_done_ = false;
  bool sent_done_ = false;
  double last_send_ = 0;
  std::vector<TransferProgress> progress_;                    // mirrored into snapshot_
  std::vector<std::pair<double, std::string>> held_credits_;  // (due, frame): rate limit
  double fetch_started_ = 0;                                  // first pull of this session (rate limit)
  uint64_t fetch_bytes_ = 0;                                  // bytes of rows received by pulls
  double next_evaluate_ = 0;                                  // a pull deferred by the rate limit
  // When the rate limit lets the next pull bytes in (0 = now).
  double RateDue() const;
  // Batches or chunks a new pull lets the server send before any credit.
  uint32_t InitialCredit() const;
  SessionCounters counters_;
};

}  // namespace entrysync
