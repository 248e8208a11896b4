// FlowControl: the receiving side's credit and rate limit for one session.
//
// A sender never has more batches (or snapshot chunks) in flight than the
// receiver granted: a pull starts with InitialCredit() and each applied
// batch grants one more. Under a rate limit the peer device's download
// limiter (sync/rate_limiter.h, shared by every session with that device)
// paces them: what a pull receives is charged to it, a credit is held back
// while it is in debt, and a new pull waits likewise; the limiter runs
// them when it allows.
//
// Thread safety: loop only.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/frame.h"
#include "sync/config.h"
#include "sync/rate_limiter.h"

namespace entrysync {

class FlowControl {
 public:
  // `send` writes a frame to the peer; `retry_pulls` runs when a pull that
  // Defer()ed may start. Nothing runs once `alive` expired (the session is
  // gone) or Stop() ran.
  FlowControl(const SyncConfig& config, std::weak_ptr<void> alive, std::function<void(std::string)> send,
              std::function<void()> retry_pulls);

  // Pulls are paced by `limiter` (the peer device's, once the peer is
  // known; null = no limit).
  void Limit(std::shared_ptr<RateLimiter> limiter) { limiter_ = std::move(limiter); }

  // Batches or chunks a new pull lets the server send before any credit.
  // Under a rate limit every one waits for its own credit, so the limit
  // holds from the first byte.
  uint32_t InitialCredit() const { return limiter_ ? 1 : config_.credit_window; }

  // `bytes` of a pull arrived.
  void Received(uint64_t bytes) {
    if (limiter_) limiter_->Take(bytes);
  }
  // True when a new pull must wait for the rate limit; it then Defer()s.
  bool OverLimit() const { return limiter_ && !limiter_->Ready(); }
  // Retries the pulls when the limit allows (retry_pulls runs then).
  void Defer();
  bool deferred() const { return deferred_; }
  // One more batch of `transfer_id` may come (with what we now hold).
  void Grant(uint64_t transfer_id, std::optional<wire::Ack> ack);
  // Nothing is sent afterwards.
  void Stop() { stopped_ = true; }

 private:
  void WaitToRelease();
  void Release();

  const SyncConfig& config_;
  std::weak_ptr<void> alive_;
  std::function<void(std::string)> send_;
  std::function<void()> retry_pulls_;
  std::shared_ptr<RateLimiter> limiter_;
  bool stopped_ = false;
  bool deferred_ = false;          // a pull waits for the limiter
  bool waiting_ = false;           // held credits wait for the limiter
  std::vector<std::string> held_;  // Credit frames, in the order granted
};

}  // namespace entrysync
