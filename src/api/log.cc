// entrysync's log (include/entrysync/log.h) on spdlog, which every layer
// logs to through its default logger.
#include "entrysync/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "api/engine_impl.h"

namespace entrysync {

namespace {
spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarning:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}
}  // namespace

void InstallDefaultLog() {
  static std::once_flag once;
  std::call_once(once, [] {
    // spdlog's own default logger is unnamed and writes to stdout; a logger
    // the application installed is left alone.
    auto current = spdlog::default_logger();
    if (current && !current->name().empty()) return;
    auto logger = spdlog::get("entrysync");
    if (!logger) logger = spdlog::stderr_color_mt("entrysync");
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
    spdlog::set_default_logger(logger);
  });
}

void SetLogLevel(LogLevel level) {
  InstallDefaultLog();
  spdlog::set_level(ToSpdlog(level));
}

void Log(LogLevel level, std::string_view message) {
  InstallDefaultLog();
  if (level == LogLevel::kOff) return;
  spdlog::log(ToSpdlog(level), "{}", message);
}

}  // namespace entrysync
