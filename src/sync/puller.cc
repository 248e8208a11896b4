#include "sync/puller.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "proto/batch.h"
#include "proto/convert.h"
#include "sync/session_host.h"
#include "sync/trust.h"

namespace entrysync {
namespace {

wire::Strategy StrategyToWire(Strategy s) { return static_cast<wire::Strategy>(s); }

}  // namespace

Puller::Puller(SessionShared& shared, FlowControl& flow)
    : s_(shared), flow_(flow), downloads_(shared, flow) {}

Status Puller::Evaluate() {
  // An owner this peer has more of, pulled by another session right now:
  // not done with this peer until that pull ends (the host re-evaluates
  // then) and shows whether anything is left to pull from here.
  bool behind_elsewhere = false;
  for (const auto& [owner, has] : s_.peer_has) {
    if (owner == s_.my_uuid) continue;
    bool pulling = false;
    for (const auto& [id, p] : pulls_) pulling |= (p.owner == owner && !p.folder_only);
    if (pulling) continue;
    ES_ASSIGN_OR_RETURN(auto wm, s_.Holds(owner));
    if (wm && wm->epoch == has.epoch && wm->seq >= has.max_seq) continue;
    if (!wm && has.max_seq.value() == 0) continue;  // nothing there yet
    if (!s_.config.auto_fetch) continue;            // lazy: only what `ls` asks for
    if (auto dev = s_.lib->FindDeviceByUuid(owner); dev.ok() && dev->revoked) continue;
    if (s_.host.Distrusted(owner, s_.peer_uuid)) continue;  // its rows of the owner did not verify
    if (!s_.Provable(owner, has)) {
      // A relay serves only what it can prove: its checkpoint of the owner
      // must be at what it serves. Later (its notice or Hello) it may.
      if (unprovable_.insert(owner).second)
        spdlog::info(
            "not pulling {} from {}: it holds rows up to seq {} but its latest checkpoint of {} is {}",
            has.name, s_.peer_name, has.max_seq.value(), has.name,
            has.checkpoint ? "at seq " + std::to_string(has.checkpoint->seq.value()) : "unknown");
      continue;
    }
    if (flow_.OverLimit()) {
      flow_.Defer();  // over the rate limit: ask later
      break;
    }
    if (!s_.host.ClaimPull(owner, &s_.session)) {
      behind_elsewhere = true;
      continue;
    }
    ES_RETURN_IF_ERROR(StartPull(owner, has));
  }
  if (!behind_elsewhere) MaybeSendDone();
  return Status::Ok();
}

// One StateRequest for `owner`: from our watermark in the peer's epoch
// (from zero in another), the strategy forced or left to the server, in
// pages when it is a massive delta.
Status Puller::StartPull(const Uuid& owner, const PeerHas& has) {
  ES_ASSIGN_OR_RETURN(auto wm, s_.Holds(owner));
  bool same_epoch = wm && wm->epoch == has.epoch;
  wire::StateRequest r;
  uint64_t id = next_id_++;
  r.set_request_id(id);
  r.set_owner(UuidToWire(owner));
  r.set_epoch(wm ? wm->epoch.value() : 0);
  r.set_since_seq(same_epoch ? wm->seq.value() : 0);
  r.set_max_batches(flow_.InitialCredit());
  Strategy ask = s_.config.forced;
  if (snapshot_refused_.count(owner) && (ask == Strategy::kAuto || ask == Strategy::kSnapshot))
    ask = Strategy::kBatch;  // this peer's snapshot failed here: take rows instead
  if (ask == Strategy::kSnapshot && same_epoch && wm->seq.value() > 0)
    ask = Strategy::kAuto;  // a snapshot replaces a whole replica; deltas on top of one are rows
  r.set_strategy(StrategyToWire(ask));
  uint64_t missing = static_cast<uint64_t>(std::max<int64_t>(0, has.max_seq.value() - r.since_seq()));
  bool paged = ChoosePull(s_.config, missing, same_epoch && wm->seq.value() > 0) == Strategy::kBulk;
  if (paged) r.set_max_records(s_.config.bulk_page_records);
  s_.Send(EncodeFrame(r));
  TransferProgress p;
  p.id = id;
  p.pulling = true;
  p.owner = owner;
  p.owner_name = has.name;
  p.strategy = paged ? Strategy::kBulk : ask == Strategy::kAuto ? Strategy::kBatch : ask;
  // The total is known before the first batch says it exactly: the rows
  // the peer holds of the owner (its Hello), or the seqs we lack.
  p.total = r.since_seq() == 0 && has.entry_count > 0 ? has.entry_count
            : has.entry_count > 0                     ? std::min(has.entry_count, missing)
                                                      : missing;
  if (paged) p.total = std::min<uint64_t>(p.total, s_.config.bulk_page_records);
  p.started = s_.Now();
  pulls_[id] = Pull{id, owner, has.name, false, s_.transfers.Add(p), {}, std::nullopt};
  s_.sent_done = false;
  s_.publish();
  spdlog::info("pulling {} from {}: since seq {} (they have {})", has.name, s_.peer_name, r.since_seq(),
               has.max_seq.value());
  return Status::Ok();
}

void Puller::MaybeSendDone() {
  if (!idle() || s_.sent_done) return;
  wire::Current done;  // no owner: "I pulled everything I wanted from you"
  s_.Send(EncodeFrame(done));
  s_.sent_done = true;
  s_.publish();
}

Status Puller::LoadPath(const Uuid& owner, const std::string& path, std::function<void(Status)> done) {
  ES_ASSIGN_OR_RETURN(auto wm, s_.Holds(owner));
  wire::StateRequest r;
  uint64_t id = next_id_++;
  r.set_request_id(id);
  r.set_owner(UuidToWire(owner));
  r.set_epoch(wm ? wm->epoch.value() : 0);
  r.set_folder_path(path);
  r.set_max_batches(flow_.InitialCredit());
  s_.Send(EncodeFrame(r));
  TransferProgress p;
  p.id = id;
  p.owner = owner;
  p.owner_name = "on-demand " + path;
  p.started = s_.Now();
  pulls_[id] = Pull{id, owner, "", true, s_.transfers.Add(p), std::move(done), std::nullopt};
  s_.sent_done = false;
  return Status::Ok();
}

Result<bool> Puller::OnRequestFailed(const wire::Error& e) {
  auto it = pulls_.find(e.request_id());
  if (e.request_id() == 0 || it == pulls_.end()) return false;
  // What the pull wrote commits first; then its caller hears why.
  AfterWrites(it->second.owner, [this, id = it->first, e] { return EndFailedPull(id, e); });
  return true;
}

Status Puller::EndFailedPull(uint64_t id, const wire::Error& e) {
  auto it = pulls_.find(id);
  if (it == pulls_.end()) return Status::Ok();
  Pull& pull = it->second;
  Status why = e.code() == wire::ERROR_NOT_FOUND ? NotFound(e.message()) : Aborted(e.message());
  if (pull.done) pull.done(why);
  if (!pull.folder_only) s_.host.ReleasePull(pull.owner, &s_.session);
  TransferProgress& p = s_.transfers.at(pull.progress);
  p.finished = s_.Now();
  // A snapshot the peer could not export or stream (asked for, or chosen by
  // the peer, which then fails the request as INTERNAL): retry once as rows.
  bool was_snapshot = !pull.folder_only && !snapshot_refused_.count(pull.owner) &&
                      (p.strategy == Strategy::kSnapshot || e.code() == wire::ERROR_INTERNAL);
  if (pull.download) pull.download->Close();  // the .part stays for a later offer
  Uuid owner = pull.owner;
  std::string owner_name = p.owner_name;
  pulls_.erase(it);
  s_.publish();
  if (was_snapshot) {
    spdlog::warn("{} could not send a snapshot of {}: {}; pulling its rows instead", s_.peer_name, owner_name,
                 e.message());
    snapshot_refused_.insert(owner);
    return Evaluate();
  }
  MaybeSendDone();
  return Status::Ok();
}

LibraryWriter::Done Puller::ThenResult(std::function<Status(Result<WriteOutcome>)> then) {
  return [this, alive = std::weak_ptr<char>(alive_), then = std::move(then)](Result<WriteOutcome> r) {
    if (alive.expired()) return;  // the session ended: nothing to continue
    Status s = then(std::move(r));
    if (!s.ok() && !alive.expired()) s_.end(s);
  };
}

LibraryWriter::Done Puller::Then(std::function<Status(const WriteOutcome&)> then) {
  return ThenResult([then = std::move(then)](Result<WriteOutcome> r) {
    if (!r.ok()) return r.status();
    return then(*r);
  });
}

void Puller::AfterWrites(const Uuid& owner, std::function<Status()> then) {
  s_.host.writer().Post(
      WriteTarget::Owner(owner), [](Library&) -> Result<WriteOutcome> { return WriteOutcome{}; },
      Then([then = std::move(then)](const WriteOutcome&) { return then(); }));
}

Status Puller::QueuePush(ApplyJob job, std::function<Status(const WriteOutcome&)> then) {
  if (pushes_queued_ >= kMaxQueuedPushes)
    return Aborted("pushes changes faster than they are written, " + std::to_string(pushes_queued_) +
                   " waiting; disconnected");
  ++pushes_queued_;
  s_.host.writer().ApplyRows(std::move(job), Then([this, then = std::move(then)](const WriteOutcome& out) {
                               --pushes_queued_;
                               return then(out);
                             }));
  return Status::Ok();
}

Status Puller::OnStateBatch(const Frame& f) {
  using Rule = ApplyJob::OnOtherEpoch;
  ES_ASSIGN_OR_RETURN(auto b, ParseMessage<wire::StateBatch>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(b.owner(), "owner"));
  ApplyJob job;
  job.owner = owner;
  job.epoch = Epoch(b.epoch());
  job.from = Seq(b.from_seq());
  job.source = s_.peer_row;
  job.chain_failed = writes_failed_;
  if (b.transfer_id() == 0 && b.model() == wire::MODEL_LOCATION) {
    // A live push's locations (IndexSender::OnAdvance): applied like a
    // StateChange; stale ones are skipped (a pull will fix it).
    ES_ASSIGN_OR_RETURN(job.locations, OpenLocationBatch(b));
    return QueuePush(std::move(job), [this](const WriteOutcome& out) { return OnVerified(out, true); });
  }
  auto it = pulls_.find(b.transfer_id());
  if (it == pulls_.end())
    return ProtocolError("StateBatch for unknown transfer " + std::to_string(b.transfer_id()));
  Pull& pull = it->second;
  if (owner != pull.owner) return ProtocolError("StateBatch owner does not match its request");
  s_.counters.batches_received++;
  job.owner_name = pull.owner_name;
  if (b.model() == wire::MODEL_LOCATION) {
    // The first batch of a pull: a new epoch replaces the replica.
    ES_ASSIGN_OR_RETURN(job.locations, OpenLocationBatch(b));
    job.on_other_epoch = pull.folder_only ? Rule::kReset : Rule::kResetFromZero;
    s_.host.writer().ApplyRows(std::move(job),
                               Then([this](const WriteOutcome& out) { return OnVerified(out, true); }));
    return Status::Ok();
  }
  ES_ASSIGN_OR_RETURN(job.entries, OpenEntryBatch(b));
  job.on_other_epoch = pull.folder_only ? Rule::kReset : Rule::kFail;
  if (!pull.folder_only) job.advance_to = Seq(b.last_seq());
  size_t frame_bytes = f.payload.size() + kFrameOverhead;
  flow_.Received(frame_bytes);
  uint64_t rows = job.entries.size(), total = b.total_records(), id = pull.id;
  s_.host.writer().ApplyRows(std::move(job),
                             Then([this, id, rows, total, frame_bytes](const WriteOutcome& out) {
                               s_.counters.rows_applied += out.written;
                               s_.counters.rows_skipped += out.skipped;
                               ES_RETURN_IF_ERROR(OnVerified(out, true));
                               auto it = pulls_.find(id);
                               if (it == pulls_.end()) return Status::Ok();  // failed by the peer meanwhile
                               TransferProgress& p = s_.transfers.at(it->second.progress);
                               p.total = total;
                               if (p.strategy != Strategy::kBulk) p.strategy = Strategy::kBatch;
                               p.done += rows;
                               p.bytes += frame_bytes;
                               std::optional<wire::Ack> ack;  // what we now hold
                               if (out.advanced) {
                                 ack.emplace();
                                 ack->set_owner(UuidToWire(out.advanced->owner));
                                 ack->set_epoch(out.advanced->epoch.value());
                                 ack->set_seq(out.advanced->seq.value());
                               }
                               flow_.Grant(id, ack);  // the next batch: one more queued at most
                               s_.publish();
                               return Status::Ok();
                             }));
  return Status::Ok();
}

Status Puller::OnStateChange(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::StateChange>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(c.owner(), "owner"));
  if (!c.has_entry()) return ProtocolError("StateChange without an entry");
  ES_ASSIGN_OR_RETURN(EntryRecord e, EntryFromWire(c.entry()));
  s_.counters.changes_received++;
  ApplyJob job;  // stale (another epoch): skipped, a pull will fix it
  job.owner = owner;
  job.epoch = Epoch(c.epoch());
  job.source = s_.peer_row;
  job.chain_failed = writes_failed_;
  job.entries.push_back(std::move(e));
  size_t frame_bytes = f.payload.size() + kFrameOverhead;
  return QueuePush(std::move(job), [this, owner, frame_bytes](const WriteOutcome& out) {
    s_.counters.rows_applied += out.written;
    s_.counters.rows_skipped += out.skipped;
    ES_RETURN_IF_ERROR(OnVerified(out, true));
    for (auto& [id, pull] : pulls_) {
      if (pull.owner != owner) continue;
      TransferProgress& p = s_.transfers.at(pull.progress);
      p.strategy = Strategy::kChange;
      p.done++;
      p.bytes += frame_bytes;
    }
    s_.publish();
    return Status::Ok();
  });
}

// The end of a transfer of `owner` (a pull of ours, or a live push): the
// watermark moves to its seq when we hold what it started from. The pull
// ends once that is written.
Status Puller::OnCurrent(const wire::Current& c) {
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(c.owner(), "owner"));
  Epoch epoch(c.epoch());
  Seq from(c.from_seq()), seq(c.seq());
  uint64_t tid = c.transfer_id();
  auto pit = pulls_.find(tid);
  bool ours = pit != pulls_.end();
  if (ours && pit->second.folder_only) {
    AfterWrites(owner, [this, tid] { return EndPull(tid); });
    return Status::Ok();
  }
  ApplyJob job;
  job.owner = owner;
  job.epoch = epoch;
  job.source = s_.peer_row;
  job.chain_failed = writes_failed_;
  job.from = from;
  job.advance_to = seq;
  if (c.has_checkpoint()) {
    ES_ASSIGN_OR_RETURN(Checkpoint cp, CheckpointFromWire(c.checkpoint()));
    if (cp.owner != owner)
      return ProtocolError("Current of " + owner.ToString() + " carries another owner's checkpoint");
    job.checkpoint = cp;
  }
  // A pull from a relay must end where the relay can prove: at a checkpoint.
  job.must_end_verified = ours && owner != s_.peer_uuid;
  // A pull from zero may be of a new epoch (an empty one: no batch said so).
  if (ours && from.value() == 0) job.on_other_epoch = ApplyJob::OnOtherEpoch::kResetFromZero;
  auto then = [this, owner, epoch, seq, tid](const WriteOutcome& out) {
    ES_RETURN_IF_ERROR(OnVerified(out, true));
    PeerHas& has = s_.peer_has[owner];
    if (has.epoch == epoch && has.max_seq < seq) has.max_seq = seq;
    if (has.epoch != epoch && tid != 0) has = {epoch, seq, has.name, 0, std::nullopt, std::nullopt};
    return EndPull(tid);
  };
  if (!ours) return QueuePush(std::move(job), std::move(then));  // the end of a live push
  s_.host.writer().ApplyRows(std::move(job), Then(std::move(then)));
  return Status::Ok();
}

Status Puller::EndPull(uint64_t id) {
  auto pit = pulls_.find(id);
  if (pit == pulls_.end()) return Status::Ok();
  TransferProgress& p = s_.transfers.at(pit->second.progress);
  p.finished = s_.Now();
  if (!pit->second.folder_only) {
    s_.host.ReleasePull(pit->second.owner, &s_.session);
    spdlog::info("pulled {} rows of {} from {} in {:.2f}s ({})", p.done, p.owner_name, s_.peer_name,
                 p.finished - p.started, StrategyName(p.strategy));
  }
  auto done = std::move(pit->second.done);
  pulls_.erase(pit);
  if (done) done(Status::Ok());
  s_.host.OnSessionChanged(&s_.session);
  ES_RETURN_IF_ERROR(Evaluate());
  s_.publish();
  return Status::Ok();
}

Status Puller::OnBulkNotice(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto n, ParseMessage<wire::BulkIndexComplete>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(n.owner(), "owner"));
  s_.counters.notices_received++;
  PeerHas& has = s_.peer_has[owner];
  has.epoch = Epoch(n.epoch());
  has.max_seq = std::max(has.max_seq, Seq(n.max_seq()));
  if (n.has_checkpoint()) {
    ES_ASSIGN_OR_RETURN(Checkpoint cp, CheckpointFromWire(n.checkpoint()));
    if (cp.owner != owner)
      return ProtocolError("notice of " + owner.ToString() + " carries another owner's checkpoint");
    has.checkpoint = cp;
    unprovable_.erase(owner);
  }
  spdlog::info("{} announced {} new rows of owner {} (max seq {})", s_.peer_name, n.entry_count(),
               owner.ToString().substr(0, 8), n.max_seq());
  s_.publish();
  return Evaluate();
}

Status Puller::OnSnapshotOffer(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto o, ParseMessage<wire::SnapshotOffer>(f));
  auto it = pulls_.find(o.transfer_id());
  if (it == pulls_.end() || it->second.folder_only)
    return ProtocolError("SnapshotOffer for unknown transfer " + std::to_string(o.transfer_id()));
  Pull& pull = it->second;
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(o.owner(), "owner"));
  if (owner != pull.owner) return ProtocolError("SnapshotOffer owner does not match its request");
  if (!pull.download) pull.download.emplace();
  ES_ASSIGN_OR_RETURN(bool complete,
                      downloads_.Start(pull.id, s_.transfers.at(pull.progress), o, &*pull.download));
  s_.publish();
  if (complete) FinishDownload(pull);
  return Status::Ok();
}

Status Puller::OnSnapshotChunk(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::SnapshotChunk>(f));
  auto it = pulls_.find(c.transfer_id());
  if (it == pulls_.end() || !it->second.download)
    return ProtocolError("SnapshotChunk for unknown transfer " + std::to_string(c.transfer_id()));
  Pull& pull = it->second;
  ES_ASSIGN_OR_RETURN(bool complete, downloads_.Write(pull.id, s_.transfers.at(pull.progress), *pull.download,
                                                      c, f.payload.size() + kFrameOverhead));
  s_.publish();
  if (complete) FinishDownload(pull);
  return Status::Ok();
}

// The whole file is here: the writer verifies and imports it, then the pull
// ends and ordinary deltas after its max seq follow.
void Puller::FinishDownload(Pull& pull) {
  s_.host.writer().ImportSnapshotFile(
      downloads_.ImportJob(*pull.download, pull.owner),
      ThenResult([this, id = pull.id](Result<WriteOutcome> r) { return OnImported(id, std::move(r)); }));
}

Status Puller::OnImported(uint64_t pull_id, Result<WriteOutcome> r) {
  auto it = pulls_.find(pull_id);
  if (it == pulls_.end()) return Status::Ok();
  Pull& pull = it->second;
  Download& d = *pull.download;
  TransferProgress& p = s_.transfers.at(pull.progress);
  if (r.ok()) {
    s_.counters.rows_applied += r->written;
    s_.counters.snapshots_imported++;
    p.done = p.total;
    wire::Credit ack;  // tells the server what we now hold
    ack.set_transfer_id(pull.id);
    ack.mutable_ack()->set_owner(UuidToWire(pull.owner));
    ack.mutable_ack()->set_epoch(d.epoch.value());
    ack.mutable_ack()->set_seq(d.max_seq.value());
    s_.Send(EncodeFrame(ack));
    spdlog::info("imported the snapshot of {} from {}: {} rows up to seq {} ({} bytes) in {:.2f}s",
                 p.owner_name, s_.peer_name, r->written, d.max_seq.value(), d.size, s_.Now() - p.started);
  } else if (ImportMayRetry(r.status())) {
    // The disk full, the library busy: the verified file stays for the next
    // offer of it, and the session ends as a failed batch would end it.
    return r.status();
  } else {
    // Refused, nothing changed: take this owner's rows as batches instead.
    snapshot_refused_.insert(pull.owner);
    spdlog::warn("refused the snapshot of {} from {}: {}; pulling its rows instead", p.owner_name,
                 s_.peer_name, r.status().message());
  }
  p.finished = s_.Now();
  s_.host.ReleasePull(pull.owner, &s_.session);
  pulls_.erase(it);
  s_.host.OnSessionChanged(&s_.session);
  s_.publish();
  return Evaluate();
}

Status Puller::OnVerified(const WriteOutcome& out, bool served_by_peer) {
  if (!out.refused.empty() && refused_.insert(out.verified.empty() ? Uuid() : out.verified[0].first).second)
    spdlog::warn("{}: {}", s_.peer_name, out.refused);
  bool dropped = false;
  for (const auto& [owner, v] : out.verified) {
    auto has = s_.peer_has.find(owner);
    std::string name = has != s_.peer_has.end() ? has->second.name : owner.ToString().substr(0, 8);
    if (v.kind == Verification::Kind::kVerified) {
      spdlog::debug("{}: verified against its checkpoint at seq {}", name, v.seq.value());
      continue;
    }
    if (v.kind != Verification::Kind::kDiverged) continue;
    dropped = true;
    s_.counters.verification_failures++;
    if (served_by_peer) {
      s_.trust_error = "rows of " + name + " from " + s_.peer_name + " did not verify: " + v.detail;
      spdlog::error("rows of {} from {} did not verify: {}; dropped them, fetching {} from {}", name,
                    s_.peer_name, v.detail, name,
                    owner == s_.peer_uuid ? "it again" : "the owner or another peer");
      if (owner != s_.peer_uuid) s_.host.Distrust(owner, s_.peer_uuid);
    } else {
      s_.trust_error = "our rows of " + name + " did not verify against the checkpoint " + s_.peer_name +
                       " relayed: " + v.detail;
      spdlog::error(
          "our rows of {} did not verify against its checkpoint relayed by {}: {}; dropped them, "
          "fetching them again",
          name, s_.peer_name, v.detail);
    }
    unprovable_.erase(owner);
  }
  if (dropped) {
    s_.publish();
    s_.host.OnSessionChanged(&s_.session);  // every session may now pull the owner again
  }
  return Status::Ok();
}

void Puller::Abort(const Status& why) {
  for (auto& [id, p] : pulls_) {
    if (p.done) p.done(why);
    if (!p.folder_only) s_.host.ReleasePull(p.owner, &s_.session);
    if (p.download) p.download->Close();  // the .part stays: a later offer resumes it
  }
  pulls_.clear();
  alive_ = std::make_shared<char>();  // completions of writes still queued are dropped
}

}  // namespace entrysync
