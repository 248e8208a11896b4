#include "sync/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "proto/batch.h"
#include "proto/convert.h"

namespace entrysync {
namespace {

constexpr uint32_t kProtocolVersion = 1;
// What a frame waiting for the loop costs besides its payload (the Frame,
// the posted handler): a flood of tiny frames is counted for what it holds.
constexpr size_t kQueuedFrameCost = 256;
// A Pong frame: length, type, a fixed64 nonce field, CRC.
constexpr size_t kPongFrameBytes = kFrameOverhead + 9;
// Pings left unanswered while the stream was full before the peer is cut
// off: a peer that reads pings once per keepalive (5 s), so 64 KiB of them
// (~3,600) would be hours of keepalives; a flood gets there at once.
constexpr size_t kMaxUnansweredPingBytes = 64 << 10;

Clock::time_point At(double seconds) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
}

}  // namespace

const char* SessionStateName(SessionState s) {
  switch (s) {
    case SessionState::kHandshake:
      return "handshake";
    case SessionState::kSyncing:
      return "syncing";
    case SessionState::kCurrent:
      return "current";
    case SessionState::kClosed:
      return "closed";
  }
  return "?";
}

Session::Session(SessionHost& host, std::unique_ptr<ByteStream> stream, SyncExecutor exec, bool outbound)
    : config_(host.config()),
      exec_(std::move(exec)),
      outbound_(outbound),
      stream_(std::move(stream)),
      shared_(host, config_, *this),
      uploads_(shared_),
      sender_(shared_, uploads_),
      tick_(exec_) {
  snapshot_.address = stream_->Describe();
  shared_.send = [this](std::string frame) { Send(std::move(frame)); };
  shared_.pending_write_bytes = [this] { return stream_->PendingWriteBytes(); };
  shared_.publish = [this] { Publish(); };
  shared_.wake = [this] { SchedulePump(); };
  shared_.end = [this](Status why) { End(std::move(why)); };
}

// The stream is destroyed with the session; it runs none of our handlers
// afterwards (ByteStream contract).
Session::~Session() = default;

void Session::Start() {
  // The stream starts on the loop, after Hello: no frame can be handled
  // before Begin (posts from different threads are not ordered).
  Post([](Session& me) {
    ES_RETURN_IF_ERROR(me.Begin());
    me.StartStream();
    return Status::Ok();
  });
}

void Session::StartStream() {
  last_receive_ = Clock::Seconds();
  std::weak_ptr<Session> weak = weak_from_this();
  stream_->Start(
      [weak](std::string_view d) {
        if (auto self = weak.lock()) self->OnData(d);
      },
      [weak](const Status& s) {
        // Frames received before the close were posted first.
        Status why = s.ok() ? Aborted("peer closed the connection") : s;
        if (auto self = weak.lock()) self->Post([why](Session&) { return why; });
      },
      [weak] {
        auto self = weak.lock();
        if (self && self->wants_writable_.exchange(false))
          self->Post([](Session& me) {
            me.SchedulePump();
            return Status::Ok();
          });
      });
}

void Session::Post(std::function<Status(Session&)> fn) {
  if (ended_.load()) return;
  asio::post(exec_, [weak = weak_from_this(), fn = std::move(fn)] {
    auto self = weak.lock();
    if (!self || self->ended_.load()) return;
    Status s = fn(*self);
    if (!s.ok()) self->End(std::move(s));
  });
}

void Session::End(Status why) {
  if (ended_.load()) return;
  if (why.code() != Code::kAborted || close_status().ok())
    spdlog::warn("session with {}: {}", shared_.peer_name.empty() ? stream_->Describe() : shared_.peer_name,
                 why.message());
  Teardown(std::move(why));
}

void Session::Close(Status why) {
  asio::post(exec_, [weak = weak_from_this(), why = std::move(why)] {
    auto self = weak.lock();
    if (!self || self->ended_.load()) return;
    if (!why.ok()) self->stream_->Write(EncodeFrame(ErrorToWire(why)));
    self->Teardown(why.ok() ? Aborted("closed") : why);
  });
}

// Loop: the session is over. Pull callers hear why, the pulls it claimed
// are released, files close, the stream closes; the host reaps it.
void Session::Teardown(Status why) {
  if (ended_.exchange(true)) return;
  {
    MutexLock lock(mu_);
    if (close_status_.ok()) close_status_ = why.ok() ? Aborted("closed") : why;
    why = close_status_;
  }
  stream_->Close();
  tick_.cancel();
  if (flow_) flow_->Stop();
  for (auto& pr : deferred_paths_) pr.done(why);
  deferred_paths_.clear();
  if (puller_) puller_->Abort(why);
  uploads_.Abort();
  sender_.Abort();
  {
    MutexLock lock(mu_);
    snapshot_.state = SessionState::kClosed;
    snapshot_.close_reason = close_status_.message();
    snapshot_.transfers = shared_.transfers.List();
    snapshot_.counters = shared_.counters;
    snapshot_.trust_error = shared_.trust_error;
  }
  closed_ = true;
  shared_.host.OnSessionChanged(this);
}

Status Session::close_status() const {
  MutexLock lock(mu_);
  return close_status_;
}

std::string Session::peer_name() const {
  MutexLock lock(mu_);
  return snapshot_.peer_name;
}

bool Session::BothCurrent() const {
  MutexLock lock(mu_);
  return snapshot_.state == SessionState::kCurrent;
}

bool Session::ready() const {
  MutexLock lock(mu_);
  return snapshot_.state == SessionState::kSyncing || snapshot_.state == SessionState::kCurrent;
}

SessionSnapshot Session::Snapshot() const {
  MutexLock lock(mu_);
  SessionSnapshot s = snapshot_;
  s.wire_sent = stream_->BytesSent();
  s.wire_received = stream_->BytesReceived();
  return s;
}

void Session::Publish() {
  {
    MutexLock lock(mu_);
    snapshot_.transfers = shared_.transfers.List();
    snapshot_.counters = shared_.counters;
    snapshot_.trust_error = shared_.trust_error;
    if (hello_received_ && snapshot_.state != SessionState::kClosed) {
      bool current = shared_.sent_done && shared_.peer_done && puller_->idle();
      snapshot_.state = current ? SessionState::kCurrent : SessionState::kSyncing;
    }
  }
  shared_.host.OnSessionUpdated(this);
}

void Session::NotifyAdvance(const Uuid& owner, Epoch epoch, Seq max_seq, std::optional<Uuid> location) {
  Post([a = Advance{owner, epoch, max_seq, location}](Session& me) {
    if (!me.hello_received_) {
      me.early_advances_[a.owner] = a;  // after our Hello: told once the peer's arrived
      return Status::Ok();
    }
    ES_RETURN_IF_ERROR(me.sender_.OnAdvance(a));
    me.SchedulePump();
    return Status::Ok();
  });
}

void Session::Poke() {
  Post([](Session& me) { return me.hello_received_ ? me.puller_->Evaluate() : Status::Ok(); });
}

void Session::RequestPath(const Uuid& owner, const std::string& path, std::function<void(Status)> done) {
  if (ended_.load()) {
    Status why = close_status();
    done(why.ok() ? Aborted("session closed") : why);
    return;
  }
  auto req = std::make_shared<PathRequest>(PathRequest{owner, path, std::move(done)});
  Post([req](Session& me) {
    if (me.hello_received_) return me.puller_->LoadPath(req->owner, req->path, std::move(req->done));
    me.deferred_paths_.push_back(std::move(*req));  // sent once the peer said hello
    return Status::Ok();
  });
}

void Session::Send(std::string frame) {
  stream_->Write(std::move(frame));
  last_send_ = Clock::Seconds();
  const size_t unread = stream_->PendingWriteBytes();
  if (unread > config_.max_unread_bytes)
    Overrun(
        Aborted("not reading what it is sent, " + std::to_string(unread) + " bytes queued; disconnected"));
}

void Session::Overrun(const Status& why) {
  if (overrun_.exchange(true)) return;
  Post([why](Session&) { return why; });  // before the stream's close handler: this reason is logged
  stream_->Abort(why);
}

bool Session::AnswerPing(const Frame& f) {
  const size_t pending = stream_->PendingWriteBytes();
  if (pending + kPongFrameBytes > config_.max_pending_write_bytes) {
    // The bytes already queued will tell the peer we are alive, once it
    // reads. A peer that keeps pinging meanwhile is not reading.
    unanswered_ping_bytes_ += kPongFrameBytes;
    if (unanswered_ping_bytes_ <= kMaxUnansweredPingBytes) return true;
    Overrun(Aborted("not reading its replies, " + std::to_string(pending) + " bytes queued; disconnected"));
    return false;
  }
  unanswered_ping_bytes_ = 0;
  auto ping = ParseMessage<wire::Ping>(f);
  if (!ping.ok()) return true;
  wire::Pong pong;
  pong.set_nonce(ping->nonce());
  stream_->Write(EncodeFrame(pong));
  return true;
}

// Stream's executor: decode frames; answer pings at once so a loop busy
// applying a batch never lets the peer time out.
void Session::OnData(std::string_view data) {
  if (overrun_.load()) return;
  last_receive_ = Clock::Seconds();
  decoder_.Feed(data);
  for (;;) {
    auto next = decoder_.Next();
    if (!next.ok()) {
      const Status& why = next.status();
      Post([why](Session&) { return why; });
      return;
    }
    if (!next->has_value()) return;
    Frame& f = **next;
    if (f.type == MessageType::kPing) {
      if (!AnswerPing(f)) return;
      continue;
    }
    if (f.type == MessageType::kPong) continue;
    const size_t cost = f.payload.size() + kQueuedFrameCost;
    const size_t waiting = inbox_bytes_.fetch_add(cost) + cost;
    if (waiting > config_.max_inbox_bytes) {
      Overrun(Aborted("sends faster than it is handled, " + std::to_string(waiting) +
                      " bytes of frames waiting; disconnected"));
      return;
    }
    Post([f = std::move(f), cost](Session& me) {
      me.inbox_bytes_.fetch_sub(cost);
      ES_RETURN_IF_ERROR(me.HandleFrame(f));
      me.SchedulePump();
      return Status::Ok();
    });
  }
}

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
void Session::ArmTick() {
  double keepalive = config_.keepalive.count() / 1000.0;
  double idle = config_.idle_timeout.count() / 1000.0;
  double due = std::min(last_send_ + keepalive, last_receive_.load() + idle);
  if (!hello_received_) due = std::min(due, begun_ + config_.hello_timeout.count() / 1000.0);
  tick_.expires_at(At(due));
  tick_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock(); self && !self->ended_.load()) self->OnTick();
  });
}

void Session::OnTick() {
  double now = Clock::Seconds();
  if (!hello_received_ && now - begun_ >= config_.hello_timeout.count() / 1000.0) {
    const auto ms = config_.hello_timeout.count();
    Status why = Aborted("peer sent no Hello within " +
                         (ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms"));
    spdlog::warn("session with {}: {}", stream_->Describe(), why.message());
    Teardown(why);
    return;
  }
  if (now - last_receive_.load() >= config_.idle_timeout.count() / 1000.0) {
    Status why =
        Aborted("peer sent nothing for " + std::to_string(config_.idle_timeout.count() / 1000) + "s");
    spdlog::warn("session with {}: {}", shared_.peer_name.empty() ? stream_->Describe() : shared_.peer_name,
                 why.message());
    Teardown(why);
    return;
  }
  if (now - last_send_ >= config_.keepalive.count() / 1000.0) {
    wire::Ping p;
    p.set_nonce(RandomU64());
    Send(EncodeFrame(p));
  }
  ArmTick();
}

void Session::SchedulePump() {
  if (pump_scheduled_ || ended_.load()) return;
  if (!sender_.busy() && !uploads_.busy()) return;
  pump_scheduled_ = true;
  Post([](Session& me) {
    me.pump_scheduled_ = false;
    return me.Pump();
  });
}

// One batch (or a few chunks) per transfer per call, so that frames and
// other sessions interleave with a long transfer; posted again while there
// is more to send and credit for it. At the high-water mark it waits for
// the stream's writable callback instead.
Status Session::Pump() {
  if (shared_.WriteBlocked()) {
    wants_writable_ = true;
    // The stream may have drained between the check and the flag.
    if (!shared_.WriteBlocked() && wants_writable_.exchange(false)) SchedulePump();
    return Status::Ok();
  }
  bool did_work = false;
  ES_RETURN_IF_ERROR(sender_.Pump(&did_work));
  ES_RETURN_IF_ERROR(uploads_.Pump(&did_work));
  if (did_work) SchedulePump();
  return Status::Ok();
}

Status Session::HandleFrame(const Frame& f) {
  if (!hello_received_ && f.type != MessageType::kHello && f.type != MessageType::kError)
    return ProtocolError("expected Hello first, got " + MessageTypeName(f.type));
  switch (f.type) {
    case MessageType::kHello:
      return OnHello(f);
    case MessageType::kStateRequest:
      return sender_.OnStateRequest(f);
    case MessageType::kStateBatch:
      return puller_->OnStateBatch(f);
    case MessageType::kStateChange:
      return puller_->OnStateChange(f);
    case MessageType::kCredit:
      return OnCredit(f);
    case MessageType::kCurrent:
      return OnCurrent(f);
    case MessageType::kBulkIndexComplete:
      return puller_->OnBulkNotice(f);
    case MessageType::kSnapshotOffer:
      return puller_->OnSnapshotOffer(f);
    case MessageType::kSnapshotRequest:
      return uploads_.OnSnapshotRequest(f);
    case MessageType::kSnapshotChunk:
      return puller_->OnSnapshotChunk(f);
    case MessageType::kError:
      return OnError(f);
    default:
      return ProtocolError(MessageTypeName(f.type) + " is not supported by this version");
  }
}

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
  if (!shared_.host.OnPeerReady(this)) {
    // Both devices dialed: the other connection is kept (the same choice on
    // both sides), this one ends without an error.
    spdlog::info("{} ({}): keeping the other connection with this device", bound.name, stream_->Describe());
    Teardown(Aborted("duplicate connection with " + bound.name));
    return Status::Ok();
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

Status Session::OnCredit(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::Credit>(f));
  uploads_.OnCredit(c.transfer_id(), c.batches());
  return sender_.OnCredit(c);
}

Status Session::OnCurrent(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::Current>(f));
  if (!c.owner().empty()) return puller_->OnCurrent(c);
  shared_.peer_done = true;  // no owner: the peer pulled everything it wanted
  Publish();
  return Status::Ok();
}

Status Session::OnError(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto e, ParseMessage<wire::Error>(f));
  ES_ASSIGN_OR_RETURN(bool ours, puller_->OnRequestFailed(e));
  if (!ours) return Aborted("peer reported: " + e.message());
  return Status::Ok();  // one request failed; the connection goes on
}

}  // namespace entrysync
