// Engine: Stats, GetStatus, Export, Digest, and the status of a node running
// on the library.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "api/convert.h"
#include "api/engine_impl.h"
#include "store/export.h"
#include "store/library_lock.h"

namespace entrysync {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

SyncCounters CountersOf(const json& s) {
  auto n = [&](const char* key) { return s.value(key, uint64_t{0}); };
  return SyncCounters{.rows_applied = n("rows_applied"),
                      .rows_sent = n("rows_sent"),
                      .batches_sent = n("batches_sent"),
                      .batches_received = n("batches_received"),
                      .changes_sent = n("changes_sent"),
                      .changes_received = n("changes_received"),
                      .notices_sent = n("notices_sent"),
                      .notices_received = n("notices_received"),
                      .snapshots_sent = n("snapshots_sent"),
                      .snapshots_imported = n("snapshots_imported"),
                      .verification_failures = n("verification_failures"),
                      .divergences = n("divergences")};
}

// A node's status document (Node::StatusJson, docs/architecture.md) as a
// DaemonStatus. Throws nlohmann::json::exception on a malformed document.
DaemonStatus ParseStatusDocument(const std::string& text) {
  json doc = json::parse(text);
  DaemonStatus out;
  out.pid = doc.value("pid", 0);
  out.listen_port = doc.value("listen_port", uint16_t{0});
  for (const auto& s : doc.value("sessions", json::array())) {
    SessionStatus ss;
    ss.peer_name = s.value("peer", "");
    ss.peer_uuid = Uuid::Parse(s.value("peer_uuid", "")).value_or(Uuid::Nil());
    ss.address = s.value("address", "");
    ss.state = s.value("state", "");
    ss.close_reason = s.value("close_reason", "");
    ss.wire_sent = s.value("wire_sent", uint64_t{0});
    ss.wire_received = s.value("wire_received", uint64_t{0});
    ss.counters = CountersOf(s);
    for (const auto& t : s.value("transfers", json::array())) {
      ss.transfers.push_back(
          Transfer{.id = t.value("id", uint64_t{0}),
                   .pulling = t.value("direction", "") == "pull",
                   .owner_name = t.value("owner", ""),
                   .strategy = ParseSyncStrategy(t.value("strategy", "")).value_or(SyncStrategy::kAuto),
                   .done = t.value("done", uint64_t{0}),
                   .total = t.value("total", uint64_t{0}),
                   .bytes = t.value("bytes", uint64_t{0}),
                   .total_bytes = t.value("total_bytes", uint64_t{0}),
                   .seconds = 0,
                   .rate = t.value("rate", 0.0),
                   .eta_seconds = t.value("eta_s", -1.0),
                   .finished = t.value("state", "") == "finished"});
    }
    out.sessions.push_back(std::move(ss));
  }
  out.document = text;
  return out;
}

// The status document of a node of another process on the library in
// `dir`, or none. A node killed with SIGKILL leaves its last status behind:
// it is believed only while the process that wrote it holds the library's
// lock (the kernel drops the lock with the process). An idle daemon does
// not rewrite its file, so its age says nothing.
std::optional<DaemonStatus> LiveStatusFile(const std::string& dir) {
  std::optional<LockHolder> holder = LibraryLock::Holder(dir);
  if (!holder) return std::nullopt;
  std::ifstream f(fs::path(dir) / "status.json");
  if (!f) return std::nullopt;
  std::stringstream text;
  text << f.rdbuf();
  try {
    json doc = json::parse(text.str());
    int pid = doc.value("pid", 0);
    if (pid <= 0 || pid != holder->pid) return std::nullopt;
    return ParseStatusDocument(text.str());
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::optional<DaemonStatus> Engine::Impl::RunningNode() {
  if (!node) return LiveStatusFile(dir);
  try {
    return ParseStatusDocument(node->StatusJson());
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Result<LibraryStats> Engine::Stats() {
  MutexLock lock(impl_->mu);
  Library& lib = *impl_->lib;
  ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
  ES_ASSIGN_OR_RETURN(auto locations, lib.ListLocations(std::nullopt));
  LibraryStats out;
  out.library_id = lib.library_id();
  out.schema_version = lib.schema_version();
  ES_ASSIGN_OR_RETURN(out.rows_applied_total, lib.RowsAppliedTotal());
  for (const auto& d : devices) {
    ES_ASSIGN_OR_RETURN(uint64_t live, lib.CountEntries(d.id, false));
    ES_ASSIGN_OR_RETURN(uint64_t all, lib.CountEntries(d.id, true));
    ES_ASSIGN_OR_RETURN(Seq stored, lib.MaxStoredSeq(d.id));
    ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(d.id));
    OwnerStats o{.uuid = d.uuid,
                 .name = d.name,
                 .is_local = d.is_local,
                 .entries = live,
                 .tombstones = all - live,
                 .max_seq = stored,
                 .epoch = d.is_local ? d.epoch : (wm ? wm->epoch : d.epoch),
                 .watermark = wm ? std::optional<Seq>(wm->seq) : std::nullopt,
                 .locations = {}};
    for (const auto& l : locations) {
      if (l.owner != d.id) continue;
      ES_ASSIGN_OR_RETURN(auto rows, lib.LoadLocationEntries(l.id, false));
      o.locations.push_back({.uuid = l.record.uuid, .root_path = l.record.root_path, .entries = rows.size()});
    }
    out.owners.push_back(std::move(o));
  }
  return out;
}

Result<LibraryStatus> Engine::GetStatus() {
  MutexLock lock(impl_->mu);
  Library& lib = *impl_->lib;
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib.LocalDevice());
  LibraryStatus out;
  out.device_name = me.name;
  out.library_id = lib.library_id();
  ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
  for (const auto& d : devices) {
    ES_ASSIGN_OR_RETURN(uint64_t live, lib.CountEntries(d.id, false));
    OwnerStatus o;
    o.uuid = d.uuid;
    o.name = d.name;
    o.is_local = d.is_local;
    o.paired = d.trusted && !d.is_local;
    o.entries = live;
    if (d.is_local) {
      o.epoch = d.epoch;
      o.max_seq = d.max_seq;
    } else {
      ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(d.id));
      if (!wm && live == 0 && !d.trusted) continue;
      if (wm) o.watermark = Watermark{wm->epoch, wm->seq, wm->verified_seq};
    }
    out.owners.push_back(std::move(o));
  }
  out.daemon = impl_->RunningNode();
  return out;
}

Status Engine::Export(const Uuid& owner, const std::function<void(std::string_view line)>& line) {
  MutexLock lock(impl_->mu);
  ES_ASSIGN_OR_RETURN(DeviceInfo o, impl_->OwnerRow(owner));
  return ExportOwner(*impl_->lib, o.id, [&line](const std::string& l) { line(l); });
}

Result<OwnerDigest> Engine::Digest(const Uuid& owner) {
  MutexLock lock(impl_->mu);
  ES_ASSIGN_OR_RETURN(DeviceInfo o, impl_->OwnerRow(owner));
  ES_ASSIGN_OR_RETURN(auto d, DigestOwner(*impl_->lib, o.id));
  return OwnerDigest{.sha256 = d.sha256_hex, .entries = d.entries, .live = d.live};
}

}  // namespace entrysync
