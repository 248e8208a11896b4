#include "sync/puller.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "proto/batch.h"
#include "proto/convert.h"
#include "sync/session_host.h"

namespace entrysync {
namespace {

wire::Strategy StrategyToWire(Strategy s) { return static_cast<wire::Strategy>(s); }

}  // namespace

Puller::Puller(SessionShared& shared, FlowControl& flow)
    : s_(shared), flow_(flow), downloads_(shared, flow) {}

Status Puller::Evaluate() {
  for (const auto& [owner, has] : s_.peer_has) {
    if (owner == s_.my_uuid) continue;
    bool pulling = false;
    for (const auto& [id, p] : pulls_) pulling |= (p.owner == owner && !p.folder_only);
    if (pulling) continue;
    ES_ASSIGN_OR_RETURN(DeviceRowId row, s_.OwnerRow(owner, has.name));
    ES_ASSIGN_OR_RETURN(auto wm, s_.lib->GetWatermark(row));
    if (wm && wm->epoch == has.epoch && wm->seq >= has.max_seq) continue;
    if (!wm && has.max_seq.value() == 0) continue;  // nothing there yet
    if (!s_.config.auto_fetch) continue;            // lazy: only what `ls` asks for
    if (flow_.OverLimit()) {
      flow_.Defer();  // over the rate limit: ask later
      break;
    }
    if (!s_.host.ClaimPull(owner, &s_.session)) continue;
    ES_RETURN_IF_ERROR(StartPull(owner, has));
  }
  MaybeSendDone();
  return Status::Ok();
}

// One StateRequest for `owner`: from our watermark in the peer's epoch
// (from zero in another), the strategy forced or left to the server, in
// pages when it is a massive delta.
Status Puller::StartPull(const Uuid& owner, const PeerHas& has) {
  ES_ASSIGN_OR_RETURN(DeviceRowId row, s_.OwnerRow(owner, has.name));
  ES_ASSIGN_OR_RETURN(auto wm, s_.lib->GetWatermark(row));
  bool same_epoch = wm && wm->epoch == has.epoch;
  flow_.PullStarted();
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
  pulls_[id] = Pull{id, owner, row, false, s_.transfers.Add(p), {}, std::nullopt};
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
  ES_ASSIGN_OR_RETURN(DeviceRowId row, s_.OwnerRow(owner, ""));
  ES_ASSIGN_OR_RETURN(auto wm, s_.lib->GetWatermark(row));
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
  pulls_[id] = Pull{id, owner, row, true, s_.transfers.Add(p), std::move(done), std::nullopt};
  s_.sent_done = false;
  return Status::Ok();
}

Result<bool> Puller::OnRequestFailed(const wire::Error& e) {
  auto it = pulls_.find(e.request_id());
  if (e.request_id() == 0 || it == pulls_.end()) return false;
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
    ES_RETURN_IF_ERROR(Evaluate());
    return true;
  }
  MaybeSendDone();
  return true;
}

Status Puller::EnsureEpoch(DeviceRowId owner, Epoch epoch, Seq from) {
  ES_ASSIGN_OR_RETURN(auto wm, s_.lib->GetWatermark(owner));
  if (wm && wm->epoch == epoch) return Status::Ok();
  if (from.value() != 0)
    return ProtocolError("rows of a new epoch must start from seq 0, got " + std::to_string(from.value()));
  if (wm) spdlog::info("owner's index epoch changed: dropping its rows and resyncing from zero");
  return s_.replica->ResetOwner(owner, epoch);
}

Status Puller::PrepareFolderLoad(DeviceRowId owner, Epoch epoch) {
  ES_ASSIGN_OR_RETURN(auto wm, s_.lib->GetWatermark(owner));
  if (wm && wm->epoch == epoch) return Status::Ok();
  return s_.replica->ResetOwner(owner, epoch);
}

Status Puller::OnStateBatch(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto b, ParseMessage<wire::StateBatch>(f));
  if (b.transfer_id() == 0 && b.model() == wire::MODEL_LOCATION) {
    // A live push's locations (IndexSender::OnAdvance): applied like a StateChange.
    ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(b.owner(), "owner"));
    ES_ASSIGN_OR_RETURN(auto locs, OpenLocationBatch(b));
    ES_ASSIGN_OR_RETURN(DeviceRowId row, s_.OwnerRow(owner, ""));
    ES_ASSIGN_OR_RETURN(auto wm, s_.lib->GetWatermark(row));
    if (!wm || wm->epoch != Epoch(b.epoch())) return Status::Ok();  // stale: a pull will fix it
    return s_.replica->Apply(row, wm->epoch, locs, {}, std::nullopt, s_.peer_row).status();
  }
  auto it = pulls_.find(b.transfer_id());
  if (it == pulls_.end())
    return ProtocolError("StateBatch for unknown transfer " + std::to_string(b.transfer_id()));
  Pull& pull = it->second;
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(b.owner(), "owner"));
  if (owner != pull.owner) return ProtocolError("StateBatch owner does not match its request");
  s_.counters.batches_received++;
  Epoch epoch(b.epoch());
  Seq from(b.from_seq());
  if (b.model() == wire::MODEL_LOCATION) {
    ES_ASSIGN_OR_RETURN(auto locs, OpenLocationBatch(b));
    ES_RETURN_IF_ERROR(pull.folder_only ? PrepareFolderLoad(pull.owner_row, epoch)
                                        : EnsureEpoch(pull.owner_row, epoch, from));
    return s_.replica->Apply(pull.owner_row, epoch, locs, {}, std::nullopt, s_.peer_row).status();
  }
  ES_ASSIGN_OR_RETURN(auto rows, OpenEntryBatch(b));
  if (pull.folder_only) ES_RETURN_IF_ERROR(PrepareFolderLoad(pull.owner_row, epoch));
  ES_ASSIGN_OR_RETURN(auto wm, s_.lib->GetWatermark(pull.owner_row));
  if (!wm || wm->epoch != epoch) return ProtocolError("StateBatch of an unexpected epoch");
  std::optional<Seq> advance;
  if (!pull.folder_only && from.value() >= 0 && wm->seq >= from) advance = Seq(b.last_seq());
  ES_ASSIGN_OR_RETURN(ApplyStats st,
                      s_.replica->Apply(pull.owner_row, epoch, {}, rows, advance, s_.peer_row));
  s_.counters.rows_applied += st.written;
  s_.counters.rows_skipped += st.skipped;
  TransferProgress& p = s_.transfers.at(pull.progress);
  p.total = b.total_records();
  if (p.strategy != Strategy::kBulk) p.strategy = Strategy::kBatch;
  p.done += rows.size();
  p.bytes += f.payload.size() + kFrameOverhead;
  flow_.Received(f.payload.size() + kFrameOverhead);
  std::optional<wire::Ack> ack;
  if (advance) {
    ack.emplace();
    ack->set_owner(b.owner());
    ack->set_epoch(epoch.value());
    ack->set_seq(advance->value());
  }
  flow_.Grant(b.transfer_id(), ack);
  s_.publish();
  return Status::Ok();
}

Status Puller::OnStateChange(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::StateChange>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(c.owner(), "owner"));
  if (!c.has_entry()) return ProtocolError("StateChange without an entry");
  ES_ASSIGN_OR_RETURN(EntryRecord e, EntryFromWire(c.entry()));
  ES_ASSIGN_OR_RETURN(DeviceRowId row, s_.OwnerRow(owner, ""));
  ES_ASSIGN_OR_RETURN(auto wm, s_.lib->GetWatermark(row));
  s_.counters.changes_received++;
  if (!wm || wm->epoch != Epoch(c.epoch())) return Status::Ok();  // stale: a pull will fix it
  ES_ASSIGN_OR_RETURN(ApplyStats st,
                      s_.replica->Apply(row, wm->epoch, {}, std::span(&e, 1), std::nullopt, s_.peer_row));
  s_.counters.rows_applied += st.written;
  s_.counters.rows_skipped += st.skipped;
  if (st.written > 0) s_.host.OnSessionChanged(&s_.session);  // the rows flow on
  for (auto& [id, pull] : pulls_) {
    if (pull.owner != owner) continue;
    TransferProgress& p = s_.transfers.at(pull.progress);
    p.strategy = Strategy::kChange;
    p.done++;
    p.bytes += f.payload.size() + kFrameOverhead;
  }
  s_.publish();
  return Status::Ok();
}

// The end of a transfer of `owner` (a pull of ours, or a live push): the
// watermark moves to its seq when we hold what it started from.
Status Puller::OnCurrent(const wire::Current& c) {
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(c.owner(), "owner"));
  ES_ASSIGN_OR_RETURN(DeviceRowId row, s_.OwnerRow(owner, ""));
  Epoch epoch(c.epoch());
  Seq from(c.from_seq()), seq(c.seq());
  auto pit = pulls_.find(c.transfer_id());
  bool folder_only = pit != pulls_.end() && pit->second.folder_only;
  if (!folder_only) {
    if (pit != pulls_.end() && from.value() == 0) ES_RETURN_IF_ERROR(EnsureEpoch(row, epoch, from));
    ES_ASSIGN_OR_RETURN(auto wm, s_.lib->GetWatermark(row));
    if (wm && wm->epoch == epoch && wm->seq >= from && seq > wm->seq) {
      ES_RETURN_IF_ERROR(s_.replica->Apply(row, epoch, {}, {}, seq, s_.peer_row).status());
      s_.host.OnSessionChanged(&s_.session);
    }
    PeerHas& has = s_.peer_has[owner];
    if (has.epoch == epoch && has.max_seq < seq) has.max_seq = seq;
    if (has.epoch != epoch && c.transfer_id() != 0) has = {epoch, seq, has.name};
  }
  if (pit == pulls_.end()) return Status::Ok();
  TransferProgress& p = s_.transfers.at(pit->second.progress);
  p.finished = s_.Now();
  if (!folder_only) {
    s_.host.ReleasePull(owner, &s_.session);
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
  return complete ? FinishDownload(pull) : Status::Ok();
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
  return complete ? FinishDownload(pull) : Status::Ok();
}

// The whole file is here: verify and import it, then the pull ends and
// ordinary deltas after its max seq follow.
Status Puller::FinishDownload(Pull& pull) {
  Download& d = *pull.download;
  TransferProgress& p = s_.transfers.at(pull.progress);
  uint64_t written = 0;
  Status imported = downloads_.Import(d, &written);
  if (imported.ok()) {
    s_.counters.rows_applied += written;
    s_.counters.snapshots_imported++;
    p.done = p.total;
    wire::Credit ack;  // tells the server what we now hold
    ack.set_transfer_id(pull.id);
    ack.mutable_ack()->set_owner(UuidToWire(pull.owner));
    ack.mutable_ack()->set_epoch(d.epoch.value());
    ack.mutable_ack()->set_seq(d.max_seq.value());
    s_.Send(EncodeFrame(ack));
    spdlog::info("imported the snapshot of {} from {}: {} rows up to seq {} ({} bytes) in {:.2f}s",
                 p.owner_name, s_.peer_name, written, d.max_seq.value(), d.size, s_.Now() - p.started);
  } else {
    // Refused, nothing changed: take this owner's rows as batches instead.
    snapshot_refused_.insert(pull.owner);
    spdlog::warn("refused the snapshot of {} from {}: {}; pulling its rows instead", p.owner_name,
                 s_.peer_name, imported.message());
  }
  p.finished = s_.Now();
  s_.host.ReleasePull(pull.owner, &s_.session);
  pulls_.erase(pull.id);
  s_.host.OnSessionChanged(&s_.session);
  s_.publish();
  return Evaluate();
}

void Puller::Abort(const Status& why) {
  for (auto& [id, p] : pulls_) {
    if (p.done) p.done(why);
    if (!p.folder_only) s_.host.ReleasePull(p.owner, &s_.session);
    if (p.download) p.download->Close();  // the .part stays: a later offer resumes it
  }
  pulls_.clear();
}

}  // namespace entrysync
