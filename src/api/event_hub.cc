#include "api/event_hub.h"

#include <algorithm>
#include <type_traits>

#include "api/convert.h"

namespace entrysync {

EngineEvent ToEngineEvent(const NodeEvent& event) {
  return std::visit(
      [](const auto& e) -> EngineEvent {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, OwnerAdvancedEvent>) {
          return OwnerAdvanced{e.owner, e.owner_name, e.epoch, e.seq};
        } else if constexpr (std::is_same_v<T, PeerConnectedEvent>) {
          return PeerConnected{e.peer, e.peer_name, e.address};
        } else if constexpr (std::is_same_v<T, PeerDisconnectedEvent>) {
          return PeerDisconnected{e.peer, e.peer_name, e.reason};
        } else if constexpr (std::is_same_v<T, PeerRefusedEvent>) {
          return PeerRefused{e.address, e.reason};
        } else if constexpr (std::is_same_v<T, TransferProgressEvent>) {
          return TransferUpdate{.transfer_id = e.transfer_id,
                                .peer_name = e.peer_name,
                                .pulling = e.pulling,
                                .owner_name = e.owner_name,
                                .strategy = ParseSyncStrategy(e.strategy).value_or(SyncStrategy::kAuto),
                                .done = e.done,
                                .total = e.total,
                                .bytes = e.bytes,
                                .finished = e.finished};
        } else {
          static_assert(std::is_same_v<T, ErrorEvent>);
          return EngineError{e.message};
        }
      },
      event);
}

SubscriptionId EventHub::Subscribe(Handler handler) {
  MutexLock lock(mu_);
  SubscriptionId id(++last_id_);
  handlers_.emplace_back(id, std::move(handler));
  return id;
}

void EventHub::Unsubscribe(SubscriptionId id) {
  MutexLock delivering(deliver_mu_);
  MutexLock lock(mu_);
  std::erase_if(handlers_, [id](const auto& h) { return h.first == id; });
}

bool EventHub::Advances(const OwnerAdvanced& a) {
  auto [it, inserted] = reported_.try_emplace(a.owner, a.epoch, a.seq);
  if (inserted) return true;
  auto& [epoch, seq] = it->second;
  if (epoch == a.epoch && seq >= a.seq) return false;
  epoch = a.epoch;
  seq = a.seq;
  return true;
}

void EventHub::Seed(const OwnerAdvanced& held) {
  MutexLock lock(mu_);
  Advances(held);
}

void EventHub::Publish(const EngineEvent& event) {
  MutexLock delivering(deliver_mu_);
  std::vector<std::pair<SubscriptionId, Handler>> handlers;
  {
    MutexLock lock(mu_);
    if (const auto* a = std::get_if<OwnerAdvanced>(&event); a != nullptr && !Advances(*a)) return;
    handlers = handlers_;
  }
  for (const auto& [id, handler] : handlers) {
    {
      MutexLock lock(mu_);  // skip a handler unsubscribed by an earlier one
      bool subscribed =
          std::any_of(handlers_.begin(), handlers_.end(), [id = id](const auto& h) { return h.first == id; });
      if (!subscribed) continue;
    }
    handler(event);
  }
}

}  // namespace entrysync
