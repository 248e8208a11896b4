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
#include <mutex>
#include <utility>
#include <vector>

#include "entrysync/events.h"
#include "node/node_events.h"

namespace entrysync {

// The public form of a node's event.
EngineEvent ToEngineEvent(const NodeEvent& event);

class EventHub {
 public:
  using Handler = std::function<void(const EngineEvent&)>;

  SubscriptionId Subscribe(Handler handler);
  // Waits for a delivery in progress on another thread; a handler may
  // unsubscribe itself (or another) while it runs.
  void Unsubscribe(SubscriptionId id);

  // Records what the library held when the Engine opened: not delivered.
  void Seed(const OwnerAdvanced& held);
  void Publish(const EngineEvent& event);

 private:
  // True when `a` moves its owner past what was reported; records it.
  bool Advances(const OwnerAdvanced& a);

  std::recursive_mutex deliver_mu_;  // held while handlers run
  std::mutex mu_;                    // guards the members below
  uint64_t last_id_ = 0;
  std::vector<std::pair<SubscriptionId, Handler>> handlers_;
  std::map<Uuid, std::pair<Epoch, Seq>> reported_;
};

}  // namespace entrysync
