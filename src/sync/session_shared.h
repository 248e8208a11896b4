// SessionShared: what the parts of one session have in common — the peer,
// the library, counters and transfers, and the way to the wire.
//
// A Session (session.h) owns one and the parts that use it: Puller and
// SnapshotDownloader (we receive), IndexSender and SnapshotUploader (we
// serve), FlowControl (credit and rate limit). Each part owns its own
// transfers' state; this holds only what several of them read or write.
//
// Thread safety: loop only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "base/clock.h"
#include "proto/frame.h"
#include "store/checkpoint.h"
#include "store/library.h"
#include "sync/config.h"
#include "sync/rate_limiter.h"
#include "sync/reader.h"
#include "sync/transfers.h"

namespace entrysync {

class Session;
class SessionHost;

// What the peer said it can serve (Hello.owners, notices) or holds
// (Hello.watermarks, acks) of one owner.
struct PeerHas {
  Epoch epoch;
  Seq max_seq;
  std::string name;
  uint64_t entry_count = 0;  // rows the peer holds of the owner (Hello), 0 = not known
  // The peer's latest checkpoint of the owner (Hello, notices), and the
  // peer's digest of what it holds (its watermark; anti-entropy).
  std::optional<Checkpoint> checkpoint;
  std::optional<LtHash::Checksum> digest;
};

struct SessionShared {
  SessionShared(SessionHost& h, const SyncConfig& c, Session& s) : host(h), config(c), session(s) {}

  SessionHost& host;
  const SyncConfig& config;
  Session& session;        // for the host's calls that name a session
  Library* lib = nullptr;  // the loop's connection: reads only (writes: host.writer())

  Uuid my_uuid;
  DeviceRowId peer_row;
  Uuid peer_uuid;
  std::string peer_name;               // empty until the peer's Hello
  std::map<Uuid, PeerHas> peer_has;    // what the peer can serve
  std::map<Uuid, PeerHas> peer_holds;  // what the peer holds (its watermarks)

  // What the peer's Hello allows (see docs/wire-format.md): the codec we
  // compress with (one it decodes), the largest frame it takes, and rows
  // per batch.
  Codec codec = Codec::kNone;
  size_t peer_max_frame = kDefaultMaxFrameBytes;
  uint32_t batch_records = 1000;

  // The "done" exchange: each side sends Current without an owner once it
  // pulled everything it wanted; both done and no pull left = current.
  bool sent_done = false;
  bool peer_done = false;

  SessionCounters counters;
  TransferRegistry transfers;
  size_t folder_loads = 0;  // on-demand loads being read (ServeFolder)
  std::string trust_error;  // see SessionSnapshot::trust_error

  // What we serve the peer is paced by its device's upload limiter
  // (sync/rate_limiter.h), set once the peer is known; null = no limit.
  std::shared_ptr<RateLimiter> upload_limit;

  // Set by Session.
  std::function<void(std::string)> send;        // a frame to the peer
  std::function<size_t()> pending_write_bytes;  // queued, not yet taken by the transport
  std::function<void()> publish;                // counters, transfers or state moved
  std::function<void()> wake;                   // a part has something to send: pump soon
  std::function<void(Status)> end;              // the session ends with this error

  void Send(std::string frame) { send(std::move(frame)); }
  static double Now() { return Clock::Seconds(); }
  // True when a sender should wait for the stream to drain.
  bool WriteBlocked() const { return pending_write_bytes() >= config.max_pending_write_bytes; }

  // Runs `job` on the node's Reader `lane` (off the loop, with the lane's
  // connection; it must capture values only), then `done` with its result
  // on the loop, while the session lives and has not ended; an error `done`
  // returns ends the session.
  template <class T>
  void ReadThen(Reader::Lane lane, std::function<T(Library&)> job, std::function<Status(T)> done) {
    reader().Run<T>(lane, alive(), std::move(job),
                    [this, done = std::move(done)](T r) { Resume([&] { return done(std::move(r)); }); });
  }

  // Upload pacing, for the sender parts: true when the next unit (a batch,
  // a snapshot chunk) may be sent now; otherwise false, and `wake` runs
  // once one may.
  bool MayUpload();
  // Runs `fn` once a unit may be sent: now, or later on the loop while the
  // session lives and has not ended; an error it returns ends the session.
  Status WhenMayUpload(std::function<Status()> fn);
  // `bytes` were sent to the peer: charged to the upload limiter.
  void Uploaded(uint64_t bytes) {
    if (upload_limit) upload_limit->Take(bytes);
  }

  // Fails one request of the peer's with an Error frame; the session goes on.
  Status FailRequest(uint64_t request_id, const Status& why);
  // What this library holds of `owner` (nullopt: nothing, or an owner it
  // does not know yet; the writer registers owners as their rows arrive).
  Result<std::optional<WatermarkInfo>> Holds(const Uuid& owner);
  // The epoch and highest seq this library can serve of `owner`.
  Result<std::pair<Epoch, Seq>> Servable(DeviceRowId owner);
  // Rows of `owner` with after < seq <= upto.
  Result<uint64_t> CountRange(DeviceRowId owner, Seq after, Seq upto);
  // Our latest checkpoint of `owner` in `epoch`, as sent with a Current, a
  // notice or an offer (nullopt: none).
  Result<std::optional<Checkpoint>> CheckpointOf(DeviceRowId owner, Epoch epoch);
  // Whether the peer can prove what it serves of `owner`: it is the owner,
  // or its checkpoint of the owner is at exactly what it serves. Rows are
  // pulled only from a peer that can.
  bool Provable(const Uuid& owner, const PeerHas& has) const;

 private:
  Reader& reader();
  std::weak_ptr<void> alive();
  // Runs `fn` unless the session ended; an error it returns ends it.
  void Resume(const std::function<Status()>& fn);

  bool upload_waiting_ = false;  // `wake` is registered with upload_limit
};

}  // namespace entrysync
