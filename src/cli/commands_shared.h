// What the CLI's command files share: opening the library, choosing an
// owner, and the registration of each subcommand (with CLI11; its action
// runs once the command line is parsed). RegisterCommands (commands.cc)
// calls them in the order `--help` lists them. The commands are defined by
// group: commands_library.cc (init, location, rescan, id),
// commands_browse.cc (ls, export, digest, stats), commands_peers.cc (peer),
// commands_sync.cc (serve, sync, status), commands_snapshot.cc (snapshot).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "entrysync/engine.h"

namespace entrysync::cli {

// Opens the library of --library / $ENTRYSYNC_LIBRARY.
Result<std::unique_ptr<Engine>> OpenLibrary(const Globals& g);

// The owner selected by --device NAME, or this device.
Result<Device> SelectDevice(Engine& engine, const std::string& name);

// Each adds its subcommand(s) to `app` and returns the action(s); `g` must
// outlive them.
std::function<Status()> AddInit(CLI::App& app, Globals& g);
std::vector<Command> AddLocation(CLI::App& app, Globals& g);
std::function<Status()> AddRescan(CLI::App& app, Globals& g);
std::function<Status()> AddId(CLI::App& app, Globals& g);

std::function<Status()> AddLs(CLI::App& app, Globals& g);
std::vector<Command> AddExport(CLI::App& app, Globals& g);  // export and digest
std::function<Status()> AddStats(CLI::App& app, Globals& g);

std::vector<Command> AddPeer(CLI::App& app, Globals& g);

std::function<Status()> AddServe(CLI::App& app, Globals& g);
std::function<Status()> AddSync(CLI::App& app, Globals& g);
std::function<Status()> AddStatus(CLI::App& app, Globals& g);

std::vector<Command> AddSnapshot(CLI::App& app, Globals& g);

}  // namespace entrysync::cli
