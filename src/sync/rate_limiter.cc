#include "sync/rate_limiter.h"

#include <algorithm>
#include <chrono>

namespace entrysync {
namespace {

// Rounded up: a timer never fires before the debt is paid.
Clock::time_point At(double seconds) {
  return Clock::time_point(std::chrono::ceil<Clock::duration>(std::chrono::duration<double>(seconds)));
}

// What rounding of times in seconds may leave of a debt that is paid.
constexpr double kRoundingBytes = 1.0;

}  // namespace

// ---- TokenBucket ----

uint64_t TokenBucket::DefaultBurst(uint64_t rate) { return std::max<uint64_t>(64 << 10, rate / 4); }

TokenBucket::TokenBucket(uint64_t rate, uint64_t burst)
    : rate_(static_cast<double>(rate)), burst_(static_cast<double>(burst)), level_(burst_) {}

double TokenBucket::Level(double now) const {
  if (untouched_) return level_;
  return std::min(burst_, level_ + std::max(0.0, now - at_) * rate_);
}

bool TokenBucket::Ready(double now) const { return Level(now) > -kRoundingBytes; }

double TokenBucket::ReadyAt(double now) const {
  double level = Level(now);
  return level >= 0 ? now : now + -level / rate_;
}

void TokenBucket::Take(uint64_t bytes, double now) {
  level_ = Level(now) - static_cast<double>(bytes);
  at_ = now;
  untouched_ = false;
}

// ---- RateLimiter ----

RateLimiter::RateLimiter(const SyncExecutor& exec, uint64_t rate, uint64_t burst,
                         std::shared_ptr<RateLimiter> total)
    : total_(std::move(total)), timer_(exec) {
  if (rate > 0) bucket_.emplace(rate, burst);
}

bool RateLimiter::Ready() const {
  double now = Clock::Seconds();
  return (!bucket_ || bucket_->Ready(now)) && (!total_ || total_->Ready());
}

double RateLimiter::ReadyAt() const {
  double now = Clock::Seconds();
  double at = bucket_ ? bucket_->ReadyAt(now) : now;
  return total_ ? std::max(at, total_->ReadyAt()) : at;
}

void RateLimiter::Take(uint64_t bytes) {
  if (bucket_) bucket_->Take(bytes, Clock::Seconds());
  if (total_) total_->Take(bytes);
}

void RateLimiter::Wait(std::weak_ptr<void> alive, std::function<void()> fn) {
  if (stopped_) return;
  waiters_.emplace_back(std::move(alive), std::move(fn));
  Arm();
}

void RateLimiter::Stop() {
  stopped_ = true;
  waiters_.clear();
  timer_.cancel();
}

// One wait at a time, for when the debt is paid: a Take meanwhile only
// makes it early (it then waits again), never late.
void RateLimiter::Arm() {
  if (armed_ || stopped_ || waiters_.empty()) return;
  armed_ = true;
  timer_.expires_at(At(ReadyAt()));
  timer_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    if (ec) return;  // cancelled: stopped or destroyed
    if (auto self = weak.lock()) self->OnTimer();
  });
}

void RateLimiter::OnTimer() {
  armed_ = false;
  if (stopped_) return;
  if (!Ready()) {
    Arm();
    return;
  }
  // In the order they came, while the limiter allows: one that sends puts
  // it in debt and the rest keep their place. One that waits again joins
  // the end.
  while (!waiters_.empty() && !stopped_ && Ready()) {
    auto [alive, fn] = std::move(waiters_.front());
    waiters_.pop_front();
    if (!alive.expired()) fn();
  }
  Arm();
}

// ---- RateLimits ----

RateLimits::RateLimits(const SyncExecutor& exec, const SyncConfig& config)
    : exec_(exec), fetch_(config.fetch_rate_limit), upload_(config.upload_rate_limit) {
  total_fetch_ = Make(config.total_fetch_rate_limit, nullptr);
  total_upload_ = Make(config.total_upload_rate_limit, nullptr);
}

std::shared_ptr<RateLimiter> RateLimits::Make(uint64_t rate,
                                              const std::shared_ptr<RateLimiter>& total) const {
  if (rate == 0 && !total) return nullptr;
  return std::make_shared<RateLimiter>(exec_, rate, TokenBucket::DefaultBurst(rate), total);
}

PeerLimiters RateLimits::For(const Uuid& device) {
  auto it = devices_.find(device);
  if (it != devices_.end()) return it->second;
  PeerLimiters l{Make(fetch_, total_fetch_), Make(upload_, total_upload_)};
  devices_.emplace(device, l);
  return l;
}

void RateLimits::Stop() {
  for (auto& [device, l] : devices_) {
    if (l.download) l.download->Stop();
    if (l.upload) l.upload->Stop();
  }
  if (total_fetch_) total_fetch_->Stop();
  if (total_upload_) total_upload_->Stop();
}

}  // namespace entrysync
