// The free functions of include/entrysync/options.h.
#include "entrysync/options.h"

#include "api/convert.h"
#include "node/node.h"

namespace entrysync {

const char* SyncStrategyName(SyncStrategy strategy) { return StrategyName(ToStrategy(strategy)); }

std::optional<SyncStrategy> ParseSyncStrategy(std::string_view name) {
  auto s = ParseStrategy(std::string(name));
  if (!s) return std::nullopt;
  return ToSyncStrategy(*s);
}

Status ValidateAddress(const std::string& host_port) { return ParseHostPort(host_port).status(); }

}  // namespace entrysync
