#include "sync/snapshot_upload.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <system_error>

#include "proto/compress.h"
#include "proto/convert.h"
#include "sync/session_host.h"
#include "sync/trust.h"

namespace entrysync {

// The export runs on the Reader's export lane (it may take a second or
// more); the offer goes out when it is ready.
Status SnapshotUploader::Offer(uint64_t transfer_id, const Uuid& owner, DeviceRowId owner_row, Epoch epoch,
                               Seq upto, const std::string& owner_name) {
  s_.ReadThen<Result<ServedSnapshot>>(
      Reader::Lane::kExport,
      [dir = s_.host.library_dir(), owner_row, owner, epoch, upto,
       lag = s_.config.snapshot_max_lag](Library& lib) -> Result<ServedSnapshot> {
        ES_ASSIGN_OR_RETURN(auto found, FindOrExportSnapshot(lib, dir, owner_row, owner, epoch, upto, lag,
                                                             /*export_if_missing=*/true));
        return *found;
      },
      [this, transfer_id, owner, owner_name](Result<ServedSnapshot> o) {
        return SendOffer(transfer_id, owner, owner_name, std::move(o));
      });
  return Status::Ok();
}

Status SnapshotUploader::SendOffer(uint64_t transfer_id, const Uuid& owner, const std::string& owner_name,
                                   Result<ServedSnapshot> o) {
  const SyncConfig& config = s_.config;
  if (!o.ok()) {
    // The request fails; the peer may ask again for rows instead.
    spdlog::warn("cannot export a snapshot of {} for {}: {}", owner_name, s_.peer_name, o.status().message());
    return s_.FailRequest(transfer_id,
                          Internal("snapshot of " + owner_name + " unavailable: " + o.status().message()));
  }
  offered_[o->sha256_hex] = *o;
  wire::SnapshotOffer offer;
  offer.set_owner(UuidToWire(owner));
  offer.set_epoch(o->epoch.value());
  offer.set_max_seq(o->max_seq.value());
  offer.set_size(o->size);
  std::string sha(32, '\0');
  HexDecode(o->sha256_hex, sha.data(), sha.size());
  offer.set_sha256(sha);
  offer.set_transfer_id(transfer_id);
  offer.set_entry_count(o->entries);
  // The owner's checkpoint at the file's max seq, when we hold it: the
  // peer verifies the import against it (an older file has none; its rows
  // are then verified at the next checkpoint the deltas reach).
  if (auto dev = s_.lib->FindDeviceByUuid(owner); dev.ok()) {
    ES_ASSIGN_OR_RETURN(auto cp, s_.CheckpointOf(dev->id, o->epoch));
    if (cp && cp->seq == o->max_seq) *offer.mutable_checkpoint() = CheckpointToWire(*cp);
  }
  s_.Send(EncodeFrame(offer));
  spdlog::info("offering a snapshot of {} to {}: {} entries up to seq {}, {} bytes ({}; {})", owner_name,
               s_.peer_name, o->entries, o->max_seq.value(), o->size,
               o->export_seconds > 0 ? fmt::format("exported in {:.2f}s", o->export_seconds)
                                     : std::string("prepared earlier"),
               config.forced == Strategy::kSnapshot
                   ? "forced here"
                   : "the peer holds nothing of it and it has at least " +
                         std::to_string(config.snapshot_threshold) + " rows, or the peer forced it");
  return Status::Ok();
}

Status SnapshotUploader::OnSnapshotRequest(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto r, ParseMessage<wire::SnapshotRequest>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(r.owner(), "owner"));
  auto fail = [&](const std::string& why) { return s_.FailRequest(r.transfer_id(), NotFound(why)); };
  auto it = offered_.find(HexEncode(r.sha256().data(), r.sha256().size()));
  if (r.sha256().size() != 32 || it == offered_.end())
    return fail("no such snapshot offered in this session");
  const ServedSnapshot& o = it->second;
  if (r.offset() > o.size) return fail("snapshot offset " + std::to_string(r.offset()) + " is past its end");
  if (uploads_.size() >= kMaxUploads && !uploads_.contains(r.transfer_id()))
    return ProtocolError("asked for more than " + std::to_string(kMaxUploads) +
                         " snapshot downloads at once");
  int fd = ::open(o.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("snapshot file is gone: " + std::string(std::generic_category().message(errno)));
  Upload u;
  u.id = r.transfer_id();
  u.owner = owner;
  u.fd = fd;
  u.size = o.size;
  u.offset = r.offset();
  u.entries = o.entries;
  u.credit = r.max_chunks() > 0 ? r.max_chunks() : 1;
  TransferProgress p;
  p.id = u.id;
  p.pulling = false;
  p.owner = owner;
  auto dev = s_.lib->FindDeviceByUuid(owner);
  p.owner_name = dev.ok() ? dev->name : owner.ToString().substr(0, 8);
  p.strategy = Strategy::kSnapshot;
  p.total = o.entries;
  p.total_bytes = o.size;
  p.bytes = u.offset;
  p.started = s_.Now();
  if (u.offset > 0)
    spdlog::info("resuming the snapshot of {} for {} at byte {} of {}", p.owner_name, s_.peer_name, u.offset,
                 u.size);
  u.progress = s_.transfers.Add(p);
  auto old = uploads_.find(u.id);
  if (old != uploads_.end()) ::close(old->second.fd);
  uploads_[u.id] = u;
  s_.publish();
  return Status::Ok();
}

void SnapshotUploader::OnCredit(uint64_t transfer_id, uint32_t chunks) {
  auto it = uploads_.find(transfer_id);
  if (it != uploads_.end()) it->second.credit += chunks;
}

Status SnapshotUploader::Pump(bool* did_work) {
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    ES_ASSIGN_OR_RETURN(bool finished, PumpOne(it->second, did_work));
    if (finished) {
      ::close(it->second.fd);
      it = uploads_.erase(it);
    } else {
      ++it;
    }
  }
  s_.publish();
  return Status::Ok();
}

Result<bool> SnapshotUploader::PumpOne(Upload& u, bool* did_work) {
  TransferProgress& p = s_.transfers.at(u.progress);
  while (u.credit > 0 && !s_.WriteBlocked() && s_.MayUpload()) {
    // A chunk's frame stays within the peer's largest frame, whatever the
    // compression does (it never grows data by more than a few bytes).
    uint64_t chunk = std::min<uint64_t>(s_.config.snapshot_chunk_bytes, s_.peer_max_frame - 4096);
    uint64_t n = std::min<uint64_t>(chunk, u.size - u.offset);
    std::string data(n, '\0');
    ssize_t got = n > 0 ? ::pread(u.fd, data.data(), n, static_cast<off_t>(u.offset)) : 0;
    if (got != static_cast<ssize_t>(n))
      return IOError("cannot read the snapshot of " + p.owner_name + " at byte " + std::to_string(u.offset));
    wire::SnapshotChunk c;
    c.set_owner(UuidToWire(u.owner));
    c.set_offset(u.offset);
    // SQLite pages compress well (zstd level 1: about a third); the codec
    // falls back to raw bytes when it does not pay.
    Compressed z = CompressPayload(s_.codec, data);
    c.set_codec(CodecToWire(z.codec));
    c.set_raw_size(static_cast<uint32_t>(n));
    c.set_data(z.codec == Codec::kNone ? std::move(data) : std::move(z.bytes));
    c.set_transfer_id(u.id);
    u.offset += n;
    c.set_last(u.offset == u.size);
    std::string frame = EncodeFrame(c);
    s_.Uploaded(frame.size());
    s_.Send(std::move(frame));
    u.credit--;
    p.bytes = u.offset;
    p.done = u.size ? static_cast<uint64_t>(static_cast<double>(u.entries) * u.offset / u.size) : 0;
    *did_work = true;
    if (u.offset == u.size) {
      p.done = p.total;
      p.finished = s_.Now();
      s_.counters.snapshots_sent++;
      spdlog::info("served the snapshot of {} to {}: {} bytes in {:.2f}s", p.owner_name, s_.peer_name, u.size,
                   p.finished - p.started);
      return true;
    }
  }
  return false;
}

void SnapshotUploader::Abort() {
  for (auto& [id, u] : uploads_) ::close(u.fd);
  uploads_.clear();
}

}  // namespace entrysync
