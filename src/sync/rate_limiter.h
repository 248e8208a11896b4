// Rate limits that hold: token buckets on the sync loop, one per peer device
// and direction, shared by every session with that device.
//
// TokenBucket is the arithmetic. It fills at `rate` bytes per second up to
// `burst` bytes. A unit (a batch, a snapshot chunk, a folder load) may go
// when the bucket is not in debt, and takes its whole size, which may put
// the bucket in debt: the next unit waits until the debt is paid back. Over
// any interval T a bucket thus lets through at most burst + rate * T plus
// one unit per transfer in flight, and idling fills it no further than
// `burst`: a daemon idle for a minute owes nobody a minute of bandwidth (a
// lifetime average did, and let 210 KB through in 0.2 s after a minute idle
// at 10 KB/s). A unit larger than the burst (a 1 MiB snapshot chunk) still
// goes, and is paid for afterwards.
//
// The burst, DefaultBurst(rate) = max(64 KiB, a quarter second of rate):
// 64 KiB lets a folder load, a live push or the first compressed batches
// of a small pull go at once after idling; at high rates a quarter second
// keeps the burst larger than a batch (so a pull does not stall on every
// one) while what exceeds the rate stays bounded by a quarter second's
// worth.
//
// RateLimiter is a bucket on the loop: units that must wait register a
// callback that runs once the bucket (and the node's total, when chained to
// one) is out of debt; one timer per limiter, whatever the number of
// sessions waiting. Time is Clock's (base/clock.h), so a ManualClock drives
// it in the simulation (sync/sim.h).
//
// RateLimits holds a node's limiters: per peer device, for what this node
// pulls (download: the receiver holds back credit and new pulls, see
// flow_control.h) and what it serves (upload: the sender parts wait before
// sending their next unit), and optionally a total per direction over all
// devices that every device's limiter is chained to.
//
// Thread safety: TokenBucket none (a value); RateLimiter and RateLimits on
// the sync loop only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "entrysync/types.h"
#include "sync/config.h"
#include "sync/loop.h"

namespace entrysync {

class TokenBucket {
 public:
  // max(64 KiB, rate / 4): see the file comment.
  static uint64_t DefaultBurst(uint64_t rate);

  // `rate` bytes per second, > 0; `burst` bytes, > 0. Starts full.
  TokenBucket(uint64_t rate, uint64_t burst);

  // Bytes available at `now` (seconds, Clock::Seconds()); negative: debt.
  double Level(double now) const;
  // True when a unit may go at `now`: the bucket is not in debt (by more
  // than a byte: times in seconds round).
  bool Ready(double now) const;
  // When Ready() holds: `now` or later.
  double ReadyAt(double now) const;
  // A unit of `bytes` went at `now`; the level may go negative.
  void Take(uint64_t bytes, double now);

  uint64_t rate() const { return static_cast<uint64_t>(rate_); }
  uint64_t burst() const { return static_cast<uint64_t>(burst_); }

 private:
  double rate_, burst_;
  double level_;           // at `at_`
  double at_ = 0;          // when level_ was last computed
  bool untouched_ = true;  // never taken from: full
};

class RateLimiter : public std::enable_shared_from_this<RateLimiter> {
 public:
  // `rate` bytes per second, 0 = this limiter itself does not limit; every
  // unit also passes `total` when given (it may be limited where this one
  // is not). Create with std::make_shared.
  RateLimiter(const SyncExecutor& exec, uint64_t rate, uint64_t burst,
              std::shared_ptr<RateLimiter> total = nullptr);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // True when a unit may go now (neither this bucket nor the total is in
  // debt).
  bool Ready() const;
  // A unit of `bytes` went now: charged here and to the total.
  void Take(uint64_t bytes);
  // Runs `fn` on the loop once Ready() holds, unless `alive` expired by then
  // or Stop() ran. Waiters run in the order they came; one that finds the
  // limiter in debt again (an earlier one took it) waits again. Never runs
  // `fn` before returning.
  void Wait(std::weak_ptr<void> alive, std::function<void()> fn);
  // Drops the waiters and the timer; Wait does nothing afterwards.
  void Stop();

  // When Ready() holds (now or later).
  double ReadyAt() const;
  uint64_t rate() const { return bucket_ ? bucket_->rate() : 0; }
  uint64_t burst() const { return bucket_ ? bucket_->burst() : 0; }

 private:
  void Arm();
  void OnTimer();

  std::optional<TokenBucket> bucket_;  // none: only the total limits
  std::shared_ptr<RateLimiter> total_;
  SyncTimer timer_;
  bool armed_ = false;
  bool stopped_ = false;
  std::deque<std::pair<std::weak_ptr<void>, std::function<void()>>> waiters_;
};

// The limiters of one peer device; null = that direction is not limited.
struct PeerLimiters {
  std::shared_ptr<RateLimiter> download;  // what this node pulls from it
  std::shared_ptr<RateLimiter> upload;    // what this node serves it
};

class RateLimits {
 public:
  // Rates from config: fetch_rate_limit, upload_rate_limit (per device) and
  // total_fetch_rate_limit, total_upload_rate_limit (over all devices).
  RateLimits(const SyncExecutor& exec, const SyncConfig& config);

  // The limiters of peer device `device`: the same ones for every session
  // with it, for the life of this object (a reconnection inherits the
  // debt).
  PeerLimiters For(const Uuid& device);
  // Stops every limiter (the node stops).
  void Stop();

 private:
  std::shared_ptr<RateLimiter> Make(uint64_t rate, const std::shared_ptr<RateLimiter>& total) const;

  SyncExecutor exec_;
  const uint64_t fetch_, upload_;
  std::shared_ptr<RateLimiter> total_fetch_, total_upload_;  // null: no total
  std::map<Uuid, PeerLimiters> devices_;
};

}  // namespace entrysync
