// EventHub: an Engine's subscribers, and the events it delivers to them.
//
// Events come from the Engine's nodes (NodeEvent, on a node thread) and
// from the Engine itself (OwnerAdvanced after a write it made). Delivery is
// one event at a time, in the order Publish was called. OwnerAdvanced is
// delivered only when it moves an owner past what was last delivered or
// seeded, so an advance reported by both a node and the Engine is heard once.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "entrysync/events.h"
#include "node/node_events.h"

namespace entrysync {

// The public form of a node's event.
EngineEvent ToEngineEvent(const NodeEvent& event);

class EventHub {
 public:
  using Handler = std::function<void(const EngineEvent&)>;

  SubscriptionId Subscribe(Handler handler) EXCLUDES(mu_);
  // Waits for a delivery in progress on another thread; a handler may
  // unsubscribe itself (or another) while it runs.
  void Unsubscribe(SubscriptionId id) EXCLUDES(mu_);

  // Records what the library held when the Engine opened: not delivered.
  void Seed(const OwnerAdvanced& held) EXCLUDES(mu_);
  void Publish(const EngineEvent& event) EXCLUDES(mu_);

 private:
  // True when `a` moves its owner past what was reported; records it.
  bool Advances(const OwnerAdvanced& a) REQUIRES(mu_);

  // Held while handlers run; recursive: a handler may unsubscribe.
  RecursiveMutex deliver_mu_ ACQUIRED_BEFORE(mu_);
  Mutex mu_;
  uint64_t last_id_ GUARDED_BY(mu_) = 0;
  std::vector<std::pair<SubscriptionId, Handler>> handlers_ GUARDED_BY(mu_);
  std::map<Uuid, std::pair<Epoch, Seq>> reported_ GUARDED_BY(mu_);
};

}  // namespace entrysync
