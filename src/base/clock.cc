#include "base/clock.h"

#include <cassert>

namespace entrysync {
namespace {
std::atomic<ManualClock*> g_manual{nullptr};
}  // namespace

ManualClock* ManualClock::Installed() noexcept { return g_manual.load(std::memory_order_acquire); }

Clock::time_point Clock::now() noexcept {
  if (ManualClock* m = g_manual.load(std::memory_order_acquire)) return m->now();
  return time_point(
      std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

ManualClock::ManualClock() {
  ManualClock* expected = nullptr;
  bool installed = g_manual.compare_exchange_strong(expected, this);
  assert(installed && "only one ManualClock at a time");
  (void)installed;
}

ManualClock::~ManualClock() { g_manual.store(nullptr, std::memory_order_release); }

}  // namespace entrysync
