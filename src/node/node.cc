#include "node/node.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

namespace entrysync {

namespace fs = std::filesystem;
using json = nlohmann::json;

Result<Identity> EnsureIdentity(Library& lib) {
  ES_ASSIGN_OR_RETURN(Identity id, LoadOrCreateIdentity((fs::path(lib.dir()) / "identity").string()));
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib.LocalDevice());
  if (!me.device_id || *me.device_id != id.device_id())
    ES_RETURN_IF_ERROR(lib.SetLocalDeviceId(id.device_id()));
  return id;
}

Result<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& addr) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size())
    return InvalidArgument("'" + addr + "' is not HOST:PORT");
  std::string host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  long port = std::strtol(addr.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) return InvalidArgument("'" + addr + "' has a bad port");
  return std::make_pair(host, static_cast<uint16_t>(port));
}

Result<std::unique_ptr<Node>> Node::Open(NodeOptions options) {
  ES_ASSIGN_OR_RETURN(auto lib, Library::Open(options.library_dir));
  ES_ASSIGN_OR_RETURN(Identity id, EnsureIdentity(*lib));
  return std::unique_ptr<Node>(new Node(std::move(options), std::move(lib), std::move(id)));
}

Node::Node(NodeOptions options, std::unique_ptr<Library> lib, Identity identity)
    : options_(std::move(options)), lib_(std::move(lib)), identity_(std::move(identity)) {
  io_ = std::make_unique<IoThread>("es-io");
  loop_ = std::make_unique<IoThread>("es-sync");
  SyncExecutor exec = loop_->context().get_executor();
  dial_timer_ = std::make_unique<SyncTimer>(exec);
  status_timer_ = std::make_unique<SyncTimer>(exec);
  SyncObserver observer;
  observer.on_changed = [this] { OnChanged(); };
  observer.on_progress = [this] { ArmStatus(); };
  observer.on_owner_advanced = [this](const DeviceInfo& owner, Epoch epoch, Seq seq) {
    Emit(OwnerAdvancedEvent{owner.uuid, owner.name, epoch, seq});
    OnChanged();
  };
  SyncConfig sync = options_.sync;
  sync.hear_other_processes = options_.write_status;  // the daemon
  // Our checkpoints are signed with the device key (docs/trust.md).
  sync.sign_checkpoint = [identity = identity_, library = lib_->library_id()](
                             Epoch epoch, Seq seq, const LtHash::Checksum& digest) {
    return SignCheckpoint(identity.key(), library, epoch, seq, digest);
  };
  sync_ = std::make_unique<SyncService>(options_.library_dir, sync, exec, std::move(observer));
}

Node::~Node() { Stop(); }

Status Node::Authorize(const DeviceId& id) {
  MutexLock lock(lib_mu_);
  auto d = lib_->FindDeviceById(id);
  if (!d.ok() || !d->trusted)
    return PermissionDenied("device " + ShortDeviceId(id) + " is not paired (see 'entrysync peer add')");
  return Status::Ok();
}

Status Node::Start() {
  if (options_.write_status) {
    ES_ASSIGN_OR_RETURN(lock_, LibraryLock::Acquire(options_.library_dir, kDaemonLockHolder));
    if (options_.on_locked) ES_RETURN_IF_ERROR(options_.on_locked());
  }
  ES_RETURN_IF_ERROR(sync_->Start());
  started_ = true;
  sync_->AttachBus(bus_);
  if (!options_.listen.empty()) {
    ES_ASSIGN_OR_RETURN(auto hp, ParseHostPort(options_.listen));
    ES_ASSIGN_OR_RETURN(
        listener_,
        TlsListener::Listen(
            *io_, identity_, hp.first, hp.second, [this](const DeviceId& id) { return Authorize(id); },
            [this](std::unique_ptr<ByteStream> s) {
              spdlog::info("accepted {} from {}", ShortDeviceId(s->RemoteId()), s->Describe());
              sync_->AddSession(std::move(s), /*outbound=*/false);
            },
            [this](const Status& why) {
              spdlog::warn("refused a connection: {}", why.message());
              loop_->Post([this, why] { Emit(PeerRefusedEvent{"", why.message()}); });
            }));
    spdlog::info("listening on {}:{} as device {}", hp.first, listener_->port(),
                 identity_.device_id().ToString());
  }
  loop_->Post([this] { OnChanged(); });
  return Status::Ok();
}

void Node::Stop() {
  if (stopped_.exchange(true)) return;
  if (listener_) listener_->Stop();
  if (started_) {
    std::promise<void> done;
    loop_->Post([this, &done] {
      dial_timer_->cancel();
      status_timer_->cancel();
      sync_->Shutdown();
      done.set_value();
    });
    done.get_future().wait();
  }
  loop_->Stop();
  io_->Stop();
  std::error_code ec;
  if (lock_) fs::remove(fs::path(options_.library_dir) / "status.json", ec);
  lock_.reset();
}

void Node::PeerChanged(const DeviceId& id) {
  loop_->Post([this, id] {
    if (stopped_) return;
    bool paired = Authorize(id).ok();
    for (const auto& s : sync_->Sessions())
      if (!paired && s->remote_id() == id && !s->closed())
        s->Close(PermissionDenied("device " + ShortDeviceId(id) + " was unpaired"));
    dials_.erase(id);
    OnChanged();  // redials
  });
}

void Node::RunWrite(WriteTarget target, std::function<Status(Library&)> job,
                    std::function<void(Status)> done) {
  if (!started_ || stopped_) return done(Aborted("the node is not running"));
  sync_->RunWrite(target, [job = std::move(job), done = std::move(done)](Library* lib) {
    done(lib ? job(*lib) : Aborted("the node stopped first"));
  });
}

Result<ImportStats> Node::ImportSnapshot(const std::string& path,
                                         const std::optional<std::string>& expected_sha256) {
  std::promise<Status> done;
  std::optional<Result<ImportStats>> stats;  // set when the job ran
  // The snapshot names its owner inside the file: addressed to the library.
  RunWrite(
      WriteTarget::LibraryTables(),
      [&](Library& lib) {
        stats = ::entrysync::ImportSnapshot(lib, path, expected_sha256);
        return stats->status();
      },
      [&](Status s) { done.set_value(std::move(s)); });
  Status s = done.get_future().get();
  if (!stats) return s.Wrap("cannot import " + path);
  return std::move(*stats);
}

bool Node::HasSession(const DeviceId& id, bool outbound_only) {
  for (const auto& s : sync_->Sessions())
    if (!s->closed() && s->remote_id() == id && (!outbound_only || s->outbound())) return true;
  return false;
}

Result<std::shared_ptr<Session>> Node::Connect(const DeviceInfo& peer) {
  if (!peer.device_id) return InvalidArgument("peer " + peer.name + " has no device id");
  if (peer.addr.empty()) return InvalidArgument("peer " + peer.name + " has no address (peer add --addr)");
  ES_ASSIGN_OR_RETURN(auto hp, ParseHostPort(peer.addr));
  auto stream = TlsDial(*io_, identity_, hp.first, hp.second, *peer.device_id);
  if (!stream.ok()) return stream.status().Wrap("connect to " + peer.name + " at " + peer.addr);
  return sync_->AddSession(std::move(*stream), /*outbound=*/true);
}

void Node::Redial() {
  if (!options_.dial_peers || stopped_) return;
  std::vector<DeviceInfo> peers;
  {
    MutexLock lock(lib_mu_);
    auto devices = lib_->ListDevices();
    if (devices.ok())
      for (auto& d : *devices)
        if (!d.is_local && d.trusted && d.device_id && !d.addr.empty()) peers.push_back(d);
  }
  auto now = Clock::now();
  std::optional<Clock::time_point> next;
  for (const auto& p : peers) {
    const DeviceId id = *p.device_id;
    Dial& d = dials_[id];
    if (d.session && d.session->closed()) OnDialedSessionEnded(p, d);
    if (dialing_[id] || HasSession(id)) continue;
    if (!d.backoff.Due(now)) {
      next = next ? std::min(*next, d.backoff.next_try()) : d.backoff.next_try();
      continue;
    }
    auto hp = ParseHostPort(p.addr);
    if (!hp.ok()) continue;
    dialing_[id] = true;
    TlsDialAsync(*io_, identity_, hp->first, hp->second, id,
                 [this, p](Result<std::unique_ptr<ByteStream>> stream) {
                   auto shared = std::make_shared<Result<std::unique_ptr<ByteStream>>>(std::move(stream));
                   loop_->Post([this, p, shared] { OnDialed(p, std::move(*shared)); });
                 });
  }
  if (next) {
    dial_timer_->expires_at(*next);
    dial_timer_->async_wait([this](const asio::error_code& ec) {
      if (!ec) Redial();
    });
  }
}

namespace {

// Uniform in [0, 1): the jitter of a back-off.
double UnitRandom() {
  return static_cast<double>(RandomU64() >> 11) / static_cast<double>(uint64_t{1} << 53);
}

double Secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

// A failed dial backs off (node/dial_backoff.h); a connection that came up
// is watched until it ends (OnDialedSessionEnded).
void Node::OnDialed(const DeviceInfo& peer, Result<std::unique_ptr<ByteStream>> stream) {
  const DeviceId id = *peer.device_id;
  dialing_[id] = false;
  if (stopped_) return;
  Dial& d = dials_[id];
  if (!stream.ok()) {
    Clock::duration delay = d.backoff.Failed(Clock::now(), UnitRandom());
    spdlog::warn("connect to {} at {}: {} (attempt {}, next try in {:.1f}s)", peer.name, peer.addr,
                 stream.status().message(), d.backoff.failures(), Secs(delay));
  } else if (!HasSession(id, /*outbound_only=*/true)) {
    // Kept even when the peer's own dial arrived meanwhile: the tie-break
    // (SyncService::OnPeerReady) closes the same one of the two on both
    // sides. Dropping it here could leave neither, when both sides did.
    spdlog::info("connected to {} at {}", peer.name, peer.addr);
    d.backoff.Connected(Clock::now());
    d.session = sync_->AddSession(std::move(*stream), /*outbound=*/true);
  }
  Redial();
}

// A session that ended before it was healthy (up 30 s, or rows moved) backs
// off like a failed dial; a healthy one resets the back-off. One closed
// because the peer's own dial was kept changes nothing.
void Node::OnDialedSessionEnded(const DeviceInfo& peer, Dial& d) {
  SessionSnapshot snap = d.session->Snapshot();
  d.session.reset();
  auto now = Clock::now();
  if (HasSession(*peer.device_id)) {
    d.backoff.Superseded();
    return;
  }
  const SessionCounters& c = snap.counters;
  bool moved = c.rows_applied + c.rows_sent + c.snapshots_imported + c.snapshots_sent > 0;
  Clock::duration up = d.backoff.Uptime(now);
  auto delay = d.backoff.Ended(now, moved, UnitRandom());
  if (delay)
    spdlog::warn(
        "session with {} at {} ended after {:.1f}s without syncing: {} (attempt {}, next try in {:.1f}s)",
        peer.name, peer.addr, Secs(up), snap.close_reason, d.backoff.failures(), Secs(*delay));
}

void Node::Emit(const NodeEvent& e) {
  if (options_.on_event) options_.on_event(e);
}

// Sessions came or went, rows advanced, or another process wrote the
// library: redial what is missing, report connections, and rewrite the
// status file (at most twice a second, and only while something happens).
void Node::OnChanged() {
  if (stopped_) return;
  Redial();
  std::map<std::weak_ptr<Session>, KnownSession, std::owner_less<>> states;
  auto up = [](SessionState st) { return st == SessionState::kSyncing || st == SessionState::kCurrent; };
  for (const auto& s : sync_->Sessions()) {
    SessionSnapshot snap = s->Snapshot();
    auto known = known_states_.find(s);
    SessionState was = known == known_states_.end() ? SessionState::kHandshake : known->second.state;
    if (up(snap.state) && !up(was)) Emit(PeerConnectedEvent{snap.peer_uuid, snap.peer_name, snap.address});
    if (snap.state == SessionState::kClosed && up(was))
      Emit(PeerDisconnectedEvent{snap.peer_uuid, snap.peer_name, snap.close_reason});
    states[s] = {snap.state, snap.peer_uuid, snap.peer_name, snap.close_reason};
  }
  // Sessions reaped since: they closed.
  for (const auto& [s, k] : known_states_)
    if (!states.contains(s) && up(k.state)) Emit(PeerDisconnectedEvent{k.peer, k.name, k.reason});
  known_states_ = std::move(states);
  ArmStatus();
}

// The status file now, then again every 500 ms while a transfer runs.
void Node::ArmStatus() {
  if (!status_armed_ && !stopped_) {
    status_armed_ = true;
    WriteStatus();
    status_timer_->expires_after(std::chrono::milliseconds(500));
    status_timer_->async_wait([this](const asio::error_code& ec) {
      status_armed_ = false;
      if (ec) return;
      // While a transfer runs, keep the file (and progress events) fresh.
      bool busy = false;
      for (const auto& s : sync_->Sessions()) {
        for (const auto& t : s->Snapshot().transfers) {
          if (t.finished > 0) continue;
          busy = true;
          Emit(TransferProgressEvent{t.id, s->peer_name(), t.pulling, t.owner_name, StrategyName(t.strategy),
                                     t.done, t.total, t.bytes, false});
        }
      }
      if (busy) {
        ArmStatus();
      } else {
        WriteStatus();
      }
    });
  }
}

void Node::WriteStatus() {
  if (!options_.write_status) return;
  std::string path = (fs::path(options_.library_dir) / "status.json").string();
  std::string tmp = path + ".tmp";
  { std::ofstream(tmp) << StatusJson(); }
  std::error_code ec;
  fs::rename(tmp, path, ec);
}

std::string Node::StatusJson() {
  double now = Clock::Seconds();
  json doc;
  {
    MutexLock lock(lib_mu_);
    auto me = lib_->LocalDevice();
    if (me.ok()) {
      doc["device"] = {{"name", me->name},
                       {"uuid", me->uuid.ToString()},
                       {"device_id", identity_.device_id().ToString()},
                       {"max_seq", me->max_seq.value()}};
    }
    doc["library_id"] = lib_->library_id().ToString();
  }
  doc["pid"] = getpid();
  doc["listen_port"] = listen_port();
  doc["updated_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  doc["sessions"] = json::array();
  for (const auto& s : sync_->Snapshot()) {
    json js{{"peer", s.peer_name},
            {"peer_uuid", s.peer_uuid.ToString()},
            {"address", s.address},
            {"state", SessionStateName(s.state)},
            {"wire_sent", s.wire_sent},
            {"wire_received", s.wire_received},
            {"rows_applied", s.counters.rows_applied},
            {"rows_sent", s.counters.rows_sent},
            {"batches_sent", s.counters.batches_sent},
            {"batches_received", s.counters.batches_received},
            {"changes_sent", s.counters.changes_sent},
            {"changes_received", s.counters.changes_received},
            {"notices_sent", s.counters.notices_sent},
            {"notices_received", s.counters.notices_received},
            {"snapshots_sent", s.counters.snapshots_sent},
            {"snapshots_imported", s.counters.snapshots_imported},
            {"verification_failures", s.counters.verification_failures},
            {"divergences", s.counters.divergences}};
    if (!s.trust_error.empty()) js["trust_error"] = s.trust_error;
    if (!s.close_reason.empty()) js["close_reason"] = s.close_reason;
    js["transfers"] = json::array();
    for (const auto& t : s.transfers) {
      js["transfers"].push_back({{"id", t.id},
                                 {"direction", t.pulling ? "pull" : "serve"},
                                 {"owner", t.owner_name},
                                 {"strategy", StrategyName(t.strategy)},
                                 {"done", t.done},
                                 {"total", t.total},
                                 {"bytes", t.bytes},
                                 {"total_bytes", t.total_bytes},
                                 {"rate", t.Rate(now)},
                                 {"eta_s", t.Eta(now)},
                                 {"state", t.finished > 0 ? "finished" : "running"}});
    }
    doc["sessions"].push_back(js);
  }
  return doc.dump(2);
}

}  // namespace entrysync
