#include "node/dial_backoff.h"

#include <algorithm>

namespace entrysync {

Clock::duration DialBackoff::Failed(Clock::time_point now, double unit_random) {
  ++failures_;
  Clock::duration base = o_.first;
  for (int i = 1; i < failures_ && base < o_.max; ++i) base *= 2;
  base = std::min(base, o_.max);
  double factor = 1.0 - o_.jitter + 2.0 * o_.jitter * std::clamp(unit_random, 0.0, 1.0);
  auto delay = std::chrono::duration_cast<Clock::duration>(base * factor);
  next_try_ = now + delay;
  up_since_.reset();
  return delay;
}

std::optional<Clock::duration> DialBackoff::Ended(Clock::time_point now, bool moved_rows,
                                                  double unit_random) {
  bool healthy = moved_rows || (up_since_ && now - *up_since_ >= o_.healthy_after);
  if (!healthy) return Failed(now, unit_random);
  failures_ = 0;
  next_try_ = now;
  up_since_.reset();
  return std::nullopt;
}

}  // namespace entrysync
