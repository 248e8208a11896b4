#include "sync/session.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "proto/batch.h"
#include "proto/compress.h"
#include "proto/convert.h"
#include "snapshot/snapshot.h"

namespace entrysync {
namespace {

constexpr uint32_t kProtocolVersion = 1;

double SteadyNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SteadyMs() { return static_cast<int64_t>(SteadyNow() * 1000); }

// Largest snapshot a receiver accepts an offer of.
constexpr uint64_t kMaxSnapshotBytes = uint64_t{1} << 40;

std::string SnapshotDir(const std::string& library_dir) { return library_dir + "/snapshots"; }

std::string ReadSmallFile(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

wire::Strategy StrategyToWire(Strategy s) { return static_cast<wire::Strategy>(s); }
Strategy StrategyFromWire(int s) { return s >= 0 && s <= 4 ? static_cast<Strategy>(s) : Strategy::kAuto; }

}  // namespace

double TransferProgress::Rate(double now) const {
  double end = finished > 0 ? finished : now;
  return end > started ? static_cast<double>(done) / (end - started) : 0;
}

double TransferProgress::Eta(double now) const {
  double r = Rate(now);
  if (finished > 0) return 0;
  if (r <= 0 || total == 0) return -1;
  return done >= total ? 0 : static_cast<double>(total - done) / r;
}

Session::Session(SessionHost& host, std::unique_ptr<ByteStream> stream, SyncExecutor exec, bool outbound)
    : host_(host),
      config_(host.config()),
      exec_(std::move(exec)),
      outbound_(outbound),
      stream_(std::move(stream)),
      tick_(exec_),
      rate_timer_(exec_) {
  snapshot_.address = stream_->Describe();
  snapshot_.state = "handshake";
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
      [weak](Status s) {
        // Frames received before the close were posted first.
        Status why = s.ok() ? Aborted("peer closed the connection") : s;
        if (auto self = weak.lock()) self->Post([why](Session& me) { return why; });
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
    if (!s.ok()) {
      if (s.code() != Code::kAborted || self->close_status().ok())
        spdlog::warn(
            "session with {}: {}",
            self->snapshot_.peer_name.empty() ? self->stream_->Describe() : self->snapshot_.peer_name,
            s.message());
      self->Teardown(s);
    }
  });
}

void Session::Close(Status why) {
  asio::post(exec_, [weak = weak_from_this(), why] {
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
    std::lock_guard<std::mutex> lock(mu_);
    if (close_status_.ok()) close_status_ = why.ok() ? Aborted("closed") : why;
    why = close_status_;
  }
  stream_->Close();
  tick_.cancel();
  rate_timer_.cancel();
  for (auto& pr : deferred_paths_) pr.done(why);
  deferred_paths_.clear();
  for (auto& [id, p] : pulls_) {
    if (p.done) p.done(why);
    if (!p.folder_only) host_.ReleasePull(p.owner, this);
    if (p.download) CloseFd(p.download->fd);  // the .part stays: a later offer resumes it
  }
  for (auto& [id, sv] : snap_serves_) CloseFd(sv.fd);
  pulls_.clear();
  snap_serves_.clear();
  serves_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.state = "closed";
    snapshot_.close_reason = close_status_.message();
    snapshot_.transfers = progress_;
    snapshot_.counters = counters_;
  }
  closed_ = true;
  host_.OnSessionChanged(this);
}

Status Session::close_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return close_status_;
}

std::string Session::peer_name() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_.peer_name;
}

bool Session::BothCurrent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_.state == "current";
}

SessionSnapshot Session::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  SessionSnapshot s = snapshot_;
  s.wire_sent = stream_->BytesSent();
  s.wire_received = stream_->BytesReceived();
  return s;
}

void Session::PublishSnapshot() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.transfers = progress_;
    snapshot_.counters = counters_;
  }
  host_.OnSessionUpdated(this);
}

void Session::NotifyAdvance(const Uuid& owner, Epoch epoch, Seq max_seq, std::optional<Uuid> location) {
  Post([a = Advance{owner, epoch, max_seq, location}](Session& me) {
    if (!me.hello_received_) return Status::Ok();
    ES_RETURN_IF_ERROR(me.OnAdvance(a));
    me.SchedulePump();
    return Status::Ok();
  });
}

void Session::Poke() {
  Post([](Session& me) { return me.hello_received_ ? me.EvaluatePulls() : Status::Ok(); });
}

void Session::RequestPath(const Uuid& owner, const std::string& path, std::function<void(Status)> done) {
  if (ended_.load()) {
    Status why = close_status();
    done(why.ok() ? Aborted("session closed") : why);
    return;
  }
  auto req = std::make_shared<PathRequest>(PathRequest{owner, path, std::move(done)});
  Post([req](Session& me) {
    if (me.hello_received_) return me.OnPathRequest(*req);
    me.deferred_paths_.push_back(std::move(*req));  // sent once the peer said hello
    return Status::Ok();
  });
}

bool Session::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_.state == "syncing" || snapshot_.state == "current";
}

void Session::Send(std::string frame) {
  stream_->Write(std::move(frame));
  last_send_ = Now();
}

double Session::Now() const { return Clock::Seconds(); }

// Stream's executor: decode frames; answer pings at once so a loop busy
// applying a batch never lets the peer time out.
void Session::OnData(std::string_view data) {
  last_receive_ = Clock::Seconds();
  decoder_.Feed(data);
  for (;;) {
    auto next = decoder_.Next();
    if (!next.ok()) {
      Status why = next.status();
      Post([why](Session&) { return why; });
      return;
    }
    if (!next->has_value()) return;
    Frame& f = **next;
    if (f.type == MessageType::kPing) {
      auto ping = ParseMessage<wire::Ping>(f);
      if (ping.ok()) {
        wire::Pong pong;
        pong.set_nonce(ping->nonce());
        stream_->Write(EncodeFrame(pong));
      }
      continue;
    }
    if (f.type == MessageType::kPong) continue;
    Post([f = std::move(f)](Session& me) {
      ES_RETURN_IF_ERROR(me.HandleFrame(f));
      me.SchedulePump();
      return Status::Ok();
    });
  }
}

// Loop: the first event of a session. Sends Hello: what we hold of every
// owner, and what we can serve.
Status Session::Begin() {
  lib_ = &host_.library();
  ES_ASSIGN_OR_RETURN(Replica r, Replica::Make(*lib_));
  replica_.emplace(std::move(r));
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib_->LocalDevice());
  my_uuid_ = me.uuid;
  wire::Hello h;
  h.set_protocol_version(kProtocolVersion);
  h.set_library_id(UuidToWire(lib_->library_id()));
  if (me.device_id) h.set_device_id(DeviceIdToWire(*me.device_id));
  h.set_device_uuid(UuidToWire(me.uuid));
  h.set_device_name(me.name);
  h.add_codecs(wire::CODEC_ZSTD);
  h.add_codecs(wire::CODEC_GZIP);
  h.set_max_batch_records(BatchLimits{}.max_records);
  ES_ASSIGN_OR_RETURN(auto devices, lib_->ListDevices());
  for (const auto& d : devices) {
    auto served = Servable(d.id);
    if (!served.ok()) return served.status();
    if (d.is_local || served->second.value() > 0) {
      wire::OwnerInfo* o = h.add_owners();
      o->set_owner(UuidToWire(d.uuid));
      o->set_name(d.name);
      o->set_epoch(served->first.value());
      o->set_max_seq(served->second.value());
    }
    if (!d.is_local) {
      ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(d.id));
      if (wm) {
        wire::Watermark* w = h.add_watermarks();
        w->set_owner(UuidToWire(d.uuid));
        w->set_owner_name(d.name);
        w->set_epoch(wm->epoch.value());
        w->set_seq(wm->seq.value());
      }
    }
  }
  Send(EncodeFrame(h));
  last_receive_ = Clock::Seconds();
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
  tick_.expires_at(
      Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(due))));
  tick_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock(); self && !self->ended_.load()) self->OnTick();
  });
}

void Session::OnTick() {
  double now = Now();
  if (now - last_receive_.load() >= config_.idle_timeout.count() / 1000.0) {
    Status why =
        Aborted("peer sent nothing for " + std::to_string(config_.idle_timeout.count() / 1000) + "s");
    spdlog::warn("session with {}: {}",
                 snapshot_.peer_name.empty() ? stream_->Describe() : snapshot_.peer_name, why.message());
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
  if (serves_.empty() && snap_serves_.empty()) return;
  pump_scheduled_ = true;
  Post([](Session& me) {
    me.pump_scheduled_ = false;
    return me.Pump();
  });
}

// One batch (or chunk) per transfer per call, so that frames and other
// sessions interleave with a long transfer; posted again while there is
// more to send and credit for it. At the high-water mark it waits for the
// stream's writable callback instead.
Status Session::Pump() {
  if (stream_->PendingWriteBytes() >= config_.max_pending_write_bytes) {
    wants_writable_ = true;
    // The stream may have drained between the check and the flag.
    if (stream_->PendingWriteBytes() < config_.max_pending_write_bytes && wants_writable_.exchange(false))
      SchedulePump();
    return Status::Ok();
  }
  bool did_work = false;
  ES_RETURN_IF_ERROR(PumpServes(&did_work));
  ES_RETURN_IF_ERROR(PumpSnapshots(&did_work));
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
      return OnStateRequest(f);
    case MessageType::kStateBatch:
      return OnStateBatch(f);
    case MessageType::kStateChange:
      return OnStateChange(f);
    case MessageType::kCredit:
      return OnCredit(f);
    case MessageType::kCurrent:
      return OnCurrent(f);
    case MessageType::kBulkIndexComplete:
      return OnBulkNotice(f);
    case MessageType::kSnapshotOffer:
      return OnSnapshotOffer(f);
    case MessageType::kSnapshotRequest:
      return OnSnapshotRequest(f);
    case MessageType::kSnapshotChunk:
      return OnSnapshotChunk(f);
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
  ES_ASSIGN_OR_RETURN(Uuid lib_id, UuidFromWire(h.library_id(), "library_id"));
  if (lib_id != lib_->library_id())
    return PermissionDenied("peer " + h.device_name() + " belongs to library " + lib_id.ToString() +
                            ", not ours (" + lib_->library_id().ToString() + ")");
  ES_ASSIGN_OR_RETURN(Uuid peer_uuid, UuidFromWire(h.device_uuid(), "device_uuid"));
  if (peer_uuid == my_uuid_) return PermissionDenied("peer claims to be this very device");
  // The peer must be paired: found by the id it proved on the transport.
  DeviceId remote = stream_->RemoteId();
  ES_ASSIGN_OR_RETURN(DeviceId claimed, DeviceIdFromWire(h.device_id(), "device_id"));
  if (!remote.is_zero() && claimed != remote)
    return PermissionDenied("peer's Hello names device " + claimed.ToString() +
                            " but its certificate proves " + remote.ToString());
  auto peer = lib_->FindDeviceById(claimed);
  if (!peer.ok() || !peer->trusted)
    return PermissionDenied("device " + claimed.ToString().substr(0, 16) + "… (" + h.device_name() +
                            ") is not paired with this library");
  ES_RETURN_IF_ERROR(lib_->BindPeerUuid(peer->id, peer_uuid, h.device_name()));
  ES_ASSIGN_OR_RETURN(DeviceInfo bound, lib_->FindDeviceByUuid(peer_uuid));
  peer_row_ = bound.id;
  peer_uuid_ = peer_uuid;
  hello_received_ = true;
  for (const auto& o : h.owners()) {
    ES_ASSIGN_OR_RETURN(Uuid u, UuidFromWire(o.owner(), "owner"));
    peer_has_[u] = {Epoch(o.epoch()), Seq(o.max_seq()), o.name()};
  }
  for (const auto& w : h.watermarks()) {
    ES_ASSIGN_OR_RETURN(Uuid u, UuidFromWire(w.owner(), "owner"));
    peer_holds_[u] = {Epoch(w.epoch()), Seq(w.seq()), w.owner_name()};
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.peer_name = bound.name;
    snapshot_.peer_uuid = peer_uuid;
    snapshot_.state = "syncing";
  }
  if (!host_.OnPeerReady(this)) {
    // Both devices dialed: the other connection is kept (the same choice on
    // both sides), this one ends without an error.
    spdlog::info("{} ({}): keeping the other connection with this device", bound.name, stream_->Describe());
    Teardown(Aborted("duplicate connection with " + bound.name));
    return Status::Ok();
  }
  spdlog::info("connected to {} ({}), {} owners offered", bound.name, stream_->Describe(), h.owners_size());
  for (auto& pr : deferred_paths_) ES_RETURN_IF_ERROR(OnPathRequest(pr));
  deferred_paths_.clear();
  return EvaluatePulls();
}

Result<DeviceRowId> Session::OwnerRow(const Uuid& owner, const std::string& name) {
  return lib_->EnsureDevice(owner, name.empty() ? owner.ToString().substr(0, 8) : name);
}

Result<std::pair<Epoch, Seq>> Session::Servable(DeviceRowId owner) {
  if (owner == lib_->local_device()) {
    ES_ASSIGN_OR_RETURN(DeviceInfo me, lib_->LocalDevice());
    return std::make_pair(me.epoch, me.max_seq);
  }
  ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(owner));
  if (!wm) return std::make_pair(Epoch(0), Seq(0));
  return std::make_pair(wm->epoch, wm->seq);
}

Result<uint64_t> Session::CountRange(DeviceRowId owner, Seq after, Seq upto) {
  ES_ASSIGN_OR_RETURN(
      store::Stmt st,
      lib_->db().Prepare("SELECT count(*) FROM entry WHERE owner = ? AND seq > ? AND seq <= ?"));
  st.Bind(1, owner.value()).Bind(2, after.value()).Bind(3, upto.value());
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.Int(0)) : 0;
}

// Pulls every owner the peer can serve and we lack, unless another session
// already pulls it.
Status Session::EvaluatePulls() {
  for (const auto& [owner, has] : peer_has_) {
    if (owner == my_uuid_) continue;
    bool pulling = false;
    for (const auto& [id, p] : pulls_) pulling |= (p.owner == owner && !p.folder_only);
    if (pulling) continue;
    ES_ASSIGN_OR_RETURN(DeviceRowId row, OwnerRow(owner, has.name));
    ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(row));
    bool same_epoch = wm && wm->epoch == has.epoch;
    if (same_epoch && wm->seq >= has.max_seq) continue;
    if (!wm && has.max_seq.value() == 0) continue;  // nothing there yet
    if (!config_.auto_fetch) continue;              // lazy: only what `ls` asks for
    if (RateDue() > Now()) {
      next_evaluate_ = RateDue();  // over the rate limit: ask later
      ArmRateTimer();
      break;
    }
    if (!host_.ClaimPull(owner, this)) continue;
    if (fetch_started_ == 0) fetch_started_ = Now();
    wire::StateRequest r;
    uint64_t id = next_id_++;
    r.set_request_id(id);
    r.set_owner(UuidToWire(owner));
    r.set_epoch(wm ? wm->epoch.value() : 0);
    r.set_since_seq(same_epoch ? wm->seq.value() : 0);
    r.set_max_batches(InitialCredit());
    Strategy ask = config_.forced;
    if (snapshot_refused_.count(owner) && (ask == Strategy::kAuto || ask == Strategy::kSnapshot))
      ask = Strategy::kBatch;  // this peer's snapshot failed here: take rows instead
    if (ask == Strategy::kSnapshot && same_epoch && wm->seq.value() > 0)
      ask = Strategy::kAuto;  // a snapshot replaces a whole replica; deltas on top of one are rows
    r.set_strategy(StrategyToWire(ask));
    // Bulk: pull at our own pace, a page at a time (forced, or a massive
    // delta on top of what we hold).
    uint64_t missing = static_cast<uint64_t>(std::max<int64_t>(0, has.max_seq.value() - r.since_seq()));
    bool paged = ChoosePull(config_, missing, same_epoch && wm->seq.value() > 0) == Strategy::kBulk;
    if (paged) r.set_max_records(config_.bulk_page_records);
    Send(EncodeFrame(r));
    TransferProgress p;
    p.id = id;
    p.pulling = true;
    p.owner = owner;
    p.owner_name = has.name;
    p.strategy = paged ? Strategy::kBulk : ask == Strategy::kAuto ? Strategy::kBatch : ask;
    p.started = Now();
    progress_.push_back(p);
    pulls_[id] = Pull{id, owner, row, false, progress_.size() - 1, {}, std::nullopt};
    sent_done_ = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      snapshot_.state = "syncing";
    }
    spdlog::info("pulling {} from {}: since seq {} (they have {})", has.name, snapshot_.peer_name,
                 r.since_seq(), has.max_seq.value());
  }
  MaybeSendDone();
  return Status::Ok();
}

void Session::MaybeSendDone() {
  if (!pulls_.empty() || sent_done_ || next_evaluate_ > 0) return;
  wire::Current done;  // no owner: "I pulled everything I wanted from you"
  Send(EncodeFrame(done));
  sent_done_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if (peer_done_) snapshot_.state = "current";
}

Status Session::OnPathRequest(PathRequest& pr) {
  ES_ASSIGN_OR_RETURN(DeviceRowId row, OwnerRow(pr.owner, ""));
  ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(row));
  wire::StateRequest r;
  uint64_t id = next_id_++;
  r.set_request_id(id);
  r.set_owner(UuidToWire(pr.owner));
  r.set_epoch(wm ? wm->epoch.value() : 0);
  r.set_folder_path(pr.path);
  r.set_max_batches(InitialCredit());
  Send(EncodeFrame(r));
  TransferProgress p;
  p.id = id;
  p.owner = pr.owner;
  p.owner_name = "on-demand " + pr.path;
  p.started = Now();
  progress_.push_back(p);
  pulls_[id] = Pull{id, pr.owner, row, true, progress_.size() - 1, std::move(pr.done), std::nullopt};
  sent_done_ = false;
  return Status::Ok();
}

Status Session::FailRequest(uint64_t request_id, const Status& why) {
  Send(EncodeFrame(ErrorToWire(why, request_id)));
  return Status::Ok();
}

Status Session::OnError(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto e, ParseMessage<wire::Error>(f));
  auto it = pulls_.find(e.request_id());
  if (e.request_id() == 0 || it == pulls_.end()) return Aborted("peer reported: " + e.message());
  // One request failed; the connection goes on.
  Status why = e.code() == wire::ERROR_NOT_FOUND ? NotFound(e.message()) : Aborted(e.message());
  if (it->second.done) it->second.done(why);
  if (!it->second.folder_only) host_.ReleasePull(it->second.owner, this);
  TransferProgress& p = progress_[it->second.progress_index];
  p.finished = Now();
  // A snapshot the peer could not export or stream (asked for, or chosen by
  // the peer, which then fails the request as INTERNAL): retry once as rows.
  bool was_snapshot = !it->second.folder_only && !snapshot_refused_.count(it->second.owner) &&
                      (p.strategy == Strategy::kSnapshot || e.code() == wire::ERROR_INTERNAL);
  if (it->second.download) CloseFd(it->second.download->fd);  // the .part stays for a later offer
  Uuid owner = it->second.owner;
  pulls_.erase(it);
  if (was_snapshot) {
    spdlog::warn("{} could not send a snapshot of {}: {}; pulling its rows instead", snapshot_.peer_name,
                 p.owner_name, e.message());
    snapshot_refused_.insert(owner);
    return EvaluatePulls();
  }
  MaybeSendDone();
  return Status::Ok();
}

// ---- serving ----

Status Session::OnStateRequest(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto r, ParseMessage<wire::StateRequest>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(r.owner(), "owner"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    peer_done_ = false;  // the peer pulls again; it says "done" when finished
    snapshot_.state = "syncing";
  }
  auto dev = lib_->FindDeviceByUuid(owner);
  if (!dev.ok()) {
    return FailRequest(r.request_id(), NotFound("this device holds nothing of owner " + owner.ToString()));
  }
  ES_ASSIGN_OR_RETURN(auto served, Servable(dev->id));
  Serve s;
  s.id = r.request_id();
  s.owner = owner;
  s.owner_row = dev->id;
  s.epoch = served.first;
  s.since = Epoch(r.epoch()) == served.first ? Seq(r.since_seq()) : Seq(0);
  s.cursor = s.since;
  s.upto = served.second;
  if (!r.folder_path().empty()) return ServePath(r, owner, dev->id, served.first);
  if (r.max_records() > 0) {
    // A page: stop at the max_records-th row after `since`.
    ES_ASSIGN_OR_RETURN(
        store::Stmt st,
        lib_->db().Prepare(
            "SELECT seq FROM entry WHERE owner = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT 1 OFFSET ?"));
    st.Bind(1, s.owner_row.value()).Bind(2, s.since.value()).Bind(3, s.upto.value());
    st.Bind(4, static_cast<int64_t>(r.max_records()) - 1);
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) s.upto = Seq(st.Int(0));
  }
  ES_ASSIGN_OR_RETURN(s.total, CountRange(s.owner_row, s.since, s.upto));
  Strategy forced = StrategyFromWire(r.strategy());
  SyncConfig cfg = config_;
  cfg.forced = forced;
  s.strategy = ChooseStrategy(cfg, s.total, r.epoch() == 0 && s.since.value() == 0);
  if (s.strategy == Strategy::kSnapshot) {
    if (s.total > 0 || s.since.value() == 0) return OfferSnapshot(s, dev->name);
    s.strategy = Strategy::kChange;  // nothing to send: just Current
  }
  s.credit = r.max_batches() > 0 ? r.max_batches() : 1;
  s.total_batches = static_cast<uint32_t>((s.total + config_.batch_records - 1) / config_.batch_records);
  TransferProgress p;
  p.id = s.id;
  p.pulling = false;
  p.owner = owner;
  p.owner_name = dev->name;
  p.strategy = s.strategy;
  p.total = s.total;
  p.started = Now();
  progress_.push_back(p);
  s.progress_index = progress_.size() - 1;
  spdlog::info("serving {} rows of {} to {} as {} ({})", s.total, dev->name, snapshot_.peer_name,
               StrategyName(s.strategy),
               forced != Strategy::kAuto ? std::string("forced by the peer: ") + StrategyName(forced)
               : s.strategy == Strategy::kChange
                   ? "at most " + std::to_string(config_.change_threshold) + " rows"
                   : "more than " + std::to_string(config_.change_threshold) + " rows");
  serves_[s.id] = s;
  return Status::Ok();
}

// On-demand: the entries along an absolute path of the owner's device and
// the live children of the folder it names, as one small transfer that
// covers no seq range.
Status Session::ServePath(const wire::StateRequest& r, const Uuid& owner, DeviceRowId owner_row,
                          Epoch epoch) {
  std::string path = r.folder_path();
  if (path.size() > 1 && path.back() == '/') path.pop_back();
  auto fail = [&](const std::string& why) { return FailRequest(r.request_id(), NotFound(why)); };
  ES_ASSIGN_OR_RETURN(auto locations, lib_->ListLocations(owner_row));
  const LocationInfo* best = nullptr;
  for (const auto& l : locations) {
    const std::string& root = l.record.root_path;
    bool inside = path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                                   (path[root.size()] == '/' || root == "/"));
    if (inside && (!best || root.size() > best->record.root_path.size())) best = &l;
  }
  if (!best) return fail(path + " is not inside any location of that device");
  auto root = lib_->LocationRoot(best->id);
  if (!root.ok()) return fail(path + " is not indexed on that device");
  std::vector<EntryRecord> rows{*root};
  std::string rest = path.substr(best->record.root_path.size());
  size_t i = 0;
  while (i < rest.size()) {
    size_t j = rest.find('/', i);
    if (j == std::string::npos) j = rest.size();
    std::string part = rest.substr(i, j - i);
    i = j + 1;
    if (part.empty()) continue;
    ES_ASSIGN_OR_RETURN(auto kids, lib_->ListChildren(rows.back().uuid));
    auto hit = std::find_if(kids.begin(), kids.end(), [&](const EntryRecord& e) { return e.name == part; });
    if (hit == kids.end()) return fail(path + ": no such entry on that device");
    rows.push_back(std::move(*hit));
  }
  size_t chain = rows.size();
  ES_ASSIGN_OR_RETURN(auto kids, lib_->ListChildren(rows.back().uuid));
  for (auto& k : kids) rows.push_back(std::move(k));
  Serve s;
  s.id = r.request_id();
  s.owner = owner;
  s.owner_row = owner_row;
  s.epoch = epoch;
  s.since = Seq(-1);
  ES_RETURN_IF_ERROR(SendLocations(s));
  uint32_t total_batches =
      static_cast<uint32_t>((rows.size() + config_.batch_records - 1) / config_.batch_records);
  for (size_t k = 0; k < rows.size(); k += config_.batch_records) {
    size_t n = std::min<size_t>(config_.batch_records, rows.size() - k);
    BatchHeader hdr{
        owner,         epoch,       s.id,          static_cast<uint32_t>(k / config_.batch_records),
        total_batches, rows.size(), config_.codec, {}};
    ES_ASSIGN_OR_RETURN(wire::StateBatch b, BuildEntryBatch(hdr, std::span(rows).subspan(k, n)));
    b.set_from_seq(-1);
    Send(EncodeFrame(b));
    counters_.batches_sent++;
    counters_.rows_sent += n;
  }
  wire::Current c;
  c.set_owner(UuidToWire(owner));
  c.set_epoch(epoch.value());
  c.set_from_seq(-1);
  c.set_transfer_id(s.id);
  Send(EncodeFrame(c));
  spdlog::info("served {} ({} entries along the path, {} children) to {} on demand", path, chain,
               rows.size() - chain, snapshot_.peer_name);
  return Status::Ok();
}

Status Session::SendLocations(const Serve& s) {
  ES_ASSIGN_OR_RETURN(auto locs, lib_->ListLocations(s.owner_row));
  std::vector<LocationRecord> recs;
  for (auto& l : locs) recs.push_back(l.record);
  BatchHeader hdr{s.owner, s.epoch, s.id, 0, 0, recs.size(), Codec::kNone, {}};
  ES_ASSIGN_OR_RETURN(wire::StateBatch b, BuildLocationBatch(hdr, recs));
  b.set_from_seq(s.since.value());
  Send(EncodeFrame(b));
  return Status::Ok();
}

Status Session::PumpServes(bool* did_work) {
  for (auto it = serves_.begin(); it != serves_.end();) {
    Serve& s = it->second;
    bool finished = false;
    if (stream_->PendingWriteBytes() < config_.max_pending_write_bytes) {
      ES_RETURN_IF_ERROR(PumpOne(s, did_work));
      finished = s.cursor == s.upto && s.locations_sent && progress_[s.progress_index].finished > 0;
    }
    it = finished ? serves_.erase(it) : std::next(it);
  }
  return Status::Ok();
}

Status Session::PumpOne(Serve& s, bool* did_work) {
  if (!s.locations_sent) {
    ES_RETURN_IF_ERROR(SendLocations(s));
    s.locations_sent = true;
    *did_work = true;
  }
  TransferProgress& p = progress_[s.progress_index];
  if (s.strategy == Strategy::kBatch && s.credit == 0 && s.cursor < s.upto) return Status::Ok();
  if (s.cursor < s.upto) {
    std::vector<EntryRecord> rows;
    rows.reserve(config_.batch_records);
    ES_RETURN_IF_ERROR(
        lib_->ScanOwnerEntries(s.owner_row, s.cursor, s.upto, config_.batch_records, [&](EntryRecord&& e) {
          rows.push_back(std::move(e));
          return true;
        }));
    Seq from = s.cursor;
    s.cursor = rows.size() < config_.batch_records ? s.upto : rows.back().seq;
    *did_work = true;
    if (s.strategy == Strategy::kBatch) {
      if (!rows.empty()) {
        BatchHeader hdr{s.owner, s.epoch, s.id, s.batch_index++, s.total_batches, s.total, config_.codec, {}};
        ES_ASSIGN_OR_RETURN(wire::StateBatch b, BuildEntryBatch(hdr, rows));
        b.set_from_seq(from.value());
        std::string frame = EncodeFrame(b);
        p.bytes += frame.size();
        Send(std::move(frame));
        s.credit--;
        counters_.batches_sent++;
      }
    } else {
      for (const EntryRecord& e : rows) {
        wire::StateChange c;
        c.set_owner(UuidToWire(s.owner));
        c.set_epoch(s.epoch.value());
        EntryToWire(e, c.mutable_entry());
        std::string frame = EncodeFrame(c);
        p.bytes += frame.size();
        Send(std::move(frame));
      }
      counters_.changes_sent += rows.size();
    }
    counters_.rows_sent += rows.size();
    p.done += rows.size();
  }
  if (s.cursor >= s.upto && p.finished == 0) {
    wire::Current c;
    c.set_owner(UuidToWire(s.owner));
    c.set_epoch(s.epoch.value());
    c.set_from_seq(s.since.value());
    c.set_seq(s.upto.value());
    c.set_transfer_id(s.id);
    Send(EncodeFrame(c));
    p.finished = Now();
    peer_holds_[s.owner] = {s.epoch, s.upto, p.owner_name};
    spdlog::info("served {} rows of {} to {} in {:.2f}s", p.done, p.owner_name, snapshot_.peer_name,
                 p.finished - p.started);
    // Changes committed while this transfer ran were not announced (OnAdvance
    // leaves an owner with a running transfer alone): announce them now,
    // once this serve is gone.
    ES_ASSIGN_OR_RETURN(auto now, Servable(s.owner_row));
    if (now.first == s.epoch && now.second > s.upto)
      NotifyAdvance(s.owner, s.epoch, now.second, std::nullopt);
  }
  PublishSnapshot();
  return Status::Ok();
}

Status Session::OnCredit(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::Credit>(f));
  auto it = serves_.find(c.transfer_id());
  if (it != serves_.end()) it->second.credit += c.batches();
  auto sit = snap_serves_.find(c.transfer_id());
  if (sit != snap_serves_.end()) sit->second.credit += c.batches();
  if (c.has_ack() && !c.ack().owner().empty()) {
    ES_ASSIGN_OR_RETURN(Uuid o, UuidFromWire(c.ack().owner(), "owner"));
    peer_holds_[o] = {Epoch(c.ack().epoch()), Seq(c.ack().seq()), peer_holds_[o].name};
  }
  return Status::Ok();
}

// Live changes: push a few rows to a peer that is current, else announce.
Status Session::OnAdvance(const Advance& a) {
  if (a.owner == peer_uuid_) return Status::Ok();
  ES_ASSIGN_OR_RETURN(DeviceInfo dev, lib_->FindDeviceByUuid(a.owner));
  for (const auto& [id, s] : serves_)
    if (s.owner == a.owner) return Status::Ok();  // the running transfer's Current will tell
  auto holds = peer_holds_.find(a.owner);
  bool current = holds != peer_holds_.end() && holds->second.epoch == a.epoch;
  Seq from = current ? holds->second.max_seq : Seq(0);
  if (current && from >= a.max_seq) return Status::Ok();
  ES_ASSIGN_OR_RETURN(uint64_t delta, CountRange(dev.id, from, a.max_seq));
  if (current && config_.forced == Strategy::kAuto && delta <= config_.change_threshold) {
    Serve s;
    s.id = 0;
    s.owner = a.owner;
    s.owner_row = dev.id;
    s.epoch = a.epoch;
    s.since = s.cursor = from;
    s.upto = a.max_seq;
    s.strategy = Strategy::kChange;
    ES_ASSIGN_OR_RETURN(auto locs, lib_->ListLocations(dev.id));
    for (const auto& l : locs)
      if (l.record.seq > from) {
        ES_RETURN_IF_ERROR(SendLocations(s));
        break;
      }
    std::vector<EntryRecord> rows;
    ES_RETURN_IF_ERROR(lib_->ScanOwnerEntries(dev.id, from, a.max_seq, 0, [&](EntryRecord&& e) {
      rows.push_back(std::move(e));
      return true;
    }));
    for (const EntryRecord& e : rows) {
      wire::StateChange c;
      c.set_owner(UuidToWire(a.owner));
      c.set_epoch(a.epoch.value());
      EntryToWire(e, c.mutable_entry());
      Send(EncodeFrame(c));
    }
    wire::Current c;
    c.set_owner(UuidToWire(a.owner));
    c.set_epoch(a.epoch.value());
    c.set_from_seq(from.value());
    c.set_seq(a.max_seq.value());
    Send(EncodeFrame(c));
    counters_.changes_sent += rows.size();
    counters_.rows_sent += rows.size();
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
  Send(EncodeFrame(n));
  counters_.notices_sent++;
  return Status::Ok();
}

// ---- receiving ----

Status Session::EnsureEpoch(DeviceRowId owner, Epoch epoch, Seq from) {
  ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(owner));
  if (wm && wm->epoch == epoch) return Status::Ok();
  if (from.value() != 0)
    return ProtocolError("rows of a new epoch must start from seq 0, got " + std::to_string(from.value()));
  if (wm) spdlog::info("owner's index epoch changed: dropping its rows and resyncing from zero");
  return replica_->ResetOwner(owner, epoch);
}

Status Session::OnStateBatch(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto b, ParseMessage<wire::StateBatch>(f));
  if (b.transfer_id() == 0 && b.model() == wire::MODEL_LOCATION) {
    // A live push's locations (see OnAdvance): applied like a StateChange.
    ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(b.owner(), "owner"));
    ES_ASSIGN_OR_RETURN(auto locs, OpenLocationBatch(b));
    ES_ASSIGN_OR_RETURN(DeviceRowId row, OwnerRow(owner, ""));
    ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(row));
    if (!wm || wm->epoch != Epoch(b.epoch())) return Status::Ok();  // stale: a pull will fix it
    return replica_->Apply(row, wm->epoch, locs, {}, std::nullopt, peer_row_).status();
  }
  auto it = pulls_.find(b.transfer_id());
  if (it == pulls_.end())
    return ProtocolError("StateBatch for unknown transfer " + std::to_string(b.transfer_id()));
  Pull& pull = it->second;
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(b.owner(), "owner"));
  if (owner != pull.owner) return ProtocolError("StateBatch owner does not match its request");
  counters_.batches_received++;
  Epoch epoch(b.epoch());
  Seq from(b.from_seq());
  if (b.model() == wire::MODEL_LOCATION) {
    ES_ASSIGN_OR_RETURN(auto locs, OpenLocationBatch(b));
    if (pull.folder_only)
      ES_RETURN_IF_ERROR(PrepareFolderLoad(pull.owner_row, epoch));
    else
      ES_RETURN_IF_ERROR(EnsureEpoch(pull.owner_row, epoch, from));
    return replica_->Apply(pull.owner_row, epoch, locs, {}, std::nullopt, peer_row_).status();
  }
  ES_ASSIGN_OR_RETURN(auto rows, OpenEntryBatch(b));
  if (pull.folder_only) ES_RETURN_IF_ERROR(PrepareFolderLoad(pull.owner_row, epoch));
  ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(pull.owner_row));
  if (!wm || wm->epoch != epoch) return ProtocolError("StateBatch of an unexpected epoch");
  std::optional<Seq> advance;
  if (!pull.folder_only && from.value() >= 0 && wm->seq >= from) advance = Seq(b.last_seq());
  ES_ASSIGN_OR_RETURN(ApplyStats st, replica_->Apply(pull.owner_row, epoch, {}, rows, advance, peer_row_));
  counters_.rows_applied += st.written;
  counters_.rows_skipped += st.skipped;
  TransferProgress& p = progress_[pull.progress_index];
  p.total = b.total_records();
  if (p.strategy != Strategy::kBulk) p.strategy = Strategy::kBatch;
  p.done += rows.size();
  p.bytes += f.payload.size() + kFrameOverhead;
  fetch_bytes_ += f.payload.size() + kFrameOverhead;
  std::optional<wire::Ack> ack;
  if (advance) {
    ack.emplace();
    ack->set_owner(b.owner());
    ack->set_epoch(epoch.value());
    ack->set_seq(advance->value());
  }
  GrantCredit(b.transfer_id(), ack);
  PublishSnapshot();
  return Status::Ok();
}

// Rows loaded on demand belong to the owner's current epoch: a replica of
// an older epoch is dropped first.
Status Session::PrepareFolderLoad(DeviceRowId owner, Epoch epoch) {
  ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(owner));
  if (wm && wm->epoch == epoch) return Status::Ok();
  return replica_->ResetOwner(owner, epoch);
}

// One more batch may come. Under a rate limit the credit is held back until
// the transfer's average rate is below the limit again.
void Session::GrantCredit(uint64_t transfer_id, std::optional<wire::Ack> ack) {
  wire::Credit c;
  c.set_transfer_id(transfer_id);
  c.set_batches(1);
  if (ack) *c.mutable_ack() = *ack;
  std::string frame = EncodeFrame(c);
  double due = RateDue();
  if (due <= Now()) {
    Send(std::move(frame));
  } else {
    held_credits_.emplace_back(due, std::move(frame));
    ArmRateTimer();
  }
}

// Under a rate limit every batch or chunk waits for its own credit, so the
// limit holds from the first byte (a window of 8 would let 8 through at
// full speed before the first one is paced).
uint32_t Session::InitialCredit() const { return config_.fetch_rate_limit > 0 ? 1 : config_.credit_window; }

double Session::RateDue() const {
  if (config_.fetch_rate_limit == 0 || fetch_started_ == 0) return 0;
  return fetch_started_ + static_cast<double>(fetch_bytes_) / static_cast<double>(config_.fetch_rate_limit);
}

void Session::FlushCredits() {
  double now = Now();
  for (auto it = held_credits_.begin(); it != held_credits_.end();) {
    if (it->first <= now) {
      Send(std::move(it->second));
      it = held_credits_.erase(it);
    } else {
      ++it;
    }
  }
}

// Wakes when the earliest held credit or deferred pull is due.
void Session::ArmRateTimer() {
  double due = next_evaluate_;
  for (const auto& [at, frame] : held_credits_) due = due == 0 ? at : std::min(due, at);
  if (due == 0) return;
  rate_timer_.expires_at(
      Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(due))));
  rate_timer_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    if (ec) return;  // re-armed or cancelled
    if (auto self = weak.lock(); self && !self->ended_.load()) self->OnRateTimer();
  });
}

void Session::OnRateTimer() {
  FlushCredits();
  if (next_evaluate_ > 0 && Now() >= next_evaluate_) {
    next_evaluate_ = 0;
    Status s = EvaluatePulls();
    if (!s.ok()) {
      Teardown(s);
      return;
    }
  }
  ArmRateTimer();
}

Status Session::OnStateChange(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::StateChange>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(c.owner(), "owner"));
  if (!c.has_entry()) return ProtocolError("StateChange without an entry");
  ES_ASSIGN_OR_RETURN(EntryRecord e, EntryFromWire(c.entry()));
  ES_ASSIGN_OR_RETURN(DeviceRowId row, OwnerRow(owner, ""));
  ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(row));
  counters_.changes_received++;
  if (!wm || wm->epoch != Epoch(c.epoch())) return Status::Ok();  // stale: a pull will fix it
  ES_ASSIGN_OR_RETURN(ApplyStats st,
                      replica_->Apply(row, wm->epoch, {}, std::span(&e, 1), std::nullopt, peer_row_));
  counters_.rows_applied += st.written;
  counters_.rows_skipped += st.skipped;
  if (st.written > 0) host_.OnSessionChanged(this);  // the rows flow on
  for (auto& [id, pull] : pulls_) {
    if (pull.owner != owner) continue;
    TransferProgress& p = progress_[pull.progress_index];
    p.strategy = Strategy::kChange;
    p.done++;
    p.bytes += f.payload.size() + kFrameOverhead;
  }
  PublishSnapshot();
  return Status::Ok();
}

Status Session::OnCurrent(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::Current>(f));
  if (c.owner().empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    peer_done_ = true;
    if (pulls_.empty() && sent_done_) snapshot_.state = "current";
    return Status::Ok();
  }
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(c.owner(), "owner"));
  ES_ASSIGN_OR_RETURN(DeviceRowId row, OwnerRow(owner, ""));
  Epoch epoch(c.epoch());
  Seq from(c.from_seq()), seq(c.seq());
  auto pit = pulls_.find(c.transfer_id());
  bool folder_only = pit != pulls_.end() && pit->second.folder_only;
  if (!folder_only) {
    if (pit != pulls_.end() && from.value() == 0) ES_RETURN_IF_ERROR(EnsureEpoch(row, epoch, from));
    ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(row));
    if (wm && wm->epoch == epoch && wm->seq >= from && seq > wm->seq) {
      ES_RETURN_IF_ERROR(replica_->Apply(row, epoch, {}, {}, seq, peer_row_).status());
      host_.OnSessionChanged(this);
    }
    PeerHas& has = peer_has_[owner];
    if (has.epoch == epoch && has.max_seq < seq) has.max_seq = seq;
    if (has.epoch != epoch && c.transfer_id() != 0) has = {epoch, seq, has.name};
  }
  if (pit != pulls_.end()) {
    TransferProgress& p = progress_[pit->second.progress_index];
    p.finished = Now();
    if (!folder_only) {
      host_.ReleasePull(owner, this);
      spdlog::info("pulled {} rows of {} from {} in {:.2f}s ({})", p.done, p.owner_name, snapshot_.peer_name,
                   p.finished - p.started, StrategyName(p.strategy));
    }
    auto done = std::move(pit->second.done);
    pulls_.erase(pit);
    if (done) done(Status::Ok());
    host_.OnSessionChanged(this);
    ES_RETURN_IF_ERROR(EvaluatePulls());
  }
  PublishSnapshot();
  return Status::Ok();
}

Status Session::OnBulkNotice(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto n, ParseMessage<wire::BulkIndexComplete>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(n.owner(), "owner"));
  counters_.notices_received++;
  PeerHas& has = peer_has_[owner];
  has.epoch = Epoch(n.epoch());
  has.max_seq = std::max(has.max_seq, Seq(n.max_seq()));
  spdlog::info("{} announced {} new rows of owner {} (max seq {})", snapshot_.peer_name, n.entry_count(),
               owner.ToString().substr(0, 8), n.max_seq());
  PublishSnapshot();
  return EvaluatePulls();
}

}  // namespace entrysync

// ---- snapshots ----

namespace entrysync {

Status Session::OfferSnapshot(const Serve& s, const std::string& owner_name) {
  auto found = FindOrExportSnapshot(*lib_, host_.library_dir(), s.owner_row, s.owner, s.epoch, s.upto,
                                    config_.snapshot_max_lag, /*export_if_missing=*/true);
  Result<ServedSnapshot> o =
      found.ok() ? Result<ServedSnapshot>(**found) : Result<ServedSnapshot>(found.status());
  if (!o.ok()) {
    // The request fails; the peer may ask again for rows instead.
    spdlog::warn("cannot export a snapshot of {} for {}: {}", owner_name, snapshot_.peer_name,
                 o.status().message());
    return FailRequest(s.id, Internal("snapshot of " + owner_name + " unavailable: " + o.status().message()));
  }
  offered_[o->sha256_hex] = *o;
  wire::SnapshotOffer offer;
  offer.set_owner(UuidToWire(s.owner));
  offer.set_epoch(o->epoch.value());
  offer.set_max_seq(o->max_seq.value());
  offer.set_size(o->size);
  std::string sha(32, '\0');
  HexDecode(o->sha256_hex, sha.data(), sha.size());
  offer.set_sha256(sha);
  offer.set_transfer_id(s.id);
  offer.set_entry_count(o->entries);
  Send(EncodeFrame(offer));
  spdlog::info("offering a snapshot of {} to {}: {} entries up to seq {}, {} bytes ({}; {})", owner_name,
               snapshot_.peer_name, o->entries, o->max_seq.value(), o->size,
               o->export_seconds > 0 ? fmt::format("exported in {:.2f}s", o->export_seconds)
                                     : std::string("prepared earlier"),
               config_.forced == Strategy::kSnapshot
                   ? "forced here"
                   : "the peer holds nothing of it and it has at least " +
                         std::to_string(config_.snapshot_threshold) + " rows, or the peer forced it");
  return Status::Ok();
}

Status Session::OnSnapshotRequest(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto r, ParseMessage<wire::SnapshotRequest>(f));
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(r.owner(), "owner"));
  auto fail = [&](const std::string& why) { return FailRequest(r.transfer_id(), NotFound(why)); };
  auto it = offered_.find(HexEncode(r.sha256().data(), r.sha256().size()));
  if (r.sha256().size() != 32 || it == offered_.end())
    return fail("no such snapshot offered in this session");
  const ServedSnapshot& o = it->second;
  if (r.offset() > o.size) return fail("snapshot offset " + std::to_string(r.offset()) + " is past its end");
  int fd = ::open(o.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("snapshot file is gone: " + std::string(std::strerror(errno)));
  SnapServe sv;
  sv.id = r.transfer_id();
  sv.owner = owner;
  sv.fd = fd;
  sv.size = o.size;
  sv.offset = r.offset();
  sv.entries = o.entries;
  sv.credit = r.max_chunks() > 0 ? r.max_chunks() : 1;
  TransferProgress p;
  p.id = sv.id;
  p.pulling = false;
  p.owner = owner;
  auto dev = lib_->FindDeviceByUuid(owner);
  p.owner_name = dev.ok() ? dev->name : owner.ToString().substr(0, 8);
  p.strategy = Strategy::kSnapshot;
  p.total = o.entries;
  p.total_bytes = o.size;
  p.bytes = sv.offset;
  p.started = Now();
  progress_.push_back(p);
  sv.progress_index = progress_.size() - 1;
  if (sv.offset > 0)
    spdlog::info("resuming the snapshot of {} for {} at byte {} of {}", p.owner_name, snapshot_.peer_name,
                 sv.offset, sv.size);
  auto old = snap_serves_.find(sv.id);
  if (old != snap_serves_.end()) CloseFd(old->second.fd);
  snap_serves_[sv.id] = sv;
  return Status::Ok();
}

Status Session::PumpSnapshots(bool* did_work) {
  for (auto it = snap_serves_.begin(); it != snap_serves_.end();) {
    SnapServe& sv = it->second;
    TransferProgress& p = progress_[sv.progress_index];
    bool finished = false;
    while (sv.credit > 0 && stream_->PendingWriteBytes() < config_.max_pending_write_bytes) {
      uint64_t n = std::min<uint64_t>(config_.snapshot_chunk_bytes, sv.size - sv.offset);
      std::string data(n, '\0');
      ssize_t got = n > 0 ? ::pread(sv.fd, data.data(), n, static_cast<off_t>(sv.offset)) : 0;
      if (got != static_cast<ssize_t>(n))
        return IOError("cannot read the snapshot of " + p.owner_name + " at byte " +
                       std::to_string(sv.offset));
      wire::SnapshotChunk c;
      c.set_owner(UuidToWire(sv.owner));
      c.set_offset(sv.offset);
      // SQLite pages compress well (zstd level 1: about a third); the codec
      // falls back to raw bytes when it does not pay.
      Compressed z = CompressPayload(config_.codec, data);
      c.set_codec(CodecToWire(z.codec));
      c.set_raw_size(static_cast<uint32_t>(n));
      c.set_data(z.codec == Codec::kNone ? std::move(data) : std::move(z.bytes));
      c.set_transfer_id(sv.id);
      sv.offset += n;
      c.set_last(sv.offset == sv.size);
      Send(EncodeFrame(c));
      sv.credit--;
      p.bytes = sv.offset;
      p.done = sv.size ? static_cast<uint64_t>(static_cast<double>(sv.entries) * sv.offset / sv.size) : 0;
      *did_work = true;
      if (sv.offset == sv.size) {
        p.done = p.total;
        p.finished = Now();
        counters_.snapshots_sent++;
        spdlog::info("served the snapshot of {} to {}: {} bytes in {:.2f}s", p.owner_name,
                     snapshot_.peer_name, sv.size, p.finished - p.started);
        finished = true;
        break;
      }
    }
    if (finished) {
      CloseFd(sv.fd);
      it = snap_serves_.erase(it);
    } else {
      ++it;
    }
  }
  PublishSnapshot();
  return Status::Ok();
}

Status Session::OnSnapshotOffer(const Frame& f) {
  namespace fs = std::filesystem;
  ES_ASSIGN_OR_RETURN(auto o, ParseMessage<wire::SnapshotOffer>(f));
  auto it = pulls_.find(o.transfer_id());
  if (it == pulls_.end() || it->second.folder_only)
    return ProtocolError("SnapshotOffer for unknown transfer " + std::to_string(o.transfer_id()));
  Pull& pull = it->second;
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(o.owner(), "owner"));
  if (owner != pull.owner) return ProtocolError("SnapshotOffer owner does not match its request");
  if (o.sha256().size() != 32) return ProtocolError("SnapshotOffer without a 32-byte sha256");
  if (o.size() == 0 || o.size() > kMaxSnapshotBytes)
    return ProtocolError("SnapshotOffer of " + std::to_string(o.size()) + " bytes");
  std::string dir = SnapshotDir(host_.library_dir());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IOError("cannot create " + dir + ": " + ec.message());
  Download d;
  d.part_path = dir + "/" + owner.ToString() + ".part";
  d.offer_path = dir + "/" + owner.ToString() + ".offer";
  d.sha256_hex = HexEncode(o.sha256().data(), o.sha256().size());
  d.size = o.size();
  d.entries = o.entry_count();
  d.epoch = Epoch(o.epoch());
  d.max_seq = Seq(o.max_seq());
  // Resume a download of the very same file; anything else starts over.
  std::string offer_line = d.sha256_hex + " " + std::to_string(d.size);
  uint64_t have = fs::exists(d.part_path, ec) ? fs::file_size(d.part_path, ec) : 0;
  bool resume = ReadSmallFile(d.offer_path) == offer_line && have <= d.size && !ec;
  if (!resume) {
    fs::remove(d.part_path, ec);
    ES_RETURN_IF_ERROR(WriteSmallFileAtomically(d.offer_path, offer_line + "\n"));
    have = 0;
  }
  d.fd = ::open(d.part_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (d.fd < 0) return IOError("cannot open " + d.part_path + ": " + std::strerror(errno));
  if (::lseek(d.fd, static_cast<off_t>(have), SEEK_SET) < 0) {
    CloseFd(d.fd);
    return IOError("cannot seek in " + d.part_path);
  }
  d.received = have;
  TransferProgress& p = progress_[pull.progress_index];
  p.strategy = Strategy::kSnapshot;
  p.total = d.entries;
  p.total_bytes = d.size;
  p.bytes = have;
  p.done = static_cast<uint64_t>(static_cast<double>(d.entries) * have / d.size);
  spdlog::info("{} offers a snapshot of {}: {} entries up to seq {}, {} bytes{}", snapshot_.peer_name,
               p.owner_name, d.entries, d.max_seq.value(), d.size,
               resume && have > 0 ? ", resuming at byte " + std::to_string(have) : "");
  if (pull.download) CloseFd(pull.download->fd);
  pull.download = std::move(d);
  if (have == pull.download->size) return FinishDownload(pull.id);
  wire::SnapshotRequest r;
  r.set_owner(o.owner());
  r.set_offset(have);
  r.set_epoch(o.epoch());
  r.set_sha256(o.sha256());
  r.set_transfer_id(pull.id);
  r.set_max_chunks(InitialCredit());
  Send(EncodeFrame(r));
  return Status::Ok();
}

Status Session::OnSnapshotChunk(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::SnapshotChunk>(f));
  auto it = pulls_.find(c.transfer_id());
  if (it == pulls_.end() || !it->second.download)
    return ProtocolError("SnapshotChunk for unknown transfer " + std::to_string(c.transfer_id()));
  Pull& pull = it->second;
  Download& d = *pull.download;
  if (c.offset() != d.received)
    return ProtocolError("SnapshotChunk at byte " + std::to_string(c.offset()) + ", expected " +
                         std::to_string(d.received));
  ES_ASSIGN_OR_RETURN(Codec codec, CodecFromWire(c.codec()));
  uint64_t raw_size = codec == Codec::kNone ? c.data().size() : c.raw_size();
  if (raw_size > d.size - d.received)
    return Corruption("snapshot chunk runs past the offered size of " + std::to_string(d.size) + " bytes");
  std::string raw;
  if (codec != Codec::kNone) {
    ES_ASSIGN_OR_RETURN(raw, Decompress(codec, c.data(), raw_size, kDefaultMaxFrameBytes * 8));
  }
  std::string_view bytes = codec == Codec::kNone ? std::string_view(c.data()) : std::string_view(raw);
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t w = ::write(d.fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return IOError("cannot write " + d.part_path + ": " + std::strerror(errno));
    p += w;
    left -= static_cast<size_t>(w);
  }
  d.received += bytes.size();
  fetch_bytes_ += f.payload.size() + kFrameOverhead;
  TransferProgress& tp = progress_[pull.progress_index];
  tp.bytes = d.received;
  tp.done = static_cast<uint64_t>(static_cast<double>(d.entries) * d.received / d.size);
  if (d.received == d.size) return FinishDownload(pull.id);
  if (c.last())
    return Corruption("snapshot ended at byte " + std::to_string(d.received) + " of " +
                      std::to_string(d.size));
  GrantCredit(pull.id, std::nullopt);
  PublishSnapshot();
  return Status::Ok();
}

// The whole file is here: verify and import it in one transaction, then the
// pull ends and ordinary deltas after its max seq follow.
Status Session::FinishDownload(uint64_t pull_id) {
  namespace fs = std::filesystem;
  Pull& pull = pulls_.at(pull_id);
  Download& d = *pull.download;
  if (::fsync(d.fd) != 0) spdlog::warn("fsync {}: {}", d.part_path, std::strerror(errno));
  CloseFd(d.fd);
  TransferProgress& p = progress_[pull.progress_index];
  auto imported = ImportSnapshot(*lib_, d.part_path, d.sha256_hex, peer_row_);
  std::error_code ec;
  fs::remove(d.part_path, ec);
  fs::remove(d.offer_path, ec);
  if (imported.ok() || imported.status().code() == Code::kAlreadyExists) {
    uint64_t written = imported.ok() ? imported->rows_written : 0;
    counters_.rows_applied += written;
    counters_.snapshots_imported++;
    p.done = p.total;
    wire::Credit ack;  // tells the server what we now hold
    ack.set_transfer_id(pull.id);
    ack.mutable_ack()->set_owner(UuidToWire(pull.owner));
    ack.mutable_ack()->set_epoch(d.epoch.value());
    ack.mutable_ack()->set_seq(d.max_seq.value());
    Send(EncodeFrame(ack));
    spdlog::info("imported the snapshot of {} from {}: {} rows up to seq {} ({} bytes) in {:.2f}s",
                 p.owner_name, snapshot_.peer_name, written, d.max_seq.value(), d.size, Now() - p.started);
  } else {
    // Refused, nothing changed: take this owner's rows as batches instead.
    snapshot_refused_.insert(pull.owner);
    spdlog::warn("refused the snapshot of {} from {}: {}; pulling its rows instead", p.owner_name,
                 snapshot_.peer_name, imported.status().message());
  }
  p.finished = Now();
  host_.ReleasePull(pull.owner, this);
  pulls_.erase(pull_id);
  host_.OnSessionChanged(this);
  PublishSnapshot();
  return EvaluatePulls();
}

}  // namespace entrysync
