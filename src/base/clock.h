// Clock: the time every timer and rate computation of a node reads.
//
// It is std::chrono::steady_clock unless a test installs a ManualClock, in
// which case time stands still until the test advances it (libtorrent's
// simulation does the same): several nodes on one io_context then run a
// scenario of minutes in milliseconds, deterministically. The sync loop's
// timers take it as their clock (SyncTimer, see sync/loop.h), so a manual
// clock drives them too; the io_context must then be run with poll(), never
// with a blocking run(). A due timer fires at the next poll after Advance.
//
// Thread safety: now() is thread-safe. ManualClock must be installed before
// any node starts and outlive them; only one is installed at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace entrysync {

struct Clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<Clock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept;
  // Seconds since an arbitrary start, for rates and logs.
  static double Seconds() noexcept { return std::chrono::duration<double>(now().time_since_epoch()).count(); }
};

// While alive, Clock::now() returns this clock's time, which moves only by
// Advance. Starts at 1000 s so that "0 = never" stays distinguishable.
class ManualClock {
 public:
  ManualClock();
  ~ManualClock();
  ManualClock(const ManualClock&) = delete;
  ManualClock& operator=(const ManualClock&) = delete;

  // The installed manual clock, or nullptr (time is real).
  static ManualClock* Installed() noexcept;

  void Advance(Clock::duration d) { now_ns_.fetch_add(d.count()); }
  Clock::time_point now() const { return Clock::time_point(Clock::duration(now_ns_.load())); }

  // When the loop's earliest timer is due, as the loop last computed it
  // (SyncTimer reports it each time asio computes how long it may wait),
  // so that a simulation advances straight to the next event instead of in
  // small steps. time_point::max() until a timer is reported; a cancelled
  // timer may leave it earlier than the real next event, never later.
  // Meaningful with one loop on this clock. ForgetWake resets it to max().
  void NoteWake(Clock::time_point t) { wake_ns_.store(t.time_since_epoch().count()); }
  void ForgetWake() { wake_ns_.store(INT64_MAX); }
  Clock::time_point next_wake() const { return Clock::time_point(Clock::duration(wake_ns_.load())); }

 private:
  std::atomic<int64_t> now_ns_{1'000'000'000'000};
  std::atomic<int64_t> wake_ns_{INT64_MAX};
};

}  // namespace entrysync
