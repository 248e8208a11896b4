// The subcommands that sync: serve (the daemon), sync (once), status.
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands_shared.h"
#include "cli/output.h"
#include "entrysync/log.h"

namespace entrysync::cli {

using json = nlohmann::json;

namespace {

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
  sub->add_option("--rate-limit", f->rate_limit_mb,
                  "Most MB/s pulled from each peer device, all its connections together (0 = no limit)")
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

}  // namespace

// ---- serve ----
std::function<Status()> AddServe(CLI::App& app, Globals& g) {
  auto* sub =
      app.add_subcommand("serve", "Run the daemon: accept paired peers, dial known ones, sync continuously");
  auto listen = std::make_shared<std::string>();
  auto flags = std::make_shared<SyncFlags>();
  // MB/s: what the daemon serves each peer device, and totals over all peers.
  auto upload_mb = std::make_shared<double>(0);
  auto total_mb = std::make_shared<double>(0);
  auto total_upload_mb = std::make_shared<double>(0);
  sub->add_option("--listen", *listen, "HOST:PORT to accept peers on (e.g. 127.0.0.1:7000)");
  AddSyncFlags(sub, flags.get());
  sub->add_option("--upload-rate-limit", *upload_mb,
                  "Most MB/s served to each peer device, all its connections together (0 = no limit)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--total-rate-limit", *total_mb, "Most MB/s pulled from all peers together (0 = no limit)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--total-upload-rate-limit", *total_upload_mb,
                  "Most MB/s served to all peers together (0 = no limit)")
      ->check(CLI::NonNegativeNumber);
  return [&g, listen, flags, upload_mb, total_mb, total_upload_mb]() -> Status {
    ES_ASSIGN_OR_RETURN(std::string dir, g.LibraryDir());
    if (!listen->empty()) ES_RETURN_IF_ERROR(ValidateAddress(*listen).Wrap("--listen"));
    sigset_t stop = BlockStopSignals();
    ES_ASSIGN_OR_RETURN(auto engine, Engine::Open(dir));
    StartOptions o;
    o.listen = *listen;
    o.sync = ToOptions(*flags);
    o.sync.upload_rate_limit_bytes_per_second = static_cast<uint64_t>(*upload_mb * 1e6);
    o.sync.total_rate_limit_bytes_per_second = static_cast<uint64_t>(*total_mb * 1e6);
    o.sync.total_upload_rate_limit_bytes_per_second = static_cast<uint64_t>(*total_upload_mb * 1e6);
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
               {"verification_failures", r.counters.verification_failures},
               {"divergences", r.counters.divergences},
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
        o["watermark"] = d.watermark ? json{{"epoch", d.watermark->epoch.value()},
                                            {"seq", d.watermark->seq.value()},
                                            {"verified_seq", d.watermark->verified_seq.value()},
                                            {"verified", d.watermark->seq.value() > 0 &&
                                                             d.watermark->verified_seq == d.watermark->seq}}
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
        std::printf("  (have up to seq %lld%s)", (long long)o["watermark"]["seq"].get<int64_t>(),
                    o["watermark"]["verified"].get<bool>() ? ", verified" : ", not verified yet");
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

}  // namespace entrysync::cli
