#include "sync/transfers.h"

namespace entrysync {

double TransferProgress::Rate(double now) const {
  double end = finished > 0 ? finished : now;
  return end > started ? static_cast<double>(done) / (end - started) : 0;
}

double TransferProgress::Eta(double now) const {
  double r = Rate(now);
  if (finished > 0) return 0;
  if (r <= 0 || total == 0) return -1;
  return done >= total ? 0 : static_cast<double>(total - done) / r;
}

TransferRegistry::Key TransferRegistry::Add(TransferProgress p) {
  size_t finished = 0;
  for (const auto& [k, t] : items_) finished += t.finished > 0;
  // Keys grow with time: the first finished ones met are the oldest.
  for (auto it = items_.begin(); it != items_.end() && finished >= kKeepFinished;) {
    if (it->second.finished > 0) {
      it = items_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
  Key key = next_++;
  items_.emplace(key, std::move(p));
  return key;
}

std::vector<TransferProgress> TransferRegistry::List() const {
  std::vector<TransferProgress> out;
  out.reserve(items_.size());
  for (const auto& [k, t] : items_) out.push_back(t);
  return out;
}

}  // namespace entrysync
