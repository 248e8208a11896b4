// DialBackoff: when a node dials one paired peer again.
//
// A failed dial backs off: 2 s, doubling up to a minute. So does a session
// that came up and ended before it was healthy: a handshake the peer
// refuses, an error the peer reports, our own write failing (a full disk)
// would otherwise make a daemon redial twice a second forever. A session is
// healthy once it stayed up `healthy_after` (30 s) or moved rows; its end
// then resets the back-off and the peer is dialed again at once. Every delay
// is jittered by +-20%, so that devices that failed together do not retry
// in lockstep.
//
// Thread safety: none (a node's sync loop).
#pragma once

#include <chrono>
#include <optional>

#include "base/clock.h"

namespace entrysync {

class DialBackoff {
 public:
  struct Options {
    Clock::duration first = std::chrono::seconds(2);
    Clock::duration max = std::chrono::seconds(60);
    Clock::duration healthy_after = std::chrono::seconds(30);
    double jitter = 0.2;  // each delay is scaled by a factor in [1 - jitter, 1 + jitter)
  };

  DialBackoff() : DialBackoff(Options{}) {}
  explicit DialBackoff(Options options) : o_(options) {}

  // True when a dial may start at `now`.
  bool Due(Clock::time_point now) const { return now >= next_try_; }
  Clock::time_point next_try() const { return next_try_; }
  // Failures since the back-off was last reset.
  int failures() const { return failures_; }

  // A dial failed at `now`; `unit_random` is uniform in [0, 1) (the
  // jitter). Returns the delay before the next try.
  Clock::duration Failed(Clock::time_point now, double unit_random);
  // A session dialed to the peer came up at `now`.
  void Connected(Clock::time_point now) { up_since_ = now; }
  // That session ended at `now`; `moved_rows`: it pulled or served rows. A
  // healthy one resets the back-off (returns nullopt: dial again now); any
  // other counts as a failure (returns the delay, as Failed).
  std::optional<Clock::duration> Ended(Clock::time_point now, bool moved_rows, double unit_random);
  // The session ended, but the device is still connected by another one
  // (the peer's dial was kept instead): neither a failure nor a success.
  void Superseded() { up_since_.reset(); }
  // How long the session has been up at `now` (zero when none is).
  Clock::duration Uptime(Clock::time_point now) const {
    return up_since_ ? now - *up_since_ : Clock::duration::zero();
  }

 private:
  Options o_;
  int failures_ = 0;
  Clock::time_point next_try_{};
  std::optional<Clock::time_point> up_since_;
};

}  // namespace entrysync
