// Builds spdlog's registry and default logger before main, so before any
// thread of sync_test logs.
//
// Without it the first log call builds them, and in these tests that call
// comes from two nodes' loops at once. The registry is a function-local
// static inside libspdlog, which is not built with ThreadSanitizer, so TSan
// does not see the guard that orders its construction before the other
// loop's use and reports a data race (spdlog::logger::log_ against
// registry::registry). The entrysync binary and the Engine install their
// logger on the calling thread before any loop starts (api/log.cc).
#include <spdlog/spdlog.h>

namespace {
[[maybe_unused]] const bool kLoggerBuilt = spdlog::default_logger_raw() != nullptr;
}  // namespace
