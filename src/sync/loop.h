// The sync loop's vocabulary: its executor and its timers.
//
// A node runs every session and the SyncService on one asio executor (one
// thread). Timers run on Clock (base/clock.h), so a test's ManualClock
// drives keepalives, idle timeouts and rate limits deterministically.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/post.hpp>

#include "base/clock.h"

namespace entrysync {

using SyncExecutor = asio::any_io_executor;
using SyncTimer = asio::basic_waitable_timer<Clock>;

}  // namespace entrysync
