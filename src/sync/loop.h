// The sync loop's vocabulary: its executor and its timers.
//
// A node runs every session and the SyncService on one asio executor (one
// thread). Timers run on Clock (base/clock.h), so a test's ManualClock
// drives keepalives, idle timeouts and rate limits deterministically.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/post.hpp>
#include <asio/wait_traits.hpp>

#include "base/clock.h"

namespace entrysync {

using SyncExecutor = asio::any_io_executor;

// How long the loop's reactor may sleep before its earliest timer is due:
// asio's default with real time. Under a ManualClock it never sleeps on a
// deadline: asio on Linux arms a timerfd, in real time, with the wait it
// computes when a timer is scheduled, so a timer that an Advance made due
// would fire only once that much real time passed. A zero wait makes every
// poll look at the timers; the deadline goes to ManualClock::NoteWake.
struct SyncWaitTraits {
  static Clock::duration to_wait_duration(const Clock::duration& d) {
    ManualClock* manual = ManualClock::Installed();
    if (!manual) return d;
    Clock::time_point now = manual->now();
    manual->NoteWake(d >= Clock::time_point::max() - now ? Clock::time_point::max() : now + d);
    return Clock::duration::zero();
  }
  static Clock::duration to_wait_duration(const Clock::time_point& t) {
    Clock::duration d = asio::wait_traits<Clock>::to_wait_duration(t);
    return ManualClock::Installed() ? to_wait_duration(d) : d;
  }
};

using SyncTimer = asio::basic_waitable_timer<Clock, SyncWaitTraits>;

}  // namespace entrysync
