// NodeEvent: what a running node tells its embedder (the public API's event
// subscription, the CLI's progress line, the daemon's HTTP layer).
//
// Events are delivered to NodeOptions::on_event on the node's io thread, one
// at a time, in the order they happened. A handler must not block and must
// not call Node::Stop; it may copy the event and post it elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "entrysync/types.h"

namespace entrysync {

// This library now holds `owner`'s rows up to `seq` in `epoch` (a commit of
// this device, or rows pulled from a peer).
struct OwnerAdvancedEvent {
  Uuid owner;
  std::string owner_name;
  Epoch epoch;
  Seq seq;
};

// A peer's Hello was accepted: the session is syncing.
struct PeerConnectedEvent {
  Uuid peer;
  std::string peer_name;
  std::string address;
};

// A session ended; `reason` is empty for an orderly close.
struct PeerDisconnectedEvent {
  Uuid peer;
  std::string peer_name;
  std::string reason;
};

// A device was refused (not paired, another library, bad handshake).
struct PeerRefusedEvent {
  std::string address;
  std::string reason;
};

// Progress of one transfer (emitted when it starts, at most every 100 ms
// while it runs, and when it ends).
struct TransferProgressEvent {
  uint64_t transfer_id = 0;
  std::string peer_name;
  bool pulling = true;
  std::string owner_name;
  std::string strategy;  // StrategyName()
  uint64_t done = 0, total = 0, bytes = 0;
  bool finished = false;
};

// Something failed that the user should hear about (one line).
struct ErrorEvent {
  std::string message;
};

using NodeEvent = std::variant<OwnerAdvancedEvent, PeerConnectedEvent, PeerDisconnectedEvent,
                               PeerRefusedEvent, TransferProgressEvent, ErrorEvent>;

}  // namespace entrysync
