// What a TlsListener does under a flood: which accept errors pause it, how
// long, and how many refusals it reports. Internal to net. Pure logic: the
// caller passes the time, so tests drive it without sockets or clocks.
//
// Thread safety: none; a listener uses them on its io thread only.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace entrysync::net {

// True for accept errors that concern only the connection being accepted:
// it was aborted or reset before accept returned, or carries a pending
// network error (the list accept(2) gives for TCP). Skip it and accept the
// next at once. Anything else (EMFILE, ENFILE, ENOBUFS, ENOMEM, an unknown
// error) is a shortage of this process or host: accepting again at once
// would fail again at once, so the listener backs off.
bool IsPerConnectionAcceptError(const std::error_code& ec);

// The pause after an accept failed for want of resources: `first`, doubled
// at each failure in a row up to `max`; a successful accept resets it.
class AcceptBackoff {
 public:
  AcceptBackoff(std::chrono::milliseconds first, std::chrono::milliseconds max);
  // The pause for this failure; the next one doubles.
  std::chrono::milliseconds Next();
  // An accept succeeded: the next failure pauses `first` again.
  void Reset() { next_ = first_; }

 private:
  const std::chrono::milliseconds first_, max_;
  std::chrono::milliseconds next_;
};

// Why a connection was refused, for the summary of the ones not reported
// one by one.
enum class RefusalKind : uint8_t {
  kOverLimit,    // closed to make room for a newer unauthenticated connection
  kTimeout,      // handshake not done in time, or the peer hung up during it
  kNotPaired,    // a device that is not paired (or not the one expected)
  kBroken,       // not our TLS: garbage, a broken or refused handshake
  kAcceptError,  // accept failed (EMFILE and friends)
};
inline constexpr size_t kRefusalKinds = 5;

// Lets at most `per_interval` refusals per `interval` be reported one by
// one; counts the others, by kind, for one summary line once the interval
// is over. An interval starts with the first refusal after the previous
// one ended.
class RefusalReports {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  RefusalReports(size_t per_interval, std::chrono::milliseconds interval);

  // A refusal of `kind` at `now`: true when it may be reported in full,
  // false when it was counted for the summary. REQUIRES: TakeSummary(now)
  // was called first (it closes an interval that is over).
  bool Admit(RefusalKind kind, TimePoint now);

  // Once the interval that held refusals back is over at `now`: the summary
  // of them ("and 1234 more in the last 10s: 1000 closed to make room (over
  // 256 unauthenticated), ..."), and counting starts afresh. nullopt while
  // the interval runs, or when nothing was held back. `limit` is the
  // listener's max_unauthenticated, named in the summary.
  std::optional<std::string> TakeSummary(TimePoint now, size_t limit);

  // True when refusals were held back: the caller arms a timer for
  // interval_end() to report the summary even if no refusal follows.
  bool holding() const { return held_total_ > 0; }
  TimePoint interval_end() const { return end_; }

  // The last accept error's text, for the summary ("Too many open files").
  void NoteAcceptError(std::string message) { last_accept_error_ = std::move(message); }

 private:
  const size_t per_interval_;
  const std::chrono::milliseconds interval_;
  TimePoint end_{};  // the current interval ends here (none yet: epoch)
  size_t admitted_ = 0;
  uint64_t held_total_ = 0;
  std::array<uint64_t, kRefusalKinds> held_{};
  std::string last_accept_error_;
};

}  // namespace entrysync::net
