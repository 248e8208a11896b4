// The CLI's subcommands: registration with CLI11 and their actions.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "entrysync/status.h"

namespace entrysync::cli {

// Options shared by every subcommand.
struct Globals {
  std::string library;  // --library; falls back to $ENTRYSYNC_LIBRARY
  // The library folder to use, or InvalidArgument when none was given.
  Result<std::string> LibraryDir() const;
};

struct Command {
  CLI::App* app;
  std::function<Status()> run;
};

// Adds every subcommand to `app`; `g` must outlive the returned commands.
std::vector<Command> RegisterCommands(CLI::App& app, Globals& g);

// Runs the subcommand that was parsed.
Status RunParsed(const std::vector<Command>& commands);

}  // namespace entrysync::cli
