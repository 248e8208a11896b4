// The subcommands that read a library: ls, export, digest, stats.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands_shared.h"

namespace entrysync::cli {

using json = nlohmann::json;

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

}  // namespace entrysync::cli
