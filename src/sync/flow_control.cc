#include "sync/flow_control.h"

#include <algorithm>

namespace entrysync {
namespace {

Clock::time_point At(double seconds) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
}

}  // namespace

FlowControl::FlowControl(const SyncConfig& config, const SyncExecutor& exec, std::weak_ptr<void> alive,
                         std::function<void(std::string)> send, std::function<void()> retry_pulls)
    : config_(config),
      alive_(std::move(alive)),
      send_(std::move(send)),
      retry_pulls_(std::move(retry_pulls)),
      timer_(exec) {}

void FlowControl::PullStarted() {
  if (fetch_started_ == 0) fetch_started_ = Clock::Seconds();
}

double FlowControl::RateDue() const {
  if (config_.fetch_rate_limit == 0 || fetch_started_ == 0) return 0;
  return fetch_started_ + static_cast<double>(fetch_bytes_) / static_cast<double>(config_.fetch_rate_limit);
}

void FlowControl::Defer() {
  retry_at_ = RateDue();
  Arm();
}

void FlowControl::Grant(uint64_t transfer_id, std::optional<wire::Ack> ack) {
  wire::Credit c;
  c.set_transfer_id(transfer_id);
  c.set_batches(1);
  if (ack) *c.mutable_ack() = *ack;
  std::string frame = EncodeFrame(c);
  double due = RateDue();
  if (due <= Clock::Seconds()) {
    send_(std::move(frame));
    return;
  }
  held_.emplace_back(due, std::move(frame));
  Arm();
}

void FlowControl::Stop() {
  stopped_ = true;
  timer_.cancel();
}

// Wakes when the earliest held credit or deferred pull is due.
void FlowControl::Arm() {
  if (stopped_) return;
  double due = retry_at_;
  for (const auto& [at, frame] : held_) due = due == 0 ? at : std::min(due, at);
  if (due == 0) return;
  timer_.expires_at(At(due));
  timer_.async_wait([this, alive = alive_](const asio::error_code& ec) {
    if (ec) return;  // re-armed, stopped or destroyed
    auto keep = alive.lock();
    if (keep && !stopped_) OnTimer();
  });
}

void FlowControl::OnTimer() {
  double now = Clock::Seconds();
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->first <= now) {
      send_(std::move(it->second));
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
  if (retry_at_ > 0 && now >= retry_at_) {
    retry_at_ = 0;
    retry_pulls_();
  }
  Arm();
}

}  // namespace entrysync
