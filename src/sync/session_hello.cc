// Session's handshake: the Hello it sends (Begin) and the one it receives
// (OnHello): the peer's identity checked against its key, the owners both
// sides hold and their checkpoints, digests compared at equal watermarks,
// the peer's limits. The rest of the session is in session.cc.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proto/convert.h"
#include "sync/session.h"

namespace entrysync {
namespace {

constexpr uint32_t kProtocolVersion = 1;

}  // namespace

// Loop: the first event of a session. Makes the parts that need the
// session's lifetime, then sends Hello: what we hold of every owner, and
// what we can serve.
Status Session::Begin() {
  flow_ = std::make_unique<FlowControl>(
      config_, weak_from_this(), [this](std::string frame) { Send(std::move(frame)); },
      [this] {
        Status s = puller_->Evaluate();
        if (!s.ok()) Teardown(s);
      });
  puller_ = std::make_unique<Puller>(shared_, *flow_);
  Library& lib = shared_.host.library();
  shared_.lib = &lib;
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib.LocalDevice());
  shared_.my_uuid = me.uuid;
  wire::Hello h;
  h.set_protocol_version(kProtocolVersion);
  h.set_library_id(UuidToWire(lib.library_id()));
  if (me.device_id) h.set_device_id(DeviceIdToWire(*me.device_id));
  h.set_device_uuid(UuidToWire(me.uuid));
  h.set_device_name(me.name);
  h.add_codecs(wire::CODEC_ZSTD);
  h.add_codecs(wire::CODEC_GZIP);
  h.set_max_batch_records(BatchLimits{}.max_records);
  h.set_max_frame_bytes(kDefaultMaxFrameBytes);
  ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
  for (const auto& d : devices) {
    if (d.revoked) continue;  // neither served nor asked for
    ES_ASSIGN_OR_RETURN(auto served, shared_.Servable(d.id));
    if (d.is_local || served.second.value() > 0) {
      wire::OwnerInfo* o = h.add_owners();
      o->set_owner(UuidToWire(d.uuid));
      o->set_name(d.name);
      o->set_epoch(served.first.value());
      o->set_max_seq(served.second.value());
      ES_ASSIGN_OR_RETURN(uint64_t rows, lib.CountEntries(d.id, /*include_deleted=*/true));
      o->set_entry_count(rows);
      ES_ASSIGN_OR_RETURN(auto cp, shared_.CheckpointOf(d.id, served.first));
      if (cp) *o->mutable_checkpoint() = CheckpointToWire(*cp);
    }
    if (d.is_local) continue;
    ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(d.id));
    if (!wm) continue;
    wire::Watermark* w = h.add_watermarks();
    w->set_owner(UuidToWire(d.uuid));
    w->set_owner_name(d.name);
    w->set_epoch(wm->epoch.value());
    w->set_seq(wm->seq.value());
    ES_ASSIGN_OR_RETURN(LtHash digest, lib.digests().Get(d.id));
    auto sum = digest.checksum();
    w->set_digest(sum.data(), sum.size());
  }
  Send(EncodeFrame(h));
  last_receive_ = Clock::Seconds();
  begun_ = Clock::Seconds();
  ArmTick();
  return Status::Ok();
}

// One timer per session: a Ping after `keepalive` without sending, the end
// after `idle_timeout` without receiving. It fires once per keepalive
// period at most, whatever the traffic.

Status Session::OnHello(const Frame& f) {
  if (hello_received_) return ProtocolError("second Hello");
  ES_ASSIGN_OR_RETURN(auto h, ParseMessage<wire::Hello>(f));
  if (h.protocol_version() != kProtocolVersion)
    return ProtocolError("peer speaks protocol " + std::to_string(h.protocol_version()) + ", we speak " +
                         std::to_string(kProtocolVersion));
  Library& lib = *shared_.lib;
  ES_ASSIGN_OR_RETURN(Uuid lib_id, UuidFromWire(h.library_id(), "library_id"));
  if (lib_id != lib.library_id())
    return PermissionDenied("peer " + h.device_name() + " belongs to library " + lib_id.ToString() +
                            ", not ours (" + lib.library_id().ToString() + ")");
  ES_ASSIGN_OR_RETURN(Uuid peer_uuid, UuidFromWire(h.device_uuid(), "device_uuid"));
  if (peer_uuid == shared_.my_uuid) return PermissionDenied("peer claims to be this very device");
  // The peer must be paired: found by the id it proved on the transport.
  DeviceId remote = stream_->RemoteId();
  ES_ASSIGN_OR_RETURN(DeviceId claimed, DeviceIdFromWire(h.device_id(), "device_id"));
  if (!remote.is_zero() && claimed != remote)
    return PermissionDenied("peer's Hello names device " + claimed.ToString() +
                            " but its certificate proves " + remote.ToString());
  // An owner is its key: the uuid it owns rows under derives from the key
  // it proved, so no Hello can claim another device's rows or pairing.
  const DeviceId key = remote.is_zero() ? claimed : remote;
  if (peer_uuid != OwnerUuidOf(key))
    return PermissionDenied("peer " + h.device_name() + " claims owner " + peer_uuid.ToString() +
                            ", but its key " + key.ToShortString() + " owns " + OwnerUuidOf(key).ToString());
  auto peer = lib.FindDeviceById(key);
  if (!peer.ok() || !peer->trusted)
    return PermissionDenied("device " + key.ToShortString() + " (" + h.device_name() +
                            ") is not paired with this library" +
                            (peer.ok() && peer->revoked ? " (removed)" : ""));
  return OnPeerBound(h);
}

// The peer's Hello checked: the session is ready.
Status Session::OnPeerBound(const wire::Hello& h) {
  ES_ASSIGN_OR_RETURN(Uuid peer_uuid, UuidFromWire(h.device_uuid(), "device_uuid"));
  ES_ASSIGN_OR_RETURN(DeviceInfo bound, shared_.lib->FindDeviceByUuid(peer_uuid));
  shared_.peer_row = bound.id;
  shared_.peer_uuid = peer_uuid;
  shared_.peer_name = bound.name;
  PeerLimiters limits = shared_.host.rate_limits().For(peer_uuid);  // shared by the device's sessions
  flow_->Limit(limits.download);
  shared_.upload_limit = limits.upload;
  ES_RETURN_IF_ERROR(AdoptPeerLimits(h));
  std::vector<std::pair<Checkpoint, std::string>> checkpoints;
  for (const auto& o : h.owners()) {
    ES_ASSIGN_OR_RETURN(Uuid u, UuidFromWire(o.owner(), "owner"));
    PeerHas has{Epoch(o.epoch()), Seq(o.max_seq()), o.name(), o.entry_count(), std::nullopt, std::nullopt};
    if (o.has_checkpoint()) {
      ES_ASSIGN_OR_RETURN(Checkpoint cp, CheckpointFromWire(o.checkpoint()));
      if (cp.owner != u)
        return ProtocolError("OwnerInfo of " + u.ToString() + " carries another owner's checkpoint");
      has.checkpoint = cp;
      checkpoints.emplace_back(cp, o.name());
    }
    shared_.peer_has[u] = std::move(has);
  }
  for (const auto& w : h.watermarks()) {
    ES_ASSIGN_OR_RETURN(Uuid u, UuidFromWire(w.owner(), "owner"));
    PeerHas holds{Epoch(w.epoch()), Seq(w.seq()), w.owner_name(), 0, std::nullopt, std::nullopt};
    if (w.digest().size() == 32) {
      holds.digest.emplace();
      std::memcpy(holds.digest->data(), w.digest().data(), 32);
    }
    shared_.peer_holds[u] = std::move(holds);
  }
  ES_RETURN_IF_ERROR(CompareDigests());
  hello_received_ = true;
  {
    MutexLock lock(mu_);
    snapshot_.peer_name = bound.name;
    snapshot_.peer_uuid = peer_uuid;
    snapshot_.state = SessionState::kSyncing;
  }
  switch (shared_.host.OnPeerReady(this)) {
    case SessionHost::Admission::kAdmitted:
      break;
    case SessionHost::Admission::kDuplicate:
      // Both devices dialed: the other connection is kept (the same choice
      // on both sides), this one ends without an error.
      spdlog::info("{} ({}): keeping the other connection with this device", bound.name, stream_->Describe());
      Teardown(Aborted("duplicate connection with " + bound.name));
      return Status::Ok();
    case SessionHost::Admission::kTooMany:
      return Aborted("already " + std::to_string(SessionHost::kMaxSessionsPerDevice) + " connections with " +
                     bound.name + "; this one refused");
  }
  spdlog::info("connected to {} ({}), {} owners offered", bound.name, stream_->Describe(), h.owners_size());
  // The peer's checkpoints: stored when newer, and each replica we hold
  // checked against them (anti-entropy: one that diverged is dropped and
  // fetched again). Pulls wait for the verdict.
  if (!checkpoints.empty()) {
    checking_checkpoints_ = true;
    shared_.host.writer().AcceptCheckpoints(std::move(checkpoints),
                                            [weak = weak_from_this()](const Result<WriteOutcome>& r) {
                                              auto self = weak.lock();
                                              if (!self || self->ended_.load()) return;
                                              self->checking_checkpoints_ = false;
                                              Status s = r.ok() ? self->puller_->OnVerified(*r) : r.status();
                                              if (s.ok()) s = self->AfterHello();
                                              if (!s.ok()) self->End(std::move(s));
                                            });
    return Status::Ok();
  }
  return AfterHello();
}

// The Hello and the peer's checkpoints handled: pulls and pushes start.
Status Session::AfterHello() {
  for (auto& pr : deferred_paths_)
    ES_RETURN_IF_ERROR(puller_->LoadPath(pr.owner, pr.path, std::move(pr.done)));
  deferred_paths_.clear();
  ES_RETURN_IF_ERROR(puller_->Evaluate());
  for (const auto& [owner, a] : early_advances_) ES_RETURN_IF_ERROR(sender_.OnAdvance(a));
  early_advances_.clear();
  SchedulePump();
  return Status::Ok();
}

Status Session::CompareDigests() {
  Library& lib = *shared_.lib;
  for (const auto& [owner, holds] : shared_.peer_holds) {
    if (!holds.digest) continue;
    auto dev = lib.FindDeviceByUuid(owner);
    if (!dev.ok()) continue;
    std::pair<Epoch, Seq> ours;
    if (dev->is_local) {
      ours = {dev->epoch, dev->max_seq};
    } else {
      ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(dev->id));
      if (!wm) continue;
      ours = {wm->epoch, wm->seq};
    }
    if (ours.first != holds.epoch || ours.second != holds.max_seq || ours.second.value() == 0) continue;
    ES_ASSIGN_OR_RETURN(LtHash mine, lib.digests().Get(dev->id));
    if (mine.checksum() == *holds.digest) continue;
    shared_.counters.divergences++;
    shared_.trust_error = shared_.peer_name + "'s rows of " + dev->name + " differ from ours at seq " +
                          std::to_string(ours.second.value());
    spdlog::warn("{}'s rows of {} differ from ours at the same seq {}: {}", shared_.peer_name, dev->name,
                 ours.second.value(),
                 dev->is_local ? "its replica of this device is wrong; it is checked against our checkpoint"
                               : "the owner's signed checkpoint decides which one is dropped");
  }
  return Status::Ok();
}

// What we send follows what the peer said it takes: a codec it decodes
// (ours when it lists it, else the best it lists, else none), frames no
// larger than its limit, batches no longer than its limit.
Status Session::AdoptPeerLimits(const wire::Hello& h) {
  auto lists = [&](wire::Codec c) {
    return std::find(h.codecs().begin(), h.codecs().end(), c) != h.codecs().end();
  };
  shared_.codec = Codec::kNone;
  if (config_.codec != Codec::kNone && lists(CodecToWire(config_.codec))) {
    shared_.codec = config_.codec;
  } else if (lists(wire::CODEC_ZSTD)) {
    shared_.codec = Codec::kZstd;
  } else if (lists(wire::CODEC_GZIP)) {
    shared_.codec = Codec::kGzip;
  }
  constexpr size_t kMinFrame = 64 << 10;
  if (h.max_frame_bytes() != 0 && h.max_frame_bytes() < kMinFrame)
    return ProtocolError("peer takes frames of at most " + std::to_string(h.max_frame_bytes()) +
                         " bytes; at least " + std::to_string(kMinFrame) + " are needed");
  shared_.peer_max_frame = h.max_frame_bytes() != 0 ? h.max_frame_bytes() : kDefaultMaxFrameBytes;
  uint32_t peer_records = h.max_batch_records() != 0 ? h.max_batch_records() : 1000;
  shared_.batch_records = std::max<uint32_t>(1, std::min(config_.batch_records, peer_records));
  return Status::Ok();
}

}  // namespace entrysync
