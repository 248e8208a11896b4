// In-process event bus: the store publishes what it committed, the sync
// service subscribes.
//
// Thread safety: Subscribe, Unsubscribe and Publish may be called from any
// thread. Handlers run synchronously on the publishing thread, after the
// publishing transaction committed; they must be quick (post work elsewhere)
// and must not call Subscribe/Unsubscribe on the same bus.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <variant>
#include <vector>

#include "base/mutex.h"
#include "entrysync/record.h"
#include "entrysync/types.h"

namespace entrysync {

// One bulk commit of an owner finished: `entry_count` rows are now stored and
// the owner's sequence reached `max_seq`. Never one event per entry.
struct BulkIndexComplete {
  Uuid owner;
  Uuid location;
  uint64_t entry_count = 0;
  Seq max_seq;
};

// One entry changed (added, modified, moved or deleted) in a small commit.
struct StateChange {
  Uuid owner;
  EntryRecord record;
};

using Event = std::variant<BulkIndexComplete, StateChange>;

class EventBus {
 public:
  using Handler = std::function<void(const Event&)>;
  using SubscriptionId = uint64_t;

  SubscriptionId Subscribe(Handler handler) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    handlers_.emplace_back(++next_id_, std::move(handler));
    return next_id_;
  }

  void Unsubscribe(SubscriptionId id) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    std::erase_if(handlers_, [id](const auto& h) { return h.first == id; });
  }

  void Publish(const Event& event) EXCLUDES(mu_) {
    std::vector<Handler> copy;
    {
      MutexLock lock(mu_);
      copy.reserve(handlers_.size());
      for (auto& h : handlers_) copy.push_back(h.second);
    }
    for (auto& h : copy) h(event);
  }

 private:
  Mutex mu_;
  SubscriptionId next_id_ GUARDED_BY(mu_) = 0;
  std::vector<std::pair<SubscriptionId, Handler>> handlers_ GUARDED_BY(mu_);
};

}  // namespace entrysync
