// Engine::List: one folder of one owner, loaded on demand from a peer when
// this library does not hold it (lazy fetch).
#include <algorithm>
#include <chrono>
#include <future>

#include "api/engine_impl.h"

namespace entrysync {

namespace {

// True when `path` of `owner` resolves here to a folder with children, or to
// a file.
bool HeldHere(Library& lib, const DeviceInfo& owner, const std::string& path) {
  auto found = ResolvePath(lib, owner.id, path);
  if (!found.ok()) return false;
  auto cur = lib.LocationRoot(found->first.id);
  if (!cur.ok()) return false;
  EntryRecord e = *cur;
  for (const auto& part : found->second) {
    auto kids = lib.ListChildren(e.uuid);
    if (!kids.ok()) return false;
    auto hit = std::find_if(kids->begin(), kids->end(), [&](const EntryRecord& k) { return k.name == part; });
    if (hit == kids->end()) return false;
    e = *hit;
  }
  if (e.kind != EntryKind::kDir) return true;
  auto kids = lib.ListChildren(e.uuid);
  return kids.ok() && !kids->empty();
}

// The peers to ask for `path` of `owner`, the owner itself first; none when
// the library holds the folder already (or the whole owner) and no refresh
// is asked. NotFound when it is needed and no peer has an address.
Result<std::vector<DeviceInfo>> PeersToAsk(Library& lib, const DeviceInfo& owner, const std::string& path,
                                           bool refresh) {
  ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(owner.id));
  bool replicated = wm && wm->seq.value() > 0;
  if (!refresh && (replicated || HeldHere(lib, owner, path))) return std::vector<DeviceInfo>{};
  ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
  std::vector<DeviceInfo> peers;
  for (const auto& d : devices)
    if (!d.is_local && d.trusted && d.device_id && !d.addr.empty()) peers.push_back(d);
  std::stable_partition(peers.begin(), peers.end(), [&](const DeviceInfo& d) { return d.id == owner.id; });
  if (peers.empty() && !HeldHere(lib, owner, path))
    return NotFound(path + " of " + owner.name + " is not loaded and no peer has an address to load it from");
  return peers;
}

// Asks `peers` in turn over `node` for the entries along `path` and the
// folder's children, until one has them or says NotFound.
Status LoadFromPeers(Node& node, const DeviceInfo& owner, const std::string& path,
                     const std::vector<DeviceInfo>& peers) {
  Status last = NotFound("no peer could load " + path);
  for (const auto& p : peers) {
    auto s = node.Connect(p);
    if (!s.ok()) {
      last = s.status();
      continue;
    }
    auto result = std::make_shared<std::promise<Status>>();  // outlives a wait that timed out
    auto future = result->get_future();
    (*s)->RequestPath(owner.uuid, path, [result](const Status& st) { result->set_value(st); });
    if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      last = Aborted("loading " + path + " from " + p.name + " timed out");
      continue;
    }
    last = future.get();
    if (last.ok() || last.code() == Code::kNotFound) break;
  }
  return last;
}

}  // namespace

Result<Listing> Engine::List(const Uuid& owner, const std::string& path, const ListOptions& options) {
  MutexLock lock(impl_->mu);
  ES_ASSIGN_OR_RETURN(DeviceInfo o, impl_->OwnerRow(owner));
  if (!o.is_local && !path.empty()) {
    ES_ASSIGN_OR_RETURN(auto peers, PeersToAsk(*impl_->lib, o, path, options.refresh));
    if (!peers.empty()) {
      NodeOptions node_options = impl_->NodeOptionsFor(SyncConfig{});
      node_options.dial_peers = false;
      node_options.write_status = false;
      node_options.sync.auto_fetch = false;
      ES_ASSIGN_OR_RETURN(auto node, Node::Open(std::move(node_options)));
      ES_RETURN_IF_ERROR(node->Start());
      lock.Unlock();  // the network may take a while; the library stays usable
      Status loaded = LoadFromPeers(*node, o, path, peers);
      node->Stop();
      lock.Lock();
      if (!loaded.ok() && !HeldHere(*impl_->lib, o, path)) return loaded;  // else: show what is held
    }
  }
  Library& lib = *impl_->lib;
  std::string p = o.is_local ? AbsolutePath(path) : path;
  ES_ASSIGN_OR_RETURN(auto found, ResolvePath(lib, o.id, p));
  auto root = lib.LocationRoot(found.first.id);
  if (!root.ok()) return NotFound(p + " is not indexed yet");
  Listing out{.entry = *root, .children = {}};
  for (const auto& part : found.second) {
    ES_ASSIGN_OR_RETURN(auto children, lib.ListChildren(out.entry.uuid));
    auto hit =
        std::find_if(children.begin(), children.end(), [&](const EntryRecord& c) { return c.name == part; });
    if (hit == children.end()) return NotFound(p + ": no such entry in the index");
    out.entry = std::move(*hit);
  }
  if (out.entry.kind == EntryKind::kDir) {
    ES_ASSIGN_OR_RETURN(out.children, lib.ListChildren(out.entry.uuid));
  }
  return out;
}

}  // namespace entrysync
