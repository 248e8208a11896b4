#include "sync/flow_control.h"

namespace entrysync {

FlowControl::FlowControl(const SyncConfig& config, std::weak_ptr<void> alive,
                         std::function<void(std::string)> send, std::function<void()> retry_pulls)
    : config_(config),
      alive_(std::move(alive)),
      send_(std::move(send)),
      retry_pulls_(std::move(retry_pulls)) {}

void FlowControl::Defer() {
  if (deferred_ || stopped_ || !limiter_) return;
  deferred_ = true;
  limiter_->Wait(alive_, [this] {
    deferred_ = false;
    if (!stopped_) retry_pulls_();
  });
}

void FlowControl::Grant(uint64_t transfer_id, std::optional<wire::Ack> ack) {
  wire::Credit c;
  c.set_transfer_id(transfer_id);
  c.set_batches(1);
  if (ack) *c.mutable_ack() = *ack;
  std::string frame = EncodeFrame(c);
  if (held_.empty() && (!limiter_ || limiter_->Ready())) {
    send_(std::move(frame));
    return;
  }
  held_.push_back(std::move(frame));
  WaitToRelease();
}

void FlowControl::WaitToRelease() {
  if (waiting_ || stopped_) return;
  waiting_ = true;
  limiter_->Wait(alive_, [this] {
    waiting_ = false;
    Release();
  });
}

// Out of debt: every held credit goes. Each lets one unit come, which pays
// for itself when it arrives (Received), so what runs ahead of the rate is
// at most one unit per transfer.
void FlowControl::Release() {
  if (stopped_) return;
  while (!held_.empty() && limiter_->Ready()) {
    send_(std::move(held_.front()));
    held_.erase(held_.begin());
  }
  if (!held_.empty()) WaitToRelease();
}

}  // namespace entrysync
