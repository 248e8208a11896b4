#include "cli/commands.h"

#include <cstdlib>
#include <memory>

#include "cli/commands_shared.h"

namespace entrysync::cli {

Result<std::string> Globals::LibraryDir() const {
  if (!library.empty()) return library;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before the command starts any thread
  const char* env = std::getenv("ENTRYSYNC_LIBRARY");
  if (env != nullptr && *env != '\0') return std::string(env);
  return InvalidArgument("no library given: pass --library DIR or set ENTRYSYNC_LIBRARY");
}

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
