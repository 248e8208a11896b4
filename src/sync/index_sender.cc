#include "sync/index_sender.h"

#include <spdlog/spdlog.h>

#include "proto/batch.h"
#include "proto/convert.h"
#include "sync/session.h"
#include "sync/trust.h"

namespace entrysync {
namespace {

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

Result<std::string> EncodeLocations(Library& lib, const Uuid& owner, DeviceRowId owner_row, Epoch epoch,
                                    uint64_t transfer_id, Seq since) {
  ES_ASSIGN_OR_RETURN(auto locs, lib.ListLocations(owner_row));
  std::vector<LocationRecord> recs;
  recs.reserve(locs.size());
  for (auto& l : locs) recs.push_back(l.record);
  BatchHeader hdr{owner, epoch, transfer_id, 0, 0, recs.size(), Codec::kNone, {}};
  ES_ASSIGN_OR_RETURN(wire::StateBatch b, BuildLocationBatch(hdr, recs));
  b.set_from_seq(since.value());
  return EncodeFrame(b);
}

Status SendLocations(SessionShared& s, const Uuid& owner, DeviceRowId owner_row, Epoch epoch,
                     uint64_t transfer_id, Seq since) {
  ES_ASSIGN_OR_RETURN(std::string frame,
                      EncodeLocations(*s.lib, owner, owner_row, epoch, transfer_id, since));
  s.Uploaded(frame.size());  // charged, not paced: small, and it opens the transfer
  s.Send(std::move(frame));
  return Status::Ok();
}

Result<ChunkRead> ReadChunk(Library& lib, DeviceRowId owner_row, const ChunkRequest& r) {
  std::vector<EntryRecord> rows;
  rows.reserve(r.max_rows);
  ES_RETURN_IF_ERROR(lib.ScanOwnerEntries(owner_row, r.from, r.upto, r.max_rows, [&](EntryRecord&& e) {
    rows.push_back(std::move(e));
    return true;
  }));
  ChunkRead out;
  out.end = rows.size() < r.max_rows ? r.upto : rows.back().seq;
  if (rows.empty()) return out;
  if (!r.batch) {
    for (const EntryRecord& e : rows) {
      wire::StateChange c;
      c.set_owner(UuidToWire(r.header.owner));
      c.set_epoch(r.header.epoch.value());
      EntryToWire(e, c.mutable_entry());
      out.frames.push_back(EncodeFrame(c));
      out.bytes += out.frames.back().size();
    }
    out.rows = rows.size();
    return out;
  }
  // While the batch is larger than the peer's largest frame, it keeps only
  // its first half; the rest follows in the next chunk.
  for (;;) {
    ES_ASSIGN_OR_RETURN(wire::StateBatch b, BuildEntryBatch(r.header, rows));
    b.set_from_seq(r.from.value());
    std::string frame = EncodeFrame(b);
    if (frame.size() <= r.max_frame) {
      out.bytes = frame.size();
      out.rows = rows.size();
      out.frames.push_back(std::move(frame));
      return out;
    }
    if (rows.size() == 1)
      return InvalidArgument("a row of " + r.header.owner.ToString() +
                             " does not fit the peer's largest frame (" + std::to_string(r.max_frame) +
                             " bytes)");
    rows.resize(rows.size() / 2);
    out.end = rows.back().seq;
  }
}

Status IndexSender::OnStateRequest(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto r, ParseMessage<wire::StateRequest>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(r.owner(), "owner"));
  if (serves_.size() + s_.folder_loads >= kMaxRequests && !serves_.contains(r.request_id()))
    return ProtocolError("asked for more than " + std::to_string(kMaxRequests) + " transfers at once");
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
  s.read_cursor = s.since;
  s.serial = ++next_serial_;
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
    s_.peer_holds[o] = {Epoch(c.ack().epoch()), Seq(c.ack().seq()), s_.peer_holds[o].name, 0,
                        std::nullopt,           std::nullopt};
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
  // A chunk with no rows (the range was emptied meanwhile) takes no credit
  // and waits for no upload limit.
  bool credit = s.strategy != Strategy::kBatch || s.credit > 0;
  bool empty = !s.ready.empty() && s.ready.front().frames.empty();
  if (!s.ready.empty() && (empty || (credit && s_.MayUpload()))) {
    SendChunk(s, p, std::move(s.ready.front()));
    s.ready.pop_front();
    *did_work = true;
  }
  ReadAhead(s);
  if (s.cursor >= s.upto && s.ready.empty() && !s.reading && p.finished == 0)
    ES_RETURN_IF_ERROR(FinishServe(s, p));
  s_.publish();
  return Status::Ok();
}

// The next batch_records rows after the read cursor, read and encoded on
// the reader: one StateBatch, or that many StateChanges.
void IndexSender::ReadAhead(Serve& s) {
  if (s.reading || s.read_cursor >= s.upto || s.ready.size() >= kReadAhead) return;
  ChunkRequest r;
  r.header = BatchHeader{s.owner, s.epoch, s.id, s.batch_index, s.total_batches, s.total, s_.codec, {}};
  r.from = s.read_cursor;
  r.upto = s.upto;
  r.max_rows = s_.batch_records;
  r.max_frame = s_.peer_max_frame;
  r.batch = s.strategy == Strategy::kBatch;
  s.reading = true;
  s_.ReadThen<Result<ChunkRead>>(
      Reader::Lane::kServe,
      [owner_row = s.owner_row, r](Library& lib) { return ReadChunk(lib, owner_row, r); },
      [this, id = s.id, serial = s.serial](Result<ChunkRead> c) {
        return OnChunkRead(id, serial, std::move(c));
      });
}

Status IndexSender::OnChunkRead(uint64_t id, uint64_t serial, Result<ChunkRead> chunk) {
  auto it = serves_.find(id);
  if (it == serves_.end() || it->second.serial != serial) return Status::Ok();  // aborted or replaced
  ES_RETURN_IF_ERROR(chunk.status());
  Serve& s = it->second;
  s.reading = false;
  s.read_cursor = chunk->end;
  if (!chunk->frames.empty() && s.strategy == Strategy::kBatch) s.batch_index++;
  s.ready.push_back(std::move(*chunk));
  s_.wake();
  return Status::Ok();
}

void IndexSender::SendChunk(Serve& s, TransferProgress& p, ChunkRead&& c) {
  s.cursor = c.end;
  p.bytes += c.bytes;
  s_.Uploaded(c.bytes);
  for (std::string& frame : c.frames) s_.Send(std::move(frame));
  if (s.strategy == Strategy::kBatch) {
    if (!c.frames.empty()) {
      s.credit--;
      s_.counters.batches_sent++;
    }
  } else {
    s_.counters.changes_sent += c.rows;
  }
  s_.counters.rows_sent += c.rows;
  p.done += c.rows;
}

Status IndexSender::FinishServe(Serve& s, TransferProgress& p) {
  wire::Current c = CurrentOf(s.owner, s.epoch, s.since, s.upto, s.id);
  ES_ASSIGN_OR_RETURN(auto cp, s_.CheckpointOf(s.owner_row, s.epoch));
  if (cp) *c.mutable_checkpoint() = CheckpointToWire(*cp);
  s_.Send(EncodeFrame(c));
  p.finished = s_.Now();
  s_.peer_holds[s.owner] = {s.epoch, s.upto, p.owner_name, 0, std::nullopt, std::nullopt};
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
  ES_ASSIGN_OR_RETURN(auto cp, s_.CheckpointOf(dev.id, a.epoch));
  if (cp) *n.mutable_checkpoint() = CheckpointToWire(*cp);
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
  // At most change_threshold rows: charged to the upload limit, not held
  // back (a live change goes at once).
  for (const EntryRecord& e : rows) {
    wire::StateChange c;
    c.set_owner(UuidToWire(a.owner));
    c.set_epoch(a.epoch.value());
    EntryToWire(e, c.mutable_entry());
    std::string frame = EncodeFrame(c);
    s_.Uploaded(frame.size());
    s_.Send(std::move(frame));
  }
  wire::Current c = CurrentOf(a.owner, a.epoch, from, a.max_seq, 0);
  ES_ASSIGN_OR_RETURN(auto cp, s_.CheckpointOf(owner_row, a.epoch));
  if (cp) *c.mutable_checkpoint() = CheckpointToWire(*cp);
  s_.Send(EncodeFrame(c));
  s_.counters.changes_sent += rows.size();
  s_.counters.rows_sent += rows.size();
  s_.publish();
  return Status::Ok();
}

}  // namespace entrysync
