#include "cli/commands.h"

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/output.h"
#include "entrysync/engine.h"
#include "entrysync/log.h"

namespace entrysync::cli {

using json = nlohmann::json;

Result<std::string> Globals::LibraryDir() const {
  if (!library.empty()) return library;
  const char* env = std::getenv("ENTRYSYNC_LIBRARY");
  if (env != nullptr && *env != '\0') return std::string(env);
  return InvalidArgument("no library given: pass --library DIR or set ENTRYSYNC_LIBRARY");
}

namespace {

Result<std::unique_ptr<Engine>> OpenLibrary(const Globals& g) {
  ES_ASSIGN_OR_RETURN(std::string dir, g.LibraryDir());
  return Engine::Open(dir);
}

// The owner selected by --device NAME, or this device.
Result<Device> SelectDevice(Engine& engine, const std::string& name) {
  if (name.empty()) return engine.LocalDevice();
  auto d = engine.FindDevice(name);
  if (!d.ok() && d.status().code() == Code::kNotFound)
    return NotFound("no device named '" + name + "' in this library (see 'entrysync peer list')");
  return d;
}

void PrintScanReport(const ScanReport& r, const char* verb) {
  std::printf("%s %s: %llu entries (%llu added, %llu modified, %llu deleted, %llu unchanged), max seq %lld\n",
              verb, r.location.root_path.c_str(), (unsigned long long)r.entries, (unsigned long long)r.added,
              (unsigned long long)r.modified, (unsigned long long)r.deleted, (unsigned long long)r.unchanged,
              (long long)r.max_seq.value());
  double rate = r.walk_seconds > 0 ? r.entries / r.walk_seconds : 0;
  std::printf("  walk %.2fs (%s entries/s), commit %.2fs as %s\n", r.walk_seconds, HumanCount(rate).c_str(),
              r.commit_seconds, r.bulk ? "one bulk commit" : "individual changes");
  for (const auto& w : r.warnings) std::fprintf(stderr, "entrysync: warning: %s\n", w.c_str());
}

ScanOptions ProgressOptions(ProgressLine* line) {
  ScanOptions o;
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
    ES_ASSIGN_OR_RETURN(auto engine, Engine::Create(dir, {.device_name = *name, .join_library = lib_id}));
    ES_ASSIGN_OR_RETURN(LibraryIdentity id, engine->Identity());
    std::printf("created library %s in %s, device '%s'\ndevice id %s\n", id.library_id.ToString().c_str(),
                dir.c_str(), name->c_str(), id.device_id.ToString().c_str());
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
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ProgressLine line("indexing");
                   auto r = engine->AddLocation(*path, ProgressOptions(&line));
                   line.Finish();
                   if (!r.ok()) return r.status().Wrap("location add " + *path);
                   PrintScanReport(*r, "indexed");
                   return Status::Ok();
                 }});
  out.push_back({list, [&g]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(auto locations, engine->Locations());
                   for (const auto& l : locations)
                     std::printf("%s\t%s\t%s\n", l.uuid.ToString().c_str(),
                                 l.owner_name.empty() ? "?" : l.owner_name.c_str(), l.root_path.c_str());
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
    ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
    std::vector<Location> targets;
    if (path->empty()) {
      ES_ASSIGN_OR_RETURN(Device me, engine->LocalDevice());
      ES_ASSIGN_OR_RETURN(targets, engine->Locations(me.uuid));
    } else {
      ES_ASSIGN_OR_RETURN(Location found, engine->FindLocalLocation(*path));
      targets.push_back(found);
    }
    if (targets.empty()) return NotFound("this device has no locations (see 'entrysync location add')");
    for (const auto& loc : targets) {
      ProgressLine line("rescanning " + loc.root_path);
      auto r = engine->Rescan(loc.uuid, ProgressOptions(&line));
      line.Finish();
      if (!r.ok()) return r.status().Wrap("rescan " + loc.root_path);
      PrintScanReport(*r, "rescanned");
    }
    return Status::Ok();
  };
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
    ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
    ES_ASSIGN_OR_RETURN(Device owner, SelectDevice(*engine, *device));
    if (path->empty()) {
      ES_ASSIGN_OR_RETURN(auto locations, engine->Locations(owner.uuid));
      for (const auto& l : locations) std::printf("%s/\n", l.root_path.c_str());
      return Status::Ok();
    }
    ES_ASSIGN_OR_RETURN(Listing listing, engine->List(owner.uuid, *path, {.refresh = *refresh}));
    const EntryRecord& e = listing.entry;
    if (e.kind != EntryKind::kDir) {
      std::printf("%s\t%llu\t%s\n", EntryKindName(e.kind), (unsigned long long)e.size, e.name.c_str());
      return Status::Ok();
    }
    for (const auto& c : listing.children)
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
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(Device owner, SelectDevice(*engine, *device));
                   std::string buf;
                   Status s = engine->Export(owner.uuid, [&](std::string_view line) {
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
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(Device owner, SelectDevice(*engine, *ddevice));
                   ES_ASSIGN_OR_RETURN(OwnerDigest d, engine->Digest(owner.uuid));
                   std::printf("%s  %s  %llu entries (%llu live)\n", d.sha256.c_str(), owner.name.c_str(),
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
    ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
    ES_ASSIGN_OR_RETURN(LibraryStats stats, engine->Stats());
    json out;
    out["library_id"] = stats.library_id.ToString();
    out["schema_version"] = stats.schema_version;
    out["rows_applied_total"] = stats.rows_applied_total;
    out["owners"] = json::array();
    for (const auto& s : stats.owners) {
      json o{{"name", s.name},          {"uuid", s.uuid.ToString()},  {"local", s.is_local},
             {"entries", s.entries},    {"tombstones", s.tombstones}, {"max_seq", s.max_seq.value()},
             {"epoch", s.epoch.value()}};
      if (s.watermark) o["watermark"] = s.watermark->value();
      o["locations"] = json::array();
      for (const auto& l : s.locations)
        o["locations"].push_back(
            {{"uuid", l.uuid.ToString()}, {"root", l.root_path}, {"entries", l.entries}});
      out["owners"].push_back(o);
    }
    if (*as_json) {
      std::cout << out.dump(2) << "\n";
      return Status::Ok();
    }
    std::printf("library %s (schema v%d)\n", out["library_id"].get<std::string>().c_str(),
                stats.schema_version);
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
    ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
    ES_ASSIGN_OR_RETURN(LibraryIdentity id, engine->Identity());
    json out{{"device_id", id.device_id.ToString()},
             {"library_id", id.library_id.ToString()},
             {"device_uuid", id.device_uuid.ToString()},
             {"name", id.device_name}};
    if (*as_json) {
      std::cout << out.dump() << "\n";
    } else {
      std::printf("device    %s (%s)\nlibrary   %s\n", id.device_id.ToString().c_str(),
                  id.device_name.c_str(), id.library_id.ToString().c_str());
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
                   if (!addr->empty()) ES_RETURN_IF_ERROR(ValidateAddress(*addr).Wrap("--addr"));
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ES_RETURN_IF_ERROR(engine->Pair(*name, *dev, *addr).status());
                   std::printf("paired %s (%s)%s\n", name->c_str(), dev->ToShortString().c_str(),
                               addr->empty() ? "" : (" at " + *addr).c_str());
                   return Status::Ok();
                 }});
  out.push_back({list, [&g]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(auto devices, engine->Devices());
                   for (const auto& d : devices) {
                     if (d.is_local || !d.device_id) continue;
                     std::printf("%s\t%s\t%s\t%s\n", d.name.c_str(), d.device_id->ToString().c_str(),
                                 d.address.empty() ? "-" : d.address.c_str(),
                                 d.paired ? "paired" : "unpaired");
                   }
                   return Status::Ok();
                 }});
  out.push_back({rm, [&g, rm_name]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(Device d, engine->FindDevice(*rm_name));
                   if (d.is_local) return InvalidArgument("'" + *rm_name + "' is this device, not a peer");
                   if (d.device_id) ES_RETURN_IF_ERROR(engine->Unpair(*d.device_id));  // else: never paired
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
  uint64_t snapshot_threshold = SyncOptions{}.snapshot_threshold;
  uint64_t change_threshold = SyncOptions{}.change_threshold;
  uint64_t bulk_threshold = SyncOptions{}.bulk_threshold;
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

SyncOptions ToOptions(const SyncFlags& f) {
  SyncOptions o;
  o.strategy = *ParseSyncStrategy(f.strategy);
  o.batch_records = f.batch;
  o.codec = f.codec == "gzip" ? BatchCodec::kGzip : f.codec == "none" ? BatchCodec::kNone : BatchCodec::kZstd;
  o.fetch_in_background = f.fetch != "lazy";
  o.rate_limit_bytes_per_second = static_cast<uint64_t>(f.rate_limit_mb * 1e6);
  o.change_threshold = f.change_threshold;
  o.snapshot_threshold = f.snapshot_threshold;
  o.bulk_threshold = f.bulk_threshold;
  return o;
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
    if (!listen->empty()) ES_RETURN_IF_ERROR(ValidateAddress(*listen).Wrap("--listen"));
    sigset_t stop = BlockStopSignals();
    ES_ASSIGN_OR_RETURN(auto engine, Engine::Open(dir));
    StartOptions o;
    o.listen = *listen;
    o.sync = ToOptions(*flags);
    ES_RETURN_IF_ERROR(engine->Start(o));
    int sig = 0;
    sigwait(&stop, &sig);
    Log(LogLevel::kInfo, "stopping on signal " + std::to_string(sig));
    engine->Stop();
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
    if (!*verbose) SetLogLevel(LogLevel::kOff);
    ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
    auto d = engine->FindDevice(*peer);
    if (!d.ok() || d->is_local || !d->paired || !d->device_id)
      return NotFound("no paired peer named '" + *peer + "' (see 'entrysync peer list')");
    ProgressLine line("syncing with " + *peer);
    SyncOnceOptions o{
        .sync = ToOptions(*flags),
        .timeout = std::chrono::duration<double>(*timeout),
        .progress = [&line](const SyncProgress& p) { line.Update(p.done, p.total, p.wire_received); }};
    auto report = engine->SyncOnce(*d->device_id, o);
    line.Finish();
    if (!report.ok()) return report.status();
    const SyncReport& r = *report;
    if (*as_json) {
      json out{{"peer", *peer},
               {"seconds", r.seconds},
               {"rows_applied", r.counters.rows_applied},
               {"rows_sent", r.counters.rows_sent},
               {"wire_received", r.wire_received},
               {"wire_sent", r.wire_sent},
               {"snapshots_imported", r.counters.snapshots_imported},
               {"transfers", json::array()}};
      for (const auto& t : r.transfers)
        out["transfers"].push_back({{"direction", t.pulling ? "pull" : "serve"},
                                    {"owner", t.owner_name},
                                    {"strategy", SyncStrategyName(t.strategy)},
                                    {"done", t.done},
                                    {"total", t.total},
                                    {"bytes", t.bytes},
                                    {"seconds", t.seconds}});
      std::cout << out.dump() << "\n";
      return Status::Ok();
    }
    for (const auto& t : r.transfers) {
      if (t.done == 0 && t.total == 0) continue;
      std::printf("%s %llu rows of %s as %s in %.2fs (%s rows/s)\n", t.pulling ? "pulled" : "served",
                  (unsigned long long)t.done, t.owner_name.c_str(), SyncStrategyName(t.strategy), t.seconds,
                  HumanCount(t.rate).c_str());
    }
    std::printf("synced with %s in %.2fs: %llu rows applied, %llu sent; wire %s in, %s out\n", peer->c_str(),
                r.seconds, (unsigned long long)r.counters.rows_applied,
                (unsigned long long)r.counters.rows_sent, HumanBytes(r.wire_received).c_str(),
                HumanBytes(r.wire_sent).c_str());
    return Status::Ok();
  };
}

// ---- status ----
std::function<Status()> AddStatus(CLI::App& app, Globals& g) {
  auto* sub =
      app.add_subcommand("status", "What this device holds of each owner, and the daemon's transfers");
  auto as_json = std::make_shared<bool>(false);
  sub->add_flag("--json", *as_json, "Print JSON");
  return [&g, as_json]() -> Status {
    ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
    ES_ASSIGN_OR_RETURN(LibraryStatus st, engine->GetStatus());
    json out;
    out["device"] = st.device_name;
    out["library_id"] = st.library_id.ToString();
    out["owners"] = json::array();
    for (const auto& d : st.owners) {
      json o{{"name", d.name}, {"uuid", d.uuid.ToString()}, {"entries", d.entries}};
      if (d.is_local) {
        o["local"] = true;
        o["epoch"] = d.epoch.value();
        o["max_seq"] = d.max_seq.value();
      } else {
        o["paired"] = d.paired;
        o["watermark"] = d.watermark
                             ? json{{"epoch", d.watermark->epoch.value()}, {"seq", d.watermark->seq.value()}}
                             : json(nullptr);
      }
      out["owners"].push_back(o);
    }
    out["daemon"] = st.daemon ? json::parse(st.daemon->document) : json(nullptr);
    if (*as_json) {
      std::cout << out.dump(2) << "\n";
      return Status::Ok();
    }
    std::printf("%s: library %s\n", st.device_name.c_str(), out["library_id"].get<std::string>().c_str());
    for (const auto& o : out["owners"]) {
      std::printf("  %-12s %10llu entries", o["name"].get<std::string>().c_str(),
                  (unsigned long long)o["entries"].get<uint64_t>());
      if (o.contains("max_seq"))
        std::printf("  (this device, seq %lld)", (long long)o["max_seq"].get<int64_t>());
      else if (!o["watermark"].is_null())
        std::printf("  (have up to seq %lld)", (long long)o["watermark"]["seq"].get<int64_t>());
      std::printf("\n");
    }
    if (!st.daemon) {
      std::printf("daemon: not running\n");
      return Status::Ok();
    }
    std::printf("daemon: pid %d, port %d\n", st.daemon->pid, st.daemon->listen_port);
    for (const auto& s : st.daemon->sessions) {
      std::printf("  peer %s (%s): %s, %s in, %s out\n", s.peer_name.c_str(), s.address.c_str(),
                  s.state.c_str(), HumanBytes(static_cast<double>(s.wire_received)).c_str(),
                  HumanBytes(static_cast<double>(s.wire_sent)).c_str());
      for (const auto& t : s.transfers) {
        if (t.finished) continue;
        std::printf("    %s %s: %llu/%llu (%s/s, ETA %.0fs) as %s\n", t.pulling ? "pull" : "serve",
                    t.owner_name.c_str(), (unsigned long long)t.done, (unsigned long long)t.total,
                    HumanCount(t.rate).c_str(), t.eta_seconds, SyncStrategyName(t.strategy));
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

json SnapshotJson(const SnapshotSummary& i) {
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
         ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
         ES_ASSIGN_OR_RETURN(Device owner, SelectDevice(*engine, *exp_device));
         auto t0 = std::chrono::steady_clock::now();
         ES_ASSIGN_OR_RETURN(SnapshotSummary info, engine->ExportSnapshot(owner.uuid, *exp_file));
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
         ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
         ES_ASSIGN_OR_RETURN(SnapshotImport st, engine->ImportSnapshot(*imp_file, expected));
         const SnapshotSummary& info = st.snapshot;
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
                   ES_ASSIGN_OR_RETURN(SnapshotSummary info, Engine::InspectSnapshot(*ins_file));
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
