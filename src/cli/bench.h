// `entrysync bench` (the seed's strategy table, measured end to end with
// real processes over TLS on loopback) and the hidden `entrysync debug
// generate` (N synthetic entries bulk-committed into a library). See
// bench/README.md.
#pragma once

#include <vector>

#include "cli/commands.h"

namespace entrysync::cli {

// Registers `bench` and `debug generate`.
std::vector<Command> AddBench(CLI::App& app, Globals& g);

}  // namespace entrysync::cli
