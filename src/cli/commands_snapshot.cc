// The subcommand for snapshot files: snapshot export, import, inspect.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands_shared.h"
#include "cli/output.h"

namespace entrysync::cli {

using json = nlohmann::json;

namespace {

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
              {"sha256", i.sha256},
              {"signed_by_owner", i.signed_by_owner}};
}

// "1 location", "2 locations".
std::string Count(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// snapshot export FILE [--device NAME] [--json]
Command AddSnapshotExport(CLI::App* snap, Globals& g) {
  auto* exp = snap->add_subcommand("export", "Write one owner's snapshot to FILE (atomically)");
  auto file = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  exp->add_option("FILE", *file, "Snapshot file to write (replaced if it exists)")->required();
  exp->add_option("--device", *device, "Owner (default: this device)");
  exp->add_flag("--json", *as_json, "Print the summary as JSON");
  return {exp, [&g, file, device, as_json]() -> Status {
            ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
            ES_ASSIGN_OR_RETURN(Device owner, SelectDevice(*engine, *device));
            auto t0 = std::chrono::steady_clock::now();
            ES_ASSIGN_OR_RETURN(SnapshotSummary info, engine->ExportSnapshot(owner.uuid, *file));
            double secs = SecondsSince(t0);
            if (*as_json) {
              json o = SnapshotJson(info);
              o["file"] = *file;
              o["seconds"] = secs;
              std::cout << o.dump() << "\n";
              return Status::Ok();
            }
            std::printf("exported %s to %s: %s, %s, epoch %s, max seq %lld, %llu bytes, sha256 %s, %.2fs\n",
                        info.owner_name.c_str(), file->c_str(),
                        Count(info.entries, "entry", "entries").c_str(),
                        Count(info.locations, "location", "locations").c_str(), EpochHex(info.epoch).c_str(),
                        (long long)info.max_seq.value(), (unsigned long long)info.size_bytes,
                        info.sha256.c_str(), secs);
            return Status::Ok();
          }};
}

// snapshot import FILE [--sha256 HEX] [--json]
Command AddSnapshotImport(CLI::App* snap, Globals& g) {
  auto* imp = snap->add_subcommand(
      "import", "Replace what this library holds of a snapshot's owner with the snapshot (all or nothing)");
  auto file = std::make_shared<std::string>();
  auto sha = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  imp->add_option("FILE", *file, "Snapshot file")->required();
  imp->add_option("--sha256", *sha,
                  "The SHA-256 'snapshot export' printed: the file must match it (which implies the row "
                  "checksum)");
  imp->add_flag("--json", *as_json, "Print the summary as JSON");
  return {imp, [&g, file, sha, as_json]() -> Status {
            std::optional<std::string> expected;
            if (!sha->empty()) {
              if (sha->size() != 64 || sha->find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
                return InvalidArgument("--sha256: '" + *sha + "' is not a SHA-256 (64 hex digits)");
              expected = *sha;
            }
            ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
            ES_ASSIGN_OR_RETURN(SnapshotImport st, engine->ImportSnapshot(*file, expected));
            const SnapshotSummary& info = st.snapshot;
            if (*as_json) {
              json o = SnapshotJson(info);
              o["file"] = *file;
              o["rows_written"] = st.rows_written;
              o["rows_replaced"] = st.rows_replaced;
              o["seconds"] = st.seconds;
              std::cout << o.dump() << "\n";
              return Status::Ok();
            }
            std::printf(
                "imported %s from %s: %llu rows written (%s, %s), %llu replaced, epoch %s, max seq %lld, "
                "%.2fs\n",
                info.owner_name.c_str(), file->c_str(), (unsigned long long)st.rows_written,
                Count(info.entries, "entry", "entries").c_str(),
                Count(info.locations, "location", "locations").c_str(), (unsigned long long)st.rows_replaced,
                EpochHex(info.epoch).c_str(), (long long)info.max_seq.value(), st.seconds);
            return Status::Ok();
          }};
}

// snapshot inspect FILE [--json]
Command AddSnapshotInspect(CLI::App* snap) {
  auto* ins =
      snap->add_subcommand("inspect", "Check a snapshot file and print what it holds (needs no library)");
  auto file = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  ins->add_option("FILE", *file, "Snapshot file")->required();
  ins->add_flag("--json", *as_json, "Print JSON");
  return {ins, [file, as_json]() -> Status {
            ES_ASSIGN_OR_RETURN(SnapshotSummary info, Engine::InspectSnapshot(*file));
            if (*as_json) {
              json o = SnapshotJson(info);
              o["file"] = *file;
              std::cout << o.dump(2) << "\n";
              return Status::Ok();
            }
            std::printf("snapshot %s\n", file->c_str());
            std::printf("  owner        %s (%s)\n", info.owner_name.c_str(), info.owner.ToString().c_str());
            std::printf("  library      %s\n", info.library_id.ToString().c_str());
            std::printf("  exported by  %s\n", info.exported_by.ToString().c_str());
            std::printf("  epoch        %s\n", EpochHex(info.epoch).c_str());
            std::printf("  max seq      %lld\n", (long long)info.max_seq.value());
            std::printf("  entries      %llu\n", (unsigned long long)info.entries);
            std::printf("  locations    %llu\n", (unsigned long long)info.locations);
            std::printf("  size         %llu bytes (%s)\n", (unsigned long long)info.size_bytes,
                        HumanBytes(static_cast<double>(info.size_bytes)).c_str());
            std::printf("  sha256       %s\n", info.sha256.c_str());
            std::printf("  checkpoint   %s\n", info.signed_by_owner
                                                   ? "signed by the owner at max seq (verified)"
                                                   : "none (verified when a checkpoint arrives)");
            return Status::Ok();
          }};
}

}  // namespace

std::vector<Command> AddSnapshot(CLI::App& app, Globals& g) {
  auto* snap = app.add_subcommand("snapshot", "Export, import or inspect one owner's index as a SQLite file");
  snap->require_subcommand(1);
  std::vector<Command> out;
  out.push_back(AddSnapshotExport(snap, g));
  out.push_back(AddSnapshotImport(snap, g));
  out.push_back(AddSnapshotInspect(snap));
  return out;
}

}  // namespace entrysync::cli
