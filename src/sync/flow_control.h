// FlowControl: the receiving side's credit and rate limit for one session.
//
// A sender never has more batches (or snapshot chunks) in flight than the
// receiver granted: a pull starts with InitialCredit() and each applied
// batch grants one more. Under a rate limit (SyncConfig::fetch_rate_limit,
// bytes per second over the session's pulls) a credit is held back until
// the bytes received so far fit the limit, and a new pull waits likewise;
// a timer on the loop releases them when due.
//
// Thread safety: loop only.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proto/frame.h"
#include "sync/config.h"
#include "sync/loop.h"

namespace entrysync {

class FlowControl {
 public:
  // `send` writes a frame to the peer; `retry_pulls` runs when a pull that
  // Defer()ed is due. The timer does nothing once `alive` expired (the
  // session is gone).
  FlowControl(const SyncConfig& config, const SyncExecutor& exec, std::weak_ptr<void> alive,
              std::function<void(std::string)> send, std::function<void()> retry_pulls);

  // Batches or chunks a new pull lets the server send before any credit.
  // Under a rate limit every one waits for its own credit, so the limit
  // holds from the first byte.
  uint32_t InitialCredit() const { return config_.fetch_rate_limit > 0 ? 1 : config_.credit_window; }

  // A pull starts now (the limit counts from the first one).
  void PullStarted();
  // `bytes` of a pull arrived.
  void Received(uint64_t bytes) { fetch_bytes_ += bytes; }
  // True when a new pull must wait for the rate limit; it then Defer()s.
  bool OverLimit() const { return RateDue() > Clock::Seconds(); }
  // Retries the pulls when the limit allows (retry_pulls runs then).
  void Defer();
  bool deferred() const { return retry_at_ > 0; }
  // One more batch of `transfer_id` may come (with what we now hold).
  void Grant(uint64_t transfer_id, std::optional<wire::Ack> ack);
  // Stops the timer; nothing is sent afterwards.
  void Stop();

 private:
  double RateDue() const;
  void Arm();
  void OnTimer();

  const SyncConfig& config_;
  std::weak_ptr<void> alive_;
  std::function<void(std::string)> send_;
  std::function<void()> retry_pulls_;
  SyncTimer timer_;
  bool stopped_ = false;
  double fetch_started_ = 0;                          // first pull of the session
  uint64_t fetch_bytes_ = 0;                          // bytes received by pulls
  double retry_at_ = 0;                               // a deferred pull (0 = none)
  std::vector<std::pair<double, std::string>> held_;  // (due, Credit frame)
};

}  // namespace entrysync
