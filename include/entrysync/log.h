// entrysync's log: a line for what a running node does ("listening on
// ...", a refused connection, a session's strategy), written to stderr as
// "[2025-01-31 12:00:00.000] [info] message". It is process-wide. Errors an
// operation returns are Status values, never only logged.
#pragma once

#include <cstdint>
#include <string_view>

#include "entrysync/export.h"

namespace entrysync {

enum class LogLevel : uint8_t { kDebug, kInfo, kWarning, kError, kOff };

// Drops lines below `level` from now on (default kInfo). Thread-safe.
ENTRYSYNC_EXPORT void SetLogLevel(LogLevel level);

// Writes `message` as one line at `level`. Thread-safe.
ENTRYSYNC_EXPORT void Log(LogLevel level, std::string_view message);

}  // namespace entrysync
