// Session: the sync protocol with one peer over one ByteStream.
//
// Each side sends Hello (what it holds of every owner and what it can
// serve), then pulls what it lacks with StateRequest; the other side answers
// with StateChanges (a few rows) or a StateBatch stream under the
// receiver's credit, and ends each answer with Current. Live changes are
// pushed as StateChanges to a peer known to be current, or announced with a
// BulkIndexComplete notice that the peer pulls. See docs/wire-format.md.
//
// The session itself is the connection: handshake, dispatch of frames to
// its parts, keepalive and idle timeout, back-pressure, the end. The parts,
// one job each, share a SessionShared (session_shared.h):
//   Puller (+ SnapshotDownloader)     what we pull, applied as it arrives
//   IndexSender (+ SnapshotUploader)  what the peer pulls, and live pushes
//   FlowControl                       our credit and rate limit
//   TransferRegistry                  progress of both directions
//
// Threading: every session of a node runs on the node's sync loop (an asio
// executor, one thread; see sync/loop.h). It reads the library through the
// loop's connection (host.library()) and writes through the library's
// writer (host.writer(): rows, and the peer's uuid at the handshake),
// going on when the write completed. Nothing here waits: frames,
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
#include <optional>
#include <string>
#include <vector>

#include "base/byte_stream.h"
#include "base/mutex.h"
#include "proto/frame.h"
#include "sync/flow_control.h"
#include "sync/index_sender.h"
#include "sync/loop.h"
#include "sync/puller.h"
#include "sync/session_host.h"
#include "sync/session_shared.h"
#include "sync/snapshot_upload.h"
#include "sync/transfers.h"

namespace entrysync {

enum class SessionState : uint8_t {
  kHandshake,  // waiting for the peer's Hello
  kSyncing,    // something is being pulled, or the peer pulls
  kCurrent,    // both sides said they pulled everything they wanted
  kClosed,
};
const char* SessionStateName(SessionState s);  // "handshake", "syncing", ...

struct SessionSnapshot {
  std::string peer_name;
  Uuid peer_uuid;
  std::string address;
  SessionState state = SessionState::kHandshake;
  std::string close_reason;
  // The last time rows from this peer did not verify (or its digest
  // differed from ours): which owner, and why. Empty when never.
  std::string trust_error;
  uint64_t wire_sent = 0, wire_received = 0;
  SessionCounters counters;
  std::vector<TransferProgress> transfers;  // running and recently finished
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `stream` is not yet started; `outbound` says whether this device dialed
  // it. Create with std::make_shared.
  Session(SessionHost& host, std::unique_ptr<ByteStream> stream, SyncExecutor exec, bool outbound);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sends Hello, then starts the stream. Thread-safe.
  void Start();
  // Ends the session: sends Error (when `why` is an error), closes the
  // stream. Idempotent, thread-safe (runs on the loop soon).
  void Close(Status why);
  // Close at once. Loop only; the host calls it when it shuts down, so that
  // nothing of the session refers to the host afterwards.
  void CloseNow(const Status& why) { Teardown(why); }

  // This device holds `owner`'s rows up to `max_seq` now (epoch `epoch`):
  // push or announce them to the peer. `location` names the bulk commit's
  // location when known. Thread-safe.
  void NotifyAdvance(const Uuid& owner, Epoch epoch, Seq max_seq, std::optional<Uuid> location);
  // Re-evaluates what to pull from this peer (another pull finished).
  void Poke();
  // Loads on demand, from this peer, the entries along `path` (absolute on
  // the owner's device) and the children of the folder it names, and keeps
  // them. `done` runs on the sync loop with OK, NotFound, or the reason the
  // session ended. Thread-safe.
  void RequestPath(const Uuid& owner, const std::string& path, std::function<void(Status)> done);

  // True once the peer's Hello was accepted (and until the end).
  bool ready() const;
  bool closed() const { return closed_.load(); }
  bool outbound() const { return outbound_; }
  // The peer's device id as proven by the transport.
  DeviceId remote_id() const { return stream_->RemoteId(); }
  Status close_status() const;
  // True once the peer's Hello arrived, nothing is being pulled, and the
  // peer said it pulled everything it wanted from us.
  bool BothCurrent() const;
  SessionSnapshot Snapshot() const;
  std::string peer_name() const;

 private:
  // Runs `fn` on the loop while the session lives and has not ended; an
  // error it returns ends the session.
  void Post(std::function<Status(Session&)> fn);
  void StartStream();                  // loop: frames start to arrive
  void OnData(std::string_view data);  // stream's executor
  Status Begin();                      // loop: sends Hello
  Status HandleFrame(const Frame& f);
  Status OnHello(const Frame& f);
  Status AfterHello();
  // Anti-entropy: the peer's digest of each owner against ours at the same
  // (epoch, seq); a difference is counted and shown (checkpoints decide
  // which side is wrong).
  Status CompareDigests();
  Status OnPeerBound(const wire::Hello& h);
  // Loop: ends the session with error `why` (logged unless a plain close).
  void End(Status why);
  Status AdoptPeerLimits(const wire::Hello& h);
  Status OnCredit(const Frame& f);
  Status OnCurrent(const Frame& f);
  Status OnError(const Frame& f);
  // Stream's executor: a Pong for `f`, unless the stream is full (see
  // SyncConfig::max_pending_write_bytes); false once the peer was
  // disconnected for not reading.
  bool AnswerPing(const Frame& f);
  // Any thread: the peer made us hold more than a limit allows. Ends the
  // session with `why` and drops what is queued for the peer.
  void Overrun(const Status& why);
  // Sends what serves and snapshot uploads may send now; again soon while
  // there is more, or once the stream drained when it is full.
  Status Pump();
  void SchedulePump();
  void ArmTick();
  void OnTick();
  // Loop: the session ends with `why`; releases everything it holds.
  void Teardown(Status why);
  // Copies counters, transfers and state for Snapshot(); tells the host.
  void Publish();
  void Send(std::string frame);

  const SyncConfig config_;
  const SyncExecutor exec_;
  const bool outbound_;
  std::unique_ptr<ByteStream> stream_;

  // Shared between threads.
  mutable Mutex mu_;
  Status close_status_ GUARDED_BY(mu_);
  SessionSnapshot snapshot_ GUARDED_BY(mu_);  // copied out by Snapshot()
  std::atomic<bool> closed_{false};
  std::atomic<bool> ended_{false};  // Close() or Teardown() began: posts are dropped
  std::atomic<double> last_receive_{0};
  std::atomic<bool> wants_writable_{false};  // Pump stopped at the high-water mark
  std::atomic<bool> overrun_{false};         // Overrun ran: what follows is ignored
  std::atomic<size_t> inbox_bytes_{0};       // frames posted to the loop, not yet handled
  FrameDecoder decoder_;                     // stream's executor only
  size_t unanswered_ping_bytes_ = 0;         // stream's executor: Pongs not queued (stream full)

  // Loop only.
  SessionShared shared_;
  std::unique_ptr<FlowControl> flow_;  // made in Begin (needs weak_from_this)
  std::unique_ptr<Puller> puller_;
  SnapshotUploader uploads_;
  IndexSender sender_;
  struct PathRequest {
    Uuid owner;
    std::string path;
    std::function<void(Status)> done;
  };
  std::vector<PathRequest> deferred_paths_;  // asked before the peer's Hello
  bool hello_received_ = false;
  bool checking_checkpoints_ = false;       // the peer's Hello checkpoints are with the writer
  std::map<Uuid, Advance> early_advances_;  // announced before the peer's Hello
  SyncTimer tick_;                          // keepalive and idle timeout
  bool pump_scheduled_ = false;
  double last_send_ = 0;
  double begun_ = 0;  // Begin ran: the peer's Hello is due within hello_timeout
};

}  // namespace entrysync
