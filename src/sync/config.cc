#include "sync/config.h"

namespace entrysync {

const char* StrategyName(Strategy s) {
  switch (s) {
    case Strategy::kAuto:
      return "auto";
    case Strategy::kChange:
      return "change";
    case Strategy::kBatch:
      return "batch";
    case Strategy::kBulk:
      return "bulk";
    case Strategy::kSnapshot:
      return "snapshot";
  }
  return "unknown";
}

std::optional<Strategy> ParseStrategy(const std::string& name) {
  for (Strategy s :
       {Strategy::kAuto, Strategy::kChange, Strategy::kBatch, Strategy::kBulk, Strategy::kSnapshot})
    if (name == StrategyName(s)) return s;
  return std::nullopt;
}

Strategy StrategyFromWire(int wire_strategy) {
  return wire_strategy >= 0 && wire_strategy <= static_cast<int>(Strategy::kSnapshot)
             ? static_cast<Strategy>(wire_strategy)
             : Strategy::kAuto;
}

Strategy ChooseStrategy(const SyncConfig& config, uint64_t delta_rows, bool peer_has_nothing) {
  if (config.forced == Strategy::kBulk) return Strategy::kBatch;
  if (config.forced != Strategy::kAuto) return config.forced;
  if (peer_has_nothing && delta_rows >= config.snapshot_threshold) return Strategy::kSnapshot;
  return delta_rows <= config.change_threshold ? Strategy::kChange : Strategy::kBatch;
}

Strategy ChoosePull(const SyncConfig& config, uint64_t delta_rows, bool holds_some) {
  if (config.forced == Strategy::kBulk) return Strategy::kBulk;
  if (config.forced != Strategy::kAuto) return Strategy::kAuto;
  return holds_some && delta_rows >= config.bulk_threshold ? Strategy::kBulk : Strategy::kAuto;
}

}  // namespace entrysync
