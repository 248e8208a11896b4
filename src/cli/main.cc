// entrysync: the command-line front end.
//
// Every failure prints one line "entrysync: error: <reason>" on stderr and
// exits non-zero (2 for bad usage, 1 otherwise); nothing stored changes.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "entrysync/log.h"

namespace {

int Main(int argc, char** argv) {
  using namespace entrysync::cli;
  // Logs go to stderr: stdout carries only a command's output (JSON included).
  entrysync::SetLogLevel(entrysync::LogLevel::kInfo);
  CLI::App app{"entrysync: keeps a file index in sync between your devices"};
  app.require_subcommand(1);
  app.fallthrough();  // --library may follow the subcommand
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  Globals g;
  app.add_option("--library", g.library, "Library folder (default: $ENTRYSYNC_LIBRARY)");
  auto commands = RegisterCommands(app, g);
  // Name an unknown command instead of CLI11's "a subcommand is required".
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--library") {
      ++i;
      continue;
    }
    if (a.rfind('-', 0) == 0) continue;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known |= sub->check_name(a);
    if (!known) {
      std::fprintf(stderr, "entrysync: error: unknown command '%s' (see --help)\n", a.c_str());
      return 2;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (what.empty()) what = "bad usage";
    std::fprintf(stderr, "entrysync: error: %s (see --help)\n", what.c_str());
    return 2;
  }
  entrysync::Status s = RunParsed(commands);
  if (!s.ok()) {
    std::fprintf(stderr, "entrysync: error: %s\n", s.message().c_str());
    return s.code() == entrysync::Code::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Errors are values below; what still throws (out of memory, a library's
  // exception) ends the command with one line, not std::terminate.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "entrysync: error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "entrysync: error: an unknown exception\n");
  }
  return 1;
}
