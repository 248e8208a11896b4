#include "sync/index_sender.h"

#include <spdlog/spdlog.h>

#include "proto/batch.h"
#include "proto/convert.h"
#include "sync/session.h"

namespace entrysync {
namespace {

Strategy StrategyFromWire(int s) { return s >= 0 && s <= 4 ? static_cast<Strategy>(s) : Strategy::kAuto; }

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

wire::Current CurrentOf(const Uuid& owner, Epoch epoch, Seq from, Seq seq, uint64_t transfer_id) {
  wire::Current c;
  c.set_owner(UuidToWire(owner));
  c.set_epoch(epoch.value());
  c.set_from_seq(from.value());
  c.set_seq(seq.value());
  c.set_transfer_id(transfer_id);
  return c;
}

}  // namespace

Status SendLocations(SessionShared& s, const Uuid& owner, DeviceRowId owner_row, Epoch epoch,
                     uint64_t transfer_id, Seq since) {
  ES_ASSIGN_OR_RETURN(auto locs, s.lib->ListLocations(owner_row));
  std::vector<LocationRecord> recs;
  for (auto& l : locs) recs.push_back(l.record);
  BatchHeader hdr{owner, epoch, transfer_id, 0, 0, recs.size(), Codec::kNone, {}};
  ES_ASSIGN_OR_RETURN(wire::StateBatch b, BuildLocationBatch(hdr, recs));
  b.set_from_seq(since.value());
  s.Send(EncodeFrame(b));
  return Status::Ok();
}

Status IndexSender::OnStateRequest(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto r, ParseMessage<wire::StateRequest>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(r.owner(), "owner"));
  s_.peer_done = false;  // the peer pulls again; it says "done" when finished
  s_.publish();
  auto dev = s_.lib->FindDeviceByUuid(owner);
  if (!dev.ok())
    return s_.FailRequest(r.request_id(), NotFound("this device holds nothing of owner " + owner.ToString()));
  ES_ASSIGN_OR_RETURN(auto served, s_.Servable(dev->id));
  if (!r.folder_path().empty()) return ServeFolder(s_, r, owner, dev->id, served.first);
  Serve s;
  s.id = r.request_id();
  s.owner = owner;
  s.owner_row = dev->id;
  s.epoch = served.first;
  s.since = Epoch(r.epoch()) == served.first ? Seq(r.since_seq()) : Seq(0);
  s.cursor = s.since;
  s.upto = served.second;
  if (r.max_records() > 0) {
    // A page: stop at the max_records-th row after `since`.
    ES_ASSIGN_OR_RETURN(
        store::Stmt st,
        s_.lib->db().Prepare(
            "SELECT seq FROM entry WHERE owner = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT 1 OFFSET ?"));
    st.Bind(1, s.owner_row.value()).Bind(2, s.since.value()).Bind(3, s.upto.value());
    st.Bind(4, static_cast<int64_t>(r.max_records()) - 1);
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) s.upto = Seq(st.Int(0));
  }
  ES_ASSIGN_OR_RETURN(s.total, s_.CountRange(s.owner_row, s.since, s.upto));
  Strategy forced = StrategyFromWire(r.strategy());
  SyncConfig cfg = s_.config;
  cfg.forced = forced;
  s.strategy = ChooseStrategy(cfg, s.total, r.epoch() == 0 && s.since.value() == 0);
  if (s.strategy == Strategy::kSnapshot) {
    if (s.total > 0 || s.since.value() == 0)
      return uploads_.Offer(s.id, owner, s.owner_row, s.epoch, s.upto, dev->name);
    s.strategy = Strategy::kChange;  // nothing to send: just Current
  }
  s.credit = r.max_batches() > 0 ? r.max_batches() : 1;
  s.total_batches = static_cast<uint32_t>((s.total + s_.batch_records - 1) / s_.batch_records);
  TransferProgress p;
  p.id = s.id;
  p.pulling = false;
  p.owner = owner;
  p.owner_name = dev->name;
  p.strategy = s.strategy;
  p.total = s.total;
  p.started = s_.Now();
  s.progress = s_.transfers.Add(p);
  spdlog::info("serving {} rows of {} to {} as {} ({})", s.total, dev->name, s_.peer_name,
               StrategyName(s.strategy),
               forced != Strategy::kAuto ? std::string("forced by the peer: ") + StrategyName(forced)
               : s.strategy == Strategy::kChange
                   ? "at most " + std::to_string(s_.config.change_threshold) + " rows"
                   : "more than " + std::to_string(s_.config.change_threshold) + " rows");
  serves_[s.id] = s;
  s_.host.OnSessionUpdated(&s_.session);
  return Status::Ok();
}

Status IndexSender::OnCredit(const wire::Credit& c) {
  auto it = serves_.find(c.transfer_id());
  if (it != serves_.end()) it->second.credit += c.batches();
  if (c.has_ack() && !c.ack().owner().empty()) {
    ES_ASSIGN_OR_RETURN(Uuid o, UuidFromWire(c.ack().owner(), "owner"));
    s_.peer_holds[o] = {Epoch(c.ack().epoch()), Seq(c.ack().seq()), s_.peer_holds[o].name};
  }
  return Status::Ok();
}

Status IndexSender::Pump(bool* did_work) {
  for (auto it = serves_.begin(); it != serves_.end();) {
    Serve& s = it->second;
    bool finished = false;
    if (!s_.WriteBlocked()) {
      ES_RETURN_IF_ERROR(PumpOne(s, did_work));
      finished = s.cursor == s.upto && s.locations_sent && s_.transfers.at(s.progress).finished > 0;
    }
    it = finished ? serves_.erase(it) : std::next(it);
  }
  return Status::Ok();
}

Status IndexSender::PumpOne(Serve& s, bool* did_work) {
  if (!s.locations_sent) {
    ES_RETURN_IF_ERROR(SendLocations(s_, s.owner, s.owner_row, s.epoch, s.id, s.since));
    s.locations_sent = true;
    *did_work = true;
  }
  TransferProgress& p = s_.transfers.at(s.progress);
  if (s.strategy == Strategy::kBatch && s.credit == 0 && s.cursor < s.upto) return Status::Ok();
  if (s.cursor < s.upto) ES_RETURN_IF_ERROR(SendRows(s, p, did_work));
  if (s.cursor >= s.upto && p.finished == 0) ES_RETURN_IF_ERROR(FinishServe(s, p));
  s_.publish();
  return Status::Ok();
}

// The next batch_records rows after the cursor: one StateBatch, or that
// many StateChanges.
Status IndexSender::SendRows(Serve& s, TransferProgress& p, bool* did_work) {
  const uint32_t per = s_.batch_records;
  std::vector<EntryRecord> rows;
  rows.reserve(per);
  ES_RETURN_IF_ERROR(s_.lib->ScanOwnerEntries(s.owner_row, s.cursor, s.upto, per, [&](EntryRecord&& e) {
    rows.push_back(std::move(e));
    return true;
  }));
  Seq from = s.cursor;
  s.cursor = rows.size() < per ? s.upto : rows.back().seq;
  *did_work = true;
  if (s.strategy == Strategy::kBatch) {
    if (!rows.empty()) {
      ES_ASSIGN_OR_RETURN(std::string frame, EncodeBatchWithin(s, from, &rows));
      p.bytes += frame.size();
      s_.Send(std::move(frame));
      s.credit--;
      s_.counters.batches_sent++;
    }
  } else {
    for (const EntryRecord& e : rows) {
      wire::StateChange c;
      c.set_owner(UuidToWire(s.owner));
      c.set_epoch(s.epoch.value());
      EntryToWire(e, c.mutable_entry());
      std::string frame = EncodeFrame(c);
      p.bytes += frame.size();
      s_.Send(std::move(frame));
    }
    s_.counters.changes_sent += rows.size();
  }
  s_.counters.rows_sent += rows.size();
  p.done += rows.size();
  return Status::Ok();
}

// The batch of `rows` as a frame the peer accepts: while it is larger than
// the peer's largest frame, the batch keeps only its first half (the rest
// follows in the next batch; the cursor moves back to its last row).
Result<std::string> IndexSender::EncodeBatchWithin(Serve& s, Seq from, std::vector<EntryRecord>* rows) {
  for (;;) {
    BatchHeader hdr{s.owner, s.epoch, s.id, s.batch_index, s.total_batches, s.total, s_.codec, {}};
    ES_ASSIGN_OR_RETURN(wire::StateBatch b, BuildEntryBatch(hdr, *rows));
    b.set_from_seq(from.value());
    std::string frame = EncodeFrame(b);
    if (frame.size() <= s_.peer_max_frame) {
      s.batch_index++;
      return frame;
    }
    if (rows->size() == 1)
      return InvalidArgument("a row of " + s.owner.ToString() + " does not fit the peer's largest frame (" +
                             std::to_string(s_.peer_max_frame) + " bytes)");
    rows->resize(rows->size() / 2);
    s.cursor = rows->back().seq;
  }
}

Status IndexSender::FinishServe(Serve& s, TransferProgress& p) {
  s_.Send(EncodeFrame(CurrentOf(s.owner, s.epoch, s.since, s.upto, s.id)));
  p.finished = s_.Now();
  s_.peer_holds[s.owner] = {s.epoch, s.upto, p.owner_name};
  spdlog::info("served {} rows of {} to {} in {:.2f}s", p.done, p.owner_name, s_.peer_name,
               p.finished - p.started);
  // Changes committed while this transfer ran were not announced (OnAdvance
  // leaves an owner with a running transfer alone): announce them now,
  // once this serve is gone.
  ES_ASSIGN_OR_RETURN(auto now, s_.Servable(s.owner_row));
  if (now.first == s.epoch && now.second > s.upto)
    s_.session.NotifyAdvance(s.owner, s.epoch, now.second, std::nullopt);
  return Status::Ok();
}

// Live changes: push a few rows to a peer that is current, else announce.
Status IndexSender::OnAdvance(const Advance& a) {
  if (a.owner == s_.peer_uuid) return Status::Ok();
  ES_ASSIGN_OR_RETURN(DeviceInfo dev, s_.lib->FindDeviceByUuid(a.owner));
  for (const auto& [id, s] : serves_)
    if (s.owner == a.owner) return Status::Ok();  // the running transfer's Current will tell
  auto holds = s_.peer_holds.find(a.owner);
  bool current = holds != s_.peer_holds.end() && holds->second.epoch == a.epoch;
  Seq from = current ? holds->second.max_seq : Seq(0);
  if (current && from >= a.max_seq) return Status::Ok();
  ES_ASSIGN_OR_RETURN(uint64_t delta, s_.CountRange(dev.id, from, a.max_seq));
  if (current && s_.config.forced == Strategy::kAuto && delta <= s_.config.change_threshold) {
    ES_RETURN_IF_ERROR(PushChanges(a, dev.id, from));
    holds->second.max_seq = a.max_seq;
    return Status::Ok();
  }
  wire::BulkIndexComplete n;
  n.set_owner(UuidToWire(a.owner));
  if (a.location) n.set_location(UuidToWire(*a.location));
  n.set_entry_count(delta);
  n.set_max_seq(a.max_seq.value());
  n.set_epoch(a.epoch.value());
  n.set_time_ms(WallMs());
  s_.Send(EncodeFrame(n));
  s_.counters.notices_sent++;
  s_.publish();
  return Status::Ok();
}

// The rows after `from` as StateChanges (their locations first when they
// changed too), then Current: the peer's watermark follows.
Status IndexSender::PushChanges(const Advance& a, DeviceRowId owner_row, Seq from) {
  ES_ASSIGN_OR_RETURN(auto locs, s_.lib->ListLocations(owner_row));
  for (const auto& l : locs)
    if (l.record.seq > from) {
      ES_RETURN_IF_ERROR(SendLocations(s_, a.owner, owner_row, a.epoch, 0, from));
      break;
    }
  std::vector<EntryRecord> rows;
  ES_RETURN_IF_ERROR(s_.lib->ScanOwnerEntries(owner_row, from, a.max_seq, 0, [&](EntryRecord&& e) {
    rows.push_back(std::move(e));
    return true;
  }));
  for (const EntryRecord& e : rows) {
    wire::StateChange c;
    c.set_owner(UuidToWire(a.owner));
    c.set_epoch(a.epoch.value());
    EntryToWire(e, c.mutable_entry());
    s_.Send(EncodeFrame(c));
  }
  s_.Send(EncodeFrame(CurrentOf(a.owner, a.epoch, from, a.max_seq, 0)));
  s_.counters.changes_sent += rows.size();
  s_.counters.rows_sent += rows.size();
  s_.publish();
  return Status::Ok();
}

}  // namespace entrysync
