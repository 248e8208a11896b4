#include "cli/commands.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/event_bus.h"
#include "cli/output.h"
#include "index/indexer.h"
#include "node/node.h"
#include "snapshot/snapshot.h"
#include "store/export.h"
#include "store/library.h"
#include "store/transaction_manager.h"

namespace entrysync::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

Result<std::string> Globals::LibraryDir() const {
  if (!library.empty()) return library;
  const char* env = std::getenv("ENTRYSYNC_LIBRARY");
  if (env != nullptr && *env != '\0') return std::string(env);
  return InvalidArgument("no library given: pass --library DIR or set ENTRYSYNC_LIBRARY");
}

namespace {

Result<std::unique_ptr<Library>> OpenLibrary(const Globals& g) {
  ES_ASSIGN_OR_RETURN(std::string dir, g.LibraryDir());
  return Library::Open(dir);
}

// The owner selected by --device NAME, or this device.
Result<DeviceInfo> SelectDevice(Library& lib, const std::string& name) {
  if (name.empty()) return lib.LocalDevice();
  auto d = lib.FindDeviceByName(name);
  if (!d.ok() && d.status().code() == Code::kNotFound)
    return NotFound("no device named '" + name + "' in this library (see 'entrysync peer list')");
  return d;
}

std::string Lexical(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  return (ec ? fs::path(path) : abs).lexically_normal().string();
}

// The location of `owner` whose root contains `path`, and the path's
// components below that root.
Result<std::pair<LocationInfo, std::vector<std::string>>> ResolvePath(Library& lib, DeviceRowId owner,
                                                                      std::string path) {
  ES_ASSIGN_OR_RETURN(auto locations, lib.ListLocations(owner));
  if (path.size() > 1 && path.back() == '/') path.pop_back();
  const LocationInfo* best = nullptr;
  for (const auto& l : locations) {
    const std::string& root = l.record.root_path;
    bool inside = path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                                   (path[root.size()] == '/' || root == "/"));
    if (inside && (!best || root.size() > best->record.root_path.size())) best = &l;
  }
  if (!best) return NotFound(path + " is not inside any location of this device");
  std::vector<std::string> parts;
  std::string rest = path.substr(best->record.root_path.size());
  size_t i = 0;
  while (i < rest.size()) {
    size_t j = rest.find('/', i);
    if (j == std::string::npos) j = rest.size();
    if (j > i) parts.push_back(rest.substr(i, j - i));
    i = j + 1;
  }
  return std::make_pair(*best, parts);
}

void PrintIndexReport(const IndexReport& r, const char* verb) {
  std::printf("%s %s: %llu entries (%llu added, %llu modified, %llu deleted, %llu unchanged), max seq %lld\n",
              verb, r.location.record.root_path.c_str(), (unsigned long long)r.entries,
              (unsigned long long)r.added, (unsigned long long)r.modified, (unsigned long long)r.deleted,
              (unsigned long long)r.unchanged, (long long)r.max_seq.value());
  double rate = r.walk_seconds > 0 ? r.entries / r.walk_seconds : 0;
  std::printf("  walk %.2fs (%s entries/s), commit %.2fs as %s\n", r.walk_seconds, HumanCount(rate).c_str(),
              r.commit_seconds, r.bulk ? "one bulk commit" : "individual changes");
  for (const auto& e : r.errors) std::fprintf(stderr, "entrysync: warning: %s\n", e.c_str());
}

IndexOptions ProgressOptions(ProgressLine* line) {
  IndexOptions o;
  o.progress = [line](uint64_t n) { line->Update(n, 0); };
  return o;
}

// ---- init ----
std::function<Status()> AddInit(CLI::App& app, Globals& g) {
  auto* sub = app.add_subcommand("init", "Create a new library and this device's identity");
  auto name = std::make_shared<std::string>();
  auto join = std::make_shared<std::string>();
  sub->add_option("--name", *name, "This device's name")->required();
  sub->add_option("--join", *join, "Library id to join (from 'entrysync id' on another device)");
  return [&g, name, join]() -> Status {
    ES_ASSIGN_OR_RETURN(std::string dir, g.LibraryDir());
    std::optional<Uuid> lib_id;
    if (!join->empty()) {
      lib_id = Uuid::Parse(*join);
      if (!lib_id) return InvalidArgument("--join: '" + *join + "' is not a library id");
    }
    ES_ASSIGN_OR_RETURN(auto lib, Library::Create(dir, *name, lib_id));
    ES_ASSIGN_OR_RETURN(Identity id, EnsureIdentity(*lib));
    std::printf("created library %s in %s, device '%s'\ndevice id %s\n", lib->library_id().ToString().c_str(),
                dir.c_str(), name->c_str(), id.device_id().ToString().c_str());
    return Status::Ok();
  };
}

// ---- location add / list ----
std::vector<Command> AddLocation(CLI::App& app, Globals& g) {
  auto* loc = app.add_subcommand("location", "Manage indexed folders");
  loc->require_subcommand(1);
  auto* add = loc->add_subcommand("add", "Index a folder as a new location (progress on a terminal)");
  auto path = std::make_shared<std::string>();
  add->add_option("PATH", *path, "Folder to index")->required();
  auto* list = loc->add_subcommand("list", "List locations");
  std::vector<Command> out;
  out.push_back({add, [&g, path]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
                   EventBus bus;
                   TransactionManager tm(*lib, bus);
                   Indexer ix(*lib, tm, DefaultEnv());
                   ProgressLine line("indexing");
                   auto r = ix.AddLocation(*path, ProgressOptions(&line));
                   line.Finish();
                   if (!r.ok()) return r.status().Wrap("location add " + *path);
                   PrintIndexReport(*r, "indexed");
                   return Status::Ok();
                 }});
  out.push_back({list, [&g]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(auto devices, lib->ListDevices());
                   ES_ASSIGN_OR_RETURN(auto locations, lib->ListLocations(std::nullopt));
                   for (const auto& l : locations) {
                     std::string owner = "?";
                     for (const auto& d : devices)
                       if (d.id == l.owner) owner = d.name;
                     std::printf("%s\t%s\t%s\n", l.record.uuid.ToString().c_str(), owner.c_str(),
                                 l.record.root_path.c_str());
                   }
                   return Status::Ok();
                 }});
  return out;
}

// ---- rescan ----
std::function<Status()> AddRescan(CLI::App& app, Globals& g) {
  auto* sub = app.add_subcommand("rescan", "Rescan locations for added, changed and removed files");
  auto path = std::make_shared<std::string>();
  sub->add_option("PATH", *path, "A location (default: every location of this device)");
  return [&g, path]() -> Status {
    ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
    EventBus bus;
    TransactionManager tm(*lib, bus);
    Indexer ix(*lib, tm, DefaultEnv());
    std::vector<LocationInfo> targets;
    if (path->empty()) {
      ES_ASSIGN_OR_RETURN(targets, lib->ListLocations(lib->local_device()));
    } else {
      auto real = DefaultEnv()->RealPath(*path);
      ES_ASSIGN_OR_RETURN(auto found,
                          ResolvePath(*lib, lib->local_device(), real.ok() ? *real : Lexical(*path)));
      targets.push_back(found.first);
    }
    if (targets.empty()) return NotFound("this device has no locations (see 'entrysync location add')");
    for (const auto& loc : targets) {
      ProgressLine line("rescanning " + loc.record.root_path);
      auto r = ix.Rescan(loc, ProgressOptions(&line));
      line.Finish();
      if (!r.ok()) return r.status().Wrap("rescan " + loc.record.root_path);
      PrintIndexReport(*r, "rescanned");
    }
    return Status::Ok();
  };
}

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

// Lazy loading: when a folder of a remote owner is not held here (and the
// owner is not fully replicated), asks a peer for the entries along the
// path and the folder's children, and keeps them. The owner itself is
// asked first, then every other paired peer with an address.
Status LoadOnDemand(Library& lib, const DeviceInfo& owner, const std::string& path, bool refresh) {
  ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(owner.id));
  bool replicated = wm && wm->seq.value() > 0;
  if (!refresh && (replicated || HeldHere(lib, owner, path))) return Status::Ok();
  ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
  std::vector<DeviceInfo> peers;
  for (const auto& d : devices)
    if (!d.is_local && d.trusted && d.device_id && !d.addr.empty()) peers.push_back(d);
  std::stable_partition(peers.begin(), peers.end(), [&](const DeviceInfo& d) { return d.id == owner.id; });
  if (peers.empty()) {
    if (HeldHere(lib, owner, path)) return Status::Ok();
    return NotFound(path + " of " + owner.name + " is not loaded and no peer has an address to load it from");
  }
  NodeOptions o;
  o.library_dir = lib.dir();
  o.dial_peers = false;
  o.write_status = false;
  o.sync.auto_fetch = false;
  ES_ASSIGN_OR_RETURN(auto node, Node::Open(o));
  ES_RETURN_IF_ERROR(node->Start());
  Status last = NotFound("no peer could load " + path);
  for (const auto& p : peers) {
    auto s = node->Connect(p);
    if (!s.ok()) {
      last = s.status();
      continue;
    }
    std::promise<Status> result;
    auto future = result.get_future();
    (*s)->RequestPath(owner.uuid, path, [&result](Status st) { result.set_value(st); });
    if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      last = Aborted("loading " + path + " from " + p.name + " timed out");
      continue;
    }
    last = future.get();
    if (last.ok() || last.code() == Code::kNotFound) break;
  }
  node->Stop();
  if (!last.ok() && HeldHere(lib, owner, path)) return Status::Ok();  // show what is held
  return last;
}

// ---- ls ----
std::function<Status()> AddLs(CLI::App& app, Globals& g) {
  auto* sub = app.add_subcommand("ls", "List the indexed children of a folder");
  auto path = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>();
  sub->add_option("PATH", *path, "Folder (on the device's own filesystem); default: list locations");
  sub->add_option("--device", *device, "Browse another device's entries (loaded on demand from a peer)");
  auto refresh = std::make_shared<bool>(false);
  sub->add_flag("--refresh", *refresh, "Load the folder from a peer even if it is held here");
  return [&g, path, device, refresh]() -> Status {
    ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
    ES_ASSIGN_OR_RETURN(DeviceInfo owner, SelectDevice(*lib, *device));
    if (!owner.is_local && !path->empty()) ES_RETURN_IF_ERROR(LoadOnDemand(*lib, owner, *path, *refresh));
    if (path->empty()) {
      ES_ASSIGN_OR_RETURN(auto locations, lib->ListLocations(owner.id));
      for (const auto& l : locations) std::printf("%s/\n", l.record.root_path.c_str());
      return Status::Ok();
    }
    std::string p = owner.is_local ? Lexical(*path) : *path;
    ES_ASSIGN_OR_RETURN(auto found, ResolvePath(*lib, owner.id, p));
    auto root = lib->LocationRoot(found.first.id);
    if (!root.ok()) return NotFound(p + " is not indexed yet");
    EntryRecord cur = *root;
    for (const auto& part : found.second) {
      ES_ASSIGN_OR_RETURN(auto children, lib->ListChildren(cur.uuid));
      bool hit = false;
      for (auto& c : children)
        if (c.name == part) {
          cur = std::move(c);
          hit = true;
          break;
        }
      if (!hit) return NotFound(p + ": no such entry in the index");
    }
    if (cur.kind != EntryKind::kDir) {
      std::printf("%s\t%llu\t%s\n", EntryKindName(cur.kind), (unsigned long long)cur.size, cur.name.c_str());
      return Status::Ok();
    }
    ES_ASSIGN_OR_RETURN(auto children, lib->ListChildren(cur.uuid));
    for (const auto& c : children)
      std::printf("%s\t%llu\t%s%s\n", EntryKindName(c.kind), (unsigned long long)c.size, c.name.c_str(),
                  c.kind == EntryKind::kDir ? "/" : "");
    return Status::Ok();
  };
}

// ---- export / digest ----
std::vector<Command> AddExport(CLI::App& app, Globals& g) {
  auto* exp = app.add_subcommand("export", "Print one owner's entries in canonical form, sorted by uuid");
  auto device = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("tsv");
  exp->add_option("--device", *device, "Owner (default: this device)");
  exp->add_option("--format", *format, "Output format")->check(CLI::IsMember({"tsv"}));
  auto* dig = app.add_subcommand("digest", "Print a SHA-256 digest of one owner's canonical entries");
  auto ddevice = std::make_shared<std::string>();
  dig->add_option("--device", *ddevice, "Owner (default: this device)");
  std::vector<Command> out;
  out.push_back({exp, [&g, device, format]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(DeviceInfo owner, SelectDevice(*lib, *device));
                   std::string buf;
                   Status s = ExportOwner(*lib, owner.id, [&](const std::string& line) {
                     buf += line;
                     buf += '\n';
                     if (buf.size() > (1 << 16)) {
                       std::fwrite(buf.data(), 1, buf.size(), stdout);
                       buf.clear();
                     }
                   });
                   std::fwrite(buf.data(), 1, buf.size(), stdout);
                   return s;
                 }});
  out.push_back({dig, [&g, ddevice]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(DeviceInfo owner, SelectDevice(*lib, *ddevice));
                   ES_ASSIGN_OR_RETURN(Digest d, DigestOwner(*lib, owner.id));
                   std::printf("%s  %s  %llu entries (%llu live)\n", d.sha256_hex.c_str(), owner.name.c_str(),
                               (unsigned long long)d.entries, (unsigned long long)d.live);
                   return Status::Ok();
                 }});
  return out;
}

// ---- stats ----
std::function<Status()> AddStats(CLI::App& app, Globals& g) {
  auto* sub = app.add_subcommand("stats", "Counts per owner and location, max seq, epoch");
  auto as_json = std::make_shared<bool>(false);
  sub->add_flag("--json", *as_json, "Print JSON");
  return [&g, as_json]() -> Status {
    ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
    ES_ASSIGN_OR_RETURN(auto devices, lib->ListDevices());
    ES_ASSIGN_OR_RETURN(auto locations, lib->ListLocations(std::nullopt));
    json out;
    out["library_id"] = lib->library_id().ToString();
    out["schema_version"] = lib->schema_version();
    ES_ASSIGN_OR_RETURN(uint64_t applied, lib->RowsAppliedTotal());
    out["rows_applied_total"] = applied;
    out["owners"] = json::array();
    for (const auto& d : devices) {
      ES_ASSIGN_OR_RETURN(uint64_t live, lib->CountEntries(d.id, false));
      ES_ASSIGN_OR_RETURN(uint64_t all, lib->CountEntries(d.id, true));
      ES_ASSIGN_OR_RETURN(Seq stored, lib->MaxStoredSeq(d.id));
      ES_ASSIGN_OR_RETURN(auto wm, lib->GetWatermark(d.id));
      json o{{"name", d.name},
             {"uuid", d.uuid.ToString()},
             {"local", d.is_local},
             {"entries", live},
             {"tombstones", all - live},
             {"max_seq", stored.value()},
             {"epoch", d.is_local ? d.epoch.value() : (wm ? wm->epoch.value() : d.epoch.value())}};
      if (wm) o["watermark"] = wm->seq.value();
      o["locations"] = json::array();
      for (const auto& l : locations) {
        if (l.owner != d.id) continue;
        ES_ASSIGN_OR_RETURN(auto rows, lib->LoadLocationEntries(l.id, false));
        o["locations"].push_back(
            {{"uuid", l.record.uuid.ToString()}, {"root", l.record.root_path}, {"entries", rows.size()}});
      }
      out["owners"].push_back(o);
    }
    if (*as_json) {
      std::cout << out.dump(2) << "\n";
      return Status::Ok();
    }
    std::printf("library %s (schema v%d)\n", out["library_id"].get<std::string>().c_str(),
                lib->schema_version());
    for (const auto& o : out["owners"]) {
      std::printf("%s%s: %llu entries, %llu tombstones, max seq %lld, epoch %016llx\n",
                  o["name"].get<std::string>().c_str(), o["local"].get<bool>() ? " (this device)" : "",
                  (unsigned long long)o["entries"].get<uint64_t>(),
                  (unsigned long long)o["tombstones"].get<uint64_t>(), (long long)o["max_seq"].get<int64_t>(),
                  (unsigned long long)o["epoch"].get<uint64_t>());
      for (const auto& l : o["locations"])
        std::printf("  %s: %llu entries\n", l["root"].get<std::string>().c_str(),
                    (unsigned long long)l["entries"].get<uint64_t>());
    }
    return Status::Ok();
  };
}

// ---- id ----
std::function<Status()> AddId(CLI::App& app, Globals& g) {
  auto* sub = app.add_subcommand("id", "Print this device's id and the library id (give both to peers)");
  auto as_json = std::make_shared<bool>(false);
  sub->add_flag("--json", *as_json, "Print JSON");
  return [&g, as_json]() -> Status {
    ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
    ES_ASSIGN_OR_RETURN(Identity id, EnsureIdentity(*lib));
    ES_ASSIGN_OR_RETURN(DeviceInfo me, lib->LocalDevice());
    json out{{"device_id", id.device_id().ToString()},
             {"library_id", lib->library_id().ToString()},
             {"device_uuid", me.uuid.ToString()},
             {"name", me.name}};
    if (*as_json) {
      std::cout << out.dump() << "\n";
    } else {
      std::printf("device    %s (%s)\nlibrary   %s\n", id.device_id().ToString().c_str(), me.name.c_str(),
                  lib->library_id().ToString().c_str());
    }
    return Status::Ok();
  };
}

// ---- peer add / list / remove ----
std::vector<Command> AddPeer(CLI::App& app, Globals& g) {
  auto* peer = app.add_subcommand("peer", "Pair with other devices of this library");
  peer->require_subcommand(1);
  auto* add = peer->add_subcommand("add", "Pair a device (do it on both devices)");
  auto name = std::make_shared<std::string>();
  auto id = std::make_shared<std::string>();
  auto addr = std::make_shared<std::string>();
  add->add_option("--name", *name, "A name for the peer")->required();
  add->add_option("--id", *id, "The peer's device id ('entrysync id' on the peer)")->required();
  add->add_option("--addr", *addr, "HOST:PORT where the peer listens (omit if it dials us)");
  auto* list = peer->add_subcommand("list", "List paired devices");
  auto* rm = peer->add_subcommand("remove", "Unpair a device (its replicated entries stay)");
  auto rm_name = std::make_shared<std::string>();
  rm->add_option("NAME", *rm_name, "Peer name")->required();
  std::vector<Command> out;
  out.push_back({add, [&g, name, id, addr]() -> Status {
                   auto dev = DeviceId::Parse(*id);
                   if (!dev || dev->is_zero())
                     return InvalidArgument("--id: '" + *id + "' is not a device id (64 hex digits)");
                   if (!addr->empty()) ES_RETURN_IF_ERROR(ParseHostPort(*addr).status().Wrap("--addr"));
                   ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
                   ES_RETURN_IF_ERROR(EnsureIdentity(*lib).status());
                   ES_RETURN_IF_ERROR(lib->AddPeer(*name, *dev, *addr).status());
                   std::printf("paired %s (%s)%s\n", name->c_str(), ShortDeviceId(*dev).c_str(),
                               addr->empty() ? "" : (" at " + *addr).c_str());
                   return Status::Ok();
                 }});
  out.push_back({list, [&g]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(auto devices, lib->ListDevices());
                   for (const auto& d : devices) {
                     if (d.is_local || !d.device_id) continue;
                     std::printf("%s\t%s\t%s\t%s\n", d.name.c_str(), d.device_id->ToString().c_str(),
                                 d.addr.empty() ? "-" : d.addr.c_str(), d.trusted ? "paired" : "unpaired");
                   }
                   return Status::Ok();
                 }});
  out.push_back({rm, [&g, rm_name]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
                   ES_RETURN_IF_ERROR(lib->RemovePeer(*rm_name));
                   std::printf("unpaired %s\n", rm_name->c_str());
                   return Status::Ok();
                 }});
  return out;
}

// Options shared by serve and sync.
struct SyncFlags {
  std::string strategy = "auto";
  uint32_t batch = 1000;
  std::string codec = "zstd";
  std::string fetch = "background";
  double rate_limit_mb = 0;
  uint64_t snapshot_threshold = SyncConfig{}.snapshot_threshold;
  uint64_t change_threshold = SyncConfig{}.change_threshold;
  uint64_t bulk_threshold = SyncConfig{}.bulk_threshold;
};

void AddSyncFlags(CLI::App* sub, SyncFlags* f) {
  sub->add_option("--strategy", f->strategy, "How to pull: auto|change|batch|bulk|snapshot")
      ->check(CLI::IsMember({"auto", "change", "batch", "bulk", "snapshot"}));
  sub->add_option("--batch-records", f->batch, "Records per StateBatch")->check(CLI::Range(1, 100000));
  sub->add_option("--codec", f->codec, "Batch compression: zstd|gzip|none")
      ->check(CLI::IsMember({"zstd", "gzip", "none"}));
  sub->add_option(
         "--fetch", f->fetch,
         "What to pull: background (everything peers announce) or lazy (only folders browsed with ls)")
      ->check(CLI::IsMember({"background", "lazy"}));
  sub->add_option("--rate-limit", f->rate_limit_mb, "Most MB/s a pull may take (0 = no limit)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--change-threshold", f->change_threshold, "At most this many rows go as StateChanges");
  sub->add_option("--snapshot-threshold", f->snapshot_threshold,
                  "A peer holding nothing of an owner this large gets a snapshot");
  sub->add_option("--bulk-threshold", f->bulk_threshold,
                  "A delta this large on top of held rows is fetched in pages in the background");
}

SyncConfig ToConfig(const SyncFlags& f) {
  SyncConfig c;
  c.forced = *ParseStrategy(f.strategy);
  c.batch_records = f.batch;
  c.codec = f.codec == "gzip" ? Codec::kGzip : f.codec == "none" ? Codec::kNone : Codec::kZstd;
  c.auto_fetch = f.fetch != "lazy";
  c.fetch_rate_limit = static_cast<uint64_t>(f.rate_limit_mb * 1e6);
  c.change_threshold = f.change_threshold;
  c.snapshot_threshold = f.snapshot_threshold;
  c.bulk_threshold = f.bulk_threshold;
  return c;
}

// Blocks SIGINT/SIGTERM in every thread started after it; WaitForStop
// then returns when one arrives.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// ---- serve ----
std::function<Status()> AddServe(CLI::App& app, Globals& g) {
  auto* sub =
      app.add_subcommand("serve", "Run the daemon: accept paired peers, dial known ones, sync continuously");
  auto listen = std::make_shared<std::string>();
  auto flags = std::make_shared<SyncFlags>();
  sub->add_option("--listen", *listen, "HOST:PORT to accept peers on (e.g. 127.0.0.1:7000)");
  AddSyncFlags(sub, flags.get());
  return [&g, listen, flags]() -> Status {
    ES_ASSIGN_OR_RETURN(std::string dir, g.LibraryDir());
    if (!listen->empty()) ES_RETURN_IF_ERROR(ParseHostPort(*listen).status().Wrap("--listen"));
    sigset_t stop = BlockStopSignals();
    NodeOptions o;
    o.library_dir = dir;
    o.listen = *listen;
    o.sync = ToConfig(*flags);
    ES_ASSIGN_OR_RETURN(auto node, Node::Open(o));
    ES_RETURN_IF_ERROR(node->Start());
    int sig = 0;
    sigwait(&stop, &sig);
    spdlog::info("stopping on signal {}", sig);
    node->Stop();
    return Status::Ok();
  };
}

// ---- sync ----
std::function<Status()> AddSync(CLI::App& app, Globals& g) {
  auto* sub =
      app.add_subcommand("sync", "Connect to a peer, exchange until both are current, print a summary");
  auto peer = std::make_shared<std::string>();
  auto timeout = std::make_shared<double>(0);
  auto flags = std::make_shared<SyncFlags>();
  auto as_json = std::make_shared<bool>(false);
  sub->add_option("--peer", *peer, "Peer name (see 'entrysync peer list')")->required();
  sub->add_option("--timeout", *timeout, "Give up after this many seconds (0 = never)");
  sub->add_flag("--json", *as_json, "Print the summary as JSON");
  auto verbose = std::make_shared<bool>(false);
  sub->add_flag("-v,--verbose", *verbose, "Log what the session does on stderr (strategy chosen and why)");
  AddSyncFlags(sub, flags.get());
  return [&g, peer, timeout, flags, as_json, verbose]() -> Status {
    // One-shot: the summary (or one error line) is the output; the log is opt-in.
    if (!*verbose) spdlog::set_level(spdlog::level::off);
    ES_ASSIGN_OR_RETURN(std::string dir, g.LibraryDir());
    std::optional<DeviceInfo> target;
    {
      ES_ASSIGN_OR_RETURN(auto lib, Library::Open(dir));
      auto d = lib->FindDeviceByName(*peer);
      if (!d.ok() || d->is_local || !d->trusted)
        return NotFound("no paired peer named '" + *peer + "' (see 'entrysync peer list')");
      target = *d;
    }
    NodeOptions o;
    o.library_dir = dir;
    o.dial_peers = false;
    o.write_status = false;
    o.sync = ToConfig(*flags);
    ES_ASSIGN_OR_RETURN(auto node, Node::Open(o));
    ES_RETURN_IF_ERROR(node->Start());
    auto t0 = std::chrono::steady_clock::now();
    auto session = node->Connect(*target);
    if (!session.ok()) {
      node->Stop();
      return session.status();
    }
    std::shared_ptr<Session> s = *session;
    ProgressLine line("syncing with " + *peer);
    for (;;) {
      SessionSnapshot snap = s->Snapshot();
      uint64_t done = 0, total = 0;
      for (const auto& t : snap.transfers)
        if (t.pulling) {
          done += t.done;
          total += t.total;
        }
      line.Update(done, total, snap.wire_received);
      if (s->BothCurrent() || s->closed()) break;
      double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (*timeout > 0 && elapsed > *timeout) {
        line.Finish();
        node->Stop();
        return Aborted("sync with " + *peer + " did not finish within " + std::to_string((int)*timeout) +
                       "s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    line.Finish();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    SessionSnapshot snap = s->Snapshot();
    bool ok = s->BothCurrent();
    Status why = s->close_status();
    node->Stop();
    if (!ok) return why.Wrap("sync with " + *peer);
    double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (*as_json) {
      json out{{"peer", *peer},
               {"seconds", secs},
               {"rows_applied", snap.counters.rows_applied},
               {"rows_sent", snap.counters.rows_sent},
               {"wire_received", snap.wire_received},
               {"wire_sent", snap.wire_sent},
               {"snapshots_imported", snap.counters.snapshots_imported},
               {"transfers", json::array()}};
      for (const auto& t : snap.transfers)
        out["transfers"].push_back({{"direction", t.pulling ? "pull" : "serve"},
                                    {"owner", t.owner_name},
                                    {"strategy", StrategyName(t.strategy)},
                                    {"done", t.done},
                                    {"total", t.total},
                                    {"bytes", t.bytes},
                                    {"seconds", (t.finished > 0 ? t.finished : now) - t.started}});
      std::cout << out.dump() << "\n";
      return Status::Ok();
    }
    for (const auto& t : snap.transfers) {
      if (t.done == 0 && t.total == 0) continue;
      std::printf("%s %llu rows of %s as %s in %.2fs (%s rows/s)\n", t.pulling ? "pulled" : "served",
                  (unsigned long long)t.done, t.owner_name.c_str(), StrategyName(t.strategy),
                  (t.finished > 0 ? t.finished : now) - t.started, HumanCount(t.Rate(now)).c_str());
    }
    std::printf("synced with %s in %.2fs: %llu rows applied, %llu sent; wire %s in, %s out\n", peer->c_str(),
                secs, (unsigned long long)snap.counters.rows_applied,
                (unsigned long long)snap.counters.rows_sent, HumanBytes(snap.wire_received).c_str(),
                HumanBytes(snap.wire_sent).c_str());
    return Status::Ok();
  };
}

// ---- status ----
// The status document of a `serve` running on the library in `dir`, or null
// when none runs. A daemon killed with SIGKILL leaves its last status behind:
// it is believed only while its process lives and it was written recently.
json LiveDaemonStatus(const std::string& dir) {
  std::ifstream f(fs::path(dir) / "status.json");
  if (!f) return nullptr;
  try {
    json daemon = json::parse(f);
    int pid = daemon.value("pid", 0);
    int64_t age = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count() -
                  daemon.value("updated_ms", int64_t{0});
    if (pid <= 0 || kill(pid, 0) != 0 || age > 5000) return nullptr;
    return daemon;
  } catch (const std::exception&) {
    return nullptr;
  }
}

std::function<Status()> AddStatus(CLI::App& app, Globals& g) {
  auto* sub =
      app.add_subcommand("status", "What this device holds of each owner, and the daemon's transfers");
  auto as_json = std::make_shared<bool>(false);
  sub->add_flag("--json", *as_json, "Print JSON");
  return [&g, as_json]() -> Status {
    ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
    json out;
    ES_ASSIGN_OR_RETURN(DeviceInfo me, lib->LocalDevice());
    out["device"] = me.name;
    out["library_id"] = lib->library_id().ToString();
    out["owners"] = json::array();
    ES_ASSIGN_OR_RETURN(auto devices, lib->ListDevices());
    for (const auto& d : devices) {
      ES_ASSIGN_OR_RETURN(uint64_t live, lib->CountEntries(d.id, false));
      json o{{"name", d.name}, {"uuid", d.uuid.ToString()}, {"entries", live}};
      if (d.is_local) {
        o["local"] = true;
        o["epoch"] = d.epoch.value();
        o["max_seq"] = d.max_seq.value();
      } else {
        ES_ASSIGN_OR_RETURN(auto wm, lib->GetWatermark(d.id));
        if (!wm && live == 0 && !d.trusted) continue;
        o["paired"] = d.trusted;
        o["watermark"] = wm ? json{{"epoch", wm->epoch.value()}, {"seq", wm->seq.value()}} : json(nullptr);
      }
      out["owners"].push_back(o);
    }
    json daemon = LiveDaemonStatus(lib->dir());
    out["daemon"] = daemon;
    if (*as_json) {
      std::cout << out.dump(2) << "\n";
      return Status::Ok();
    }
    std::printf("%s: library %s\n", me.name.c_str(), out["library_id"].get<std::string>().c_str());
    for (const auto& o : out["owners"]) {
      std::printf("  %-12s %10llu entries", o["name"].get<std::string>().c_str(),
                  (unsigned long long)o["entries"].get<uint64_t>());
      if (o.contains("max_seq"))
        std::printf("  (this device, seq %lld)", (long long)o["max_seq"].get<int64_t>());
      else if (!o["watermark"].is_null())
        std::printf("  (have up to seq %lld)", (long long)o["watermark"]["seq"].get<int64_t>());
      std::printf("\n");
    }
    if (daemon.is_null()) {
      std::printf("daemon: not running\n");
      return Status::Ok();
    }
    std::printf("daemon: pid %d, port %d\n", daemon["pid"].get<int>(), daemon["listen_port"].get<int>());
    for (const auto& s : daemon["sessions"]) {
      std::printf("  peer %s (%s): %s, %s in, %s out\n", s["peer"].get<std::string>().c_str(),
                  s["address"].get<std::string>().c_str(), s["state"].get<std::string>().c_str(),
                  HumanBytes(s["wire_received"].get<double>()).c_str(),
                  HumanBytes(s["wire_sent"].get<double>()).c_str());
      for (const auto& t : s["transfers"]) {
        if (t["state"] == "finished") continue;
        std::printf(
            "    %s %s: %llu/%llu (%s/s, ETA %.0fs) as %s\n", t["direction"].get<std::string>().c_str(),
            t["owner"].get<std::string>().c_str(), (unsigned long long)t["done"].get<uint64_t>(),
            (unsigned long long)t["total"].get<uint64_t>(), HumanCount(t["rate"].get<double>()).c_str(),
            t["eta_s"].get<double>(), t["strategy"].get<std::string>().c_str());
      }
    }
    return Status::Ok();
  };
}

// ---- snapshot export / import / inspect ----

std::string EpochHex(Epoch e) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(e.value()));
  return buf;
}

json SnapshotJson(const SnapshotInfo& i) {
  return json{{"owner", i.owner_name},
              {"owner_uuid", i.owner.ToString()},
              {"library_id", i.library_id.ToString()},
              {"exported_by", i.exported_by.ToString()},
              {"epoch", i.epoch.value()},
              {"max_seq", i.max_seq.value()},
              {"entries", i.entries},
              {"locations", i.locations},
              {"size_bytes", i.size_bytes},
              {"sha256", i.sha256}};
}

// "1 location", "2 locations".
std::string Count(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// FILE arguments reach SQLite as absolute paths: the system SQLite may be
// built with URI filenames on, and a relative "file:x" would be a URI.
std::vector<Command> AddSnapshot(CLI::App& app, Globals& g) {
  auto* snap = app.add_subcommand("snapshot", "Export, import or inspect one owner's index as a SQLite file");
  snap->require_subcommand(1);

  auto* exp = snap->add_subcommand("export", "Write one owner's snapshot to FILE (atomically)");
  auto exp_file = std::make_shared<std::string>();
  auto exp_device = std::make_shared<std::string>();
  auto exp_json = std::make_shared<bool>(false);
  exp->add_option("FILE", *exp_file, "Snapshot file to write (replaced if it exists)")->required();
  exp->add_option("--device", *exp_device, "Owner (default: this device)");
  exp->add_flag("--json", *exp_json, "Print the summary as JSON");

  auto* imp = snap->add_subcommand(
      "import", "Replace what this library holds of a snapshot's owner with the snapshot (all or nothing)");
  auto imp_file = std::make_shared<std::string>();
  auto imp_sha = std::make_shared<std::string>();
  auto imp_json = std::make_shared<bool>(false);
  imp->add_option("FILE", *imp_file, "Snapshot file")->required();
  imp->add_option("--sha256", *imp_sha,
                  "The SHA-256 'snapshot export' printed: the file must match it (which implies the row "
                  "checksum)");
  imp->add_flag("--json", *imp_json, "Print the summary as JSON");

  auto* ins =
      snap->add_subcommand("inspect", "Check a snapshot file and print what it holds (needs no library)");
  auto ins_file = std::make_shared<std::string>();
  auto ins_json = std::make_shared<bool>(false);
  ins->add_option("FILE", *ins_file, "Snapshot file")->required();
  ins->add_flag("--json", *ins_json, "Print JSON");

  std::vector<Command> out;
  out.push_back(
      {exp, [&g, exp_file, exp_device, exp_json]() -> Status {
         ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
         ES_ASSIGN_OR_RETURN(DeviceInfo owner, SelectDevice(*lib, *exp_device));
         auto t0 = std::chrono::steady_clock::now();
         ES_ASSIGN_OR_RETURN(SnapshotInfo info, ExportSnapshot(*lib, owner.id, Lexical(*exp_file)));
         double secs = SecondsSince(t0);
         if (*exp_json) {
           json o = SnapshotJson(info);
           o["file"] = *exp_file;
           o["seconds"] = secs;
           std::cout << o.dump() << "\n";
           return Status::Ok();
         }
         std::printf(
             "exported %s to %s: %s, %s, epoch %s, max seq %lld, %llu bytes, sha256 %s, %.2fs\n",
             info.owner_name.c_str(), exp_file->c_str(), Count(info.entries, "entry", "entries").c_str(),
             Count(info.locations, "location", "locations").c_str(), EpochHex(info.epoch).c_str(),
             (long long)info.max_seq.value(), (unsigned long long)info.size_bytes, info.sha256.c_str(), secs);
         return Status::Ok();
       }});
  out.push_back(
      {imp, [&g, imp_file, imp_sha, imp_json]() -> Status {
         std::optional<std::string> expected;
         if (!imp_sha->empty()) {
           if (imp_sha->size() != 64 ||
               imp_sha->find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
             return InvalidArgument("--sha256: '" + *imp_sha + "' is not a SHA-256 (64 hex digits)");
           expected = *imp_sha;
         }
         ES_ASSIGN_OR_RETURN(auto lib, OpenLibrary(g));
         // A running daemon caches the local row ids of the locations it writes
         // to; an import renumbers the owner's locations under its feet.
         json daemon = LiveDaemonStatus(lib->dir());
         if (!daemon.is_null())
           return Aborted("a daemon is running on this library (pid " +
                          std::to_string(daemon.value("pid", 0)) + "): stop it before importing a snapshot");
         ES_ASSIGN_OR_RETURN(ImportStats st, ImportSnapshot(*lib, Lexical(*imp_file), expected));
         const SnapshotInfo& info = st.info;
         if (*imp_json) {
           json o = SnapshotJson(info);
           o["file"] = *imp_file;
           o["rows_written"] = st.rows_written;
           o["rows_replaced"] = st.rows_replaced;
           o["seconds"] = st.seconds;
           std::cout << o.dump() << "\n";
           return Status::Ok();
         }
         std::printf(
             "imported %s from %s: %llu rows written (%s, %s), %llu replaced, epoch %s, max seq %lld, "
             "%.2fs\n",
             info.owner_name.c_str(), imp_file->c_str(), (unsigned long long)st.rows_written,
             Count(info.entries, "entry", "entries").c_str(),
             Count(info.locations, "location", "locations").c_str(), (unsigned long long)st.rows_replaced,
             EpochHex(info.epoch).c_str(), (long long)info.max_seq.value(), st.seconds);
         return Status::Ok();
       }});
  out.push_back({ins, [ins_file, ins_json]() -> Status {
                   ES_ASSIGN_OR_RETURN(SnapshotInfo info, InspectSnapshot(Lexical(*ins_file)));
                   if (*ins_json) {
                     json o = SnapshotJson(info);
                     o["file"] = *ins_file;
                     std::cout << o.dump(2) << "\n";
                     return Status::Ok();
                   }
                   std::printf("snapshot %s\n", ins_file->c_str());
                   std::printf("  owner        %s (%s)\n", info.owner_name.c_str(),
                               info.owner.ToString().c_str());
                   std::printf("  library      %s\n", info.library_id.ToString().c_str());
                   std::printf("  exported by  %s\n", info.exported_by.ToString().c_str());
                   std::printf("  epoch        %s\n", EpochHex(info.epoch).c_str());
                   std::printf("  max seq      %lld\n", (long long)info.max_seq.value());
                   std::printf("  entries      %llu\n", (unsigned long long)info.entries);
                   std::printf("  locations    %llu\n", (unsigned long long)info.locations);
                   std::printf("  size         %llu bytes (%s)\n", (unsigned long long)info.size_bytes,
                               HumanBytes(static_cast<double>(info.size_bytes)).c_str());
                   std::printf("  sha256       %s\n", info.sha256.c_str());
                   return Status::Ok();
                 }});
  return out;
}

}  // namespace

std::vector<Command> RegisterCommands(CLI::App& app, Globals& g) {
  std::vector<Command> all;
  all.push_back({nullptr, AddInit(app, g)});
  all.back().app = app.get_subcommand("init");
  for (auto& c : AddLocation(app, g)) all.push_back(std::move(c));
  all.push_back({nullptr, AddRescan(app, g)});
  all.back().app = app.get_subcommand("rescan");
  all.push_back({nullptr, AddLs(app, g)});
  all.back().app = app.get_subcommand("ls");
  for (auto& c : AddExport(app, g)) all.push_back(std::move(c));
  all.push_back({nullptr, AddStats(app, g)});
  all.back().app = app.get_subcommand("stats");
  all.push_back({nullptr, AddId(app, g)});
  all.back().app = app.get_subcommand("id");
  for (auto& c : AddPeer(app, g)) all.push_back(std::move(c));
  all.push_back({nullptr, AddServe(app, g)});
  all.back().app = app.get_subcommand("serve");
  all.push_back({nullptr, AddSync(app, g)});
  all.back().app = app.get_subcommand("sync");
  all.push_back({nullptr, AddStatus(app, g)});
  all.back().app = app.get_subcommand("status");
  for (auto& c : AddSnapshot(app, g)) all.push_back(std::move(c));
  return all;
}

Status RunParsed(const std::vector<Command>& commands) {
  for (const auto& c : commands)
    if (c.app->parsed()) return c.run();
  return InvalidArgument("no command given (see --help)");
}

}  // namespace entrysync::cli
