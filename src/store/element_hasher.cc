#include "store/element_hasher.h"

#include <pthread.h>

namespace entrysync {
namespace {
constexpr size_t kMaxQueued = 2;
}  // namespace

void ElementBatch::HashInto(DeltaMap& deltas) const {
  LtHash* d = nullptr;
  int64_t owner = 0;
  ForEach([&](int64_t o, int sign, std::string_view element) {
    if (!d || o != owner) {  // runs of one owner are the rule
      owner = o;
      d = &deltas[o];
    }
    if (sign > 0)
      d->Add(element);
    else
      d->Remove(element);
  });
}

ElementHasher::~ElementHasher() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  work_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void ElementHasher::Submit(ElementBatch&& batch) {
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  MutexLock lock(mu_);
  while (queue_.size() >= kMaxQueued) done_.Wait(mu_);
  queue_.push_back(std::move(batch));
  work_.NotifyOne();
}

ElementBatch ElementHasher::Spare() {
  MutexLock lock(mu_);
  if (spare_.empty()) return ElementBatch();
  ElementBatch b = std::move(spare_.back());
  spare_.pop_back();
  return b;
}

DeltaMap ElementHasher::Drain() {
  MutexLock lock(mu_);
  while (!queue_.empty() || hashing_) done_.Wait(mu_);
  DeltaMap out = std::move(deltas_);
  deltas_.clear();
  return out;
}

bool ElementHasher::busy() {
  MutexLock lock(mu_);
  return !queue_.empty() || hashing_ || !deltas_.empty();
}

void ElementHasher::Run() {
  pthread_setname_np(pthread_self(), "es-digest");
  DeltaMap local;
  MutexLock lock(mu_);
  for (;;) {
    while (queue_.empty() && !stop_) work_.Wait(mu_);
    if (queue_.empty()) return;  // stop_, nothing left
    ElementBatch batch = std::move(queue_.front());
    queue_.pop_front();
    hashing_ = true;
    done_.NotifyAll();  // room in the queue
    lock.Unlock();
    local.clear();
    batch.HashInto(local);
    batch.Clear();
    lock.Lock();
    for (auto& [owner, delta] : local) deltas_[owner] += delta;
    if (spare_.size() < kMaxQueued) spare_.push_back(std::move(batch));
    hashing_ = false;
    done_.NotifyAll();
  }
}

}  // namespace entrysync
