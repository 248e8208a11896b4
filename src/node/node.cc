#include "node/node.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
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
  io_ = std::make_unique<IoThread>();
  sync_ = std::make_unique<SyncService>(options_.library_dir, options_.sync);
}

Node::~Node() { Stop(); }

Status Node::Authorize(const DeviceId& id) {
  std::lock_guard<std::mutex> lock(lib_mu_);
  auto d = lib_->FindDeviceById(id);
  if (!d.ok() || !d->trusted)
    return PermissionDenied("device " + ShortDeviceId(id) + " is not paired (see 'entrysync peer add')");
  return Status::Ok();
}

Status Node::Start() {
  ES_RETURN_IF_ERROR(sync_->Start());
  if (!options_.listen.empty()) {
    ES_ASSIGN_OR_RETURN(auto hp, ParseHostPort(options_.listen));
    ES_ASSIGN_OR_RETURN(
        listener_,
        TlsListener::Listen(
            *io_, identity_, hp.first, hp.second, [this](const DeviceId& id) { return Authorize(id); },
            [this](std::unique_ptr<ByteStream> s) {
              DeviceId id = s->RemoteId();
              spdlog::info("accepted {} from {}", ShortDeviceId(id), s->Describe());
              Track(id, sync_->AddSession(std::move(s)));
            },
            [](Status why) { spdlog::warn("refused a connection: {}", why.message()); }));
    spdlog::info("listening on {}:{} as device {}", hp.first, listener_->port(),
                 identity_.device_id().ToString());
  }
  if (options_.dial_peers) dialer_ = std::thread([this] { DialLoop(); });
  if (options_.write_status) {
    status_writer_ = std::thread([this] {
      std::string path = (fs::path(options_.library_dir) / "status.json").string();
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_) {
        lock.unlock();
        std::string doc = StatusJson();
        std::string tmp = path + ".tmp";
        { std::ofstream(tmp) << doc; }
        std::error_code ec;
        fs::rename(tmp, path, ec);
        lock.lock();
        cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stop_; });
      }
    });
  }
  return Status::Ok();
}

void Node::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (dialer_.joinable()) dialer_.join();
  if (status_writer_.joinable()) status_writer_.join();
  if (listener_) listener_->Stop();
  sync_->Stop();
  io_->Stop();
  std::error_code ec;
  fs::remove(fs::path(options_.library_dir) / "status.json", ec);
}

bool Node::HasSession(const DeviceId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_device_.find(id);
  if (it == by_device_.end()) return false;
  auto s = it->second.lock();
  return s && !s->closed();
}

void Node::Track(const DeviceId& id, std::shared_ptr<Session> s) {
  std::lock_guard<std::mutex> lock(mu_);
  by_device_[id] = s;
}

Result<std::shared_ptr<Session>> Node::Connect(const DeviceInfo& peer) {
  if (!peer.device_id) return InvalidArgument("peer " + peer.name + " has no device id");
  if (peer.addr.empty()) return InvalidArgument("peer " + peer.name + " has no address (peer add --addr)");
  ES_ASSIGN_OR_RETURN(auto hp, ParseHostPort(peer.addr));
  auto stream = TlsDial(*io_, identity_, hp.first, hp.second, *peer.device_id);
  if (!stream.ok()) return stream.status().Wrap("connect to " + peer.name + " at " + peer.addr);
  auto s = sync_->AddSession(std::move(*stream));
  Track(*peer.device_id, s);
  return s;
}

void Node::DialLoop() {
  std::map<DeviceId, std::chrono::steady_clock::time_point> next_try;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    std::vector<DeviceInfo> peers;
    {
      std::lock_guard<std::mutex> l(lib_mu_);
      auto devices = lib_->ListDevices();
      if (devices.ok())
        for (auto& d : *devices)
          if (!d.is_local && d.trusted && d.device_id && !d.addr.empty()) peers.push_back(d);
    }
    auto now = std::chrono::steady_clock::now();
    for (const auto& p : peers) {
      if (HasSession(*p.device_id) || now < next_try[*p.device_id]) continue;
      auto s = Connect(p);
      if (!s.ok()) {
        spdlog::warn("{}", s.status().message());
        next_try[*p.device_id] = now + std::chrono::seconds(2);
      } else {
        spdlog::info("connected to {} at {}", p.name, p.addr);
      }
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stop_; });
  }
}

std::string Node::StatusJson() {
  double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  json doc;
  {
    std::lock_guard<std::mutex> lock(lib_mu_);
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
            {"state", s.state},
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
            {"snapshots_imported", s.counters.snapshots_imported}};
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
