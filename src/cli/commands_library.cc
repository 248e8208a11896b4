// The subcommands that make and describe a library: init, location, rescan, id.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands_shared.h"
#include "cli/output.h"

namespace entrysync::cli {

using json = nlohmann::json;

namespace {

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

}  // namespace

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

}  // namespace entrysync::cli
