// Puller: the receiving side of a session — what we pull from the peer, and
// applying it.
//
// For every owner the peer can serve beyond our watermark (or in another
// epoch) it sends one StateRequest, unless another session of the node
// already pulls that owner (SessionHost::ClaimPull). Answers arrive as
// StateBatches (applied in one transaction each, with the watermark, then
// one more credit), StateChanges, or a SnapshotOffer (handed to the
// SnapshotDownloader); Current ends a pull. Rows are decoded here and
// written by the library's writer (sync/writer.h): a batch's credit goes
// out once the writer committed it, so a peer never has more batches queued
// at the writer than the credit window; a pull ends (its claim released,
// its caller told) only after every write of it committed, so what reads
// the library next sees them. Completions of a session that ended are
// dropped. It also loads folders on
// demand (`entrysync ls` of a lazy replica): a pull that covers no seq
// range and never moves the watermark. When nothing is left to pull it
// tells the peer it is done.
//
// Thread safety: loop only.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "sync/flow_control.h"
#include "sync/session_shared.h"
#include "sync/snapshot_download.h"
#include "sync/writer.h"

namespace entrysync {

struct Pull {
  uint64_t id = 0;  // our request id
  Uuid owner;
  std::string owner_name;    // the owner's name, when new to this library
  bool folder_only = false;  // an on-demand path load: never moves the watermark
  TransferRegistry::Key progress = 0;
  std::function<void(Status)> done;  // path loads only
  std::optional<Download> download;  // after a SnapshotOffer
};

class Puller {
 public:
  // Pushed writes of one session waiting for the writer (QueuePush): a
  // connected peer pushes one change per commit of its own, which the
  // writer applies in well under a millisecond; thousands waiting is a
  // flood.
  static constexpr size_t kMaxQueuedPushes = 4096;

  Puller(SessionShared& shared, FlowControl& flow);

  // Pulls every owner the peer can serve and we lack (the peer's Hello
  // arrived, a pull ended, another session released an owner, the rate
  // limit allows again); says "done" when nothing is left.
  Status Evaluate();
  // Loads the entries along `path` of `owner` and the children of the
  // folder it names; `done` hears OK, NotFound, or why the session ended.
  Status LoadPath(const Uuid& owner, const std::string& path, std::function<void(Status)> done);

  Status OnStateBatch(const Frame& f);
  Status OnStateChange(const Frame& f);
  Status OnCurrent(const wire::Current& c);
  Status OnBulkNotice(const Frame& f);
  Status OnSnapshotOffer(const Frame& f);
  Status OnSnapshotChunk(const Frame& f);
  // The peer failed request `e.request_id()`: false when it is none of ours.
  Result<bool> OnRequestFailed(const wire::Error& e);
  // What a write found when it checked replicas against their owners'
  // checkpoints (trust.h): a replica that did not verify was dropped; the
  // peer that served its rows (`served_by_peer`) is named, and the owner is
  // then fetched from the owner or another peer.
  Status OnVerified(const WriteOutcome& out, bool served_by_peer = false);

  // Nothing is being pulled or waiting for the rate limit.
  bool idle() const { return pulls_.empty() && !flow_.deferred(); }
  // The session ended: every pull's caller hears `why`, claims are released,
  // downloads close (their .part files stay to resume).
  void Abort(const Status& why);

 private:
  Status StartPull(const Uuid& owner, const PeerHas& has);
  void MaybeSendDone();
  void FinishDownload(Pull& pull);
  Status OnImported(uint64_t pull_id, Result<WriteOutcome> r);
  // Pull `id` is over (its Current was written): its caller hears OK.
  Status EndPull(uint64_t id);
  Status EndFailedPull(uint64_t id, const wire::Error& e);

  // A writer completion that runs `then` on the loop while this session
  // lives (until Abort); an error of the job or of `then` ends the session.
  LibraryWriter::Done Then(std::function<Status(const WriteOutcome&)> then);
  // The same, where `then` also hears the job's error.
  LibraryWriter::Done ThenResult(std::function<Status(Result<WriteOutcome>)> then);
  // `then` runs once every write of `owner` posted so far committed.
  void AfterWrites(const Uuid& owner, std::function<Status()> then);
  // Queues one write the peer pushed unasked (a StateChange, a live
  // location batch, the Current of a push) on the writer; `then` as Then.
  // Fails, ending the session, when kMaxQueuedPushes of them wait: a peer
  // cannot grow the writer's queue faster than it commits.
  Status QueuePush(ApplyJob job, std::function<Status(const WriteOutcome&)> then);

  SessionShared& s_;
  FlowControl& flow_;
  SnapshotDownloader downloads_;
  std::map<uint64_t, Pull> pulls_;
  std::set<Uuid> snapshot_refused_;  // owners whose snapshot failed here: pulled as batches
  std::set<Uuid> unprovable_;        // owners the peer serves beyond their checkpoint (logged once)
  std::set<Uuid> refused_;           // removed devices whose rows the peer sent (logged once)
  uint64_t next_id_ = 1;
  size_t pushes_queued_ = 0;                                // QueuePush's writes not done yet
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // replaced by Abort: completions dropped
  // Set by the writer when a write of this session failed: the ones it
  // still has queued are then not applied (ApplyJob::chain_failed).
  std::shared_ptr<std::atomic<bool>> writes_failed_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace entrysync
