// What an Engine tells its subscribers (Engine::Subscribe).
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "entrysync/options.h"
#include "entrysync/types.h"

namespace entrysync {

// This library now holds `owner`'s rows up to `seq` in `epoch`: a commit of
// this device (AddLocation, Rescan) or rows that came from a peer (a sync, a
// snapshot import, the running node). Reported once per advance.
struct OwnerAdvanced {
  Uuid owner;
  std::string owner_name;
  Epoch epoch;
  Seq seq;
};

// A peer was accepted or dialed and its Hello accepted: the session syncs.
struct PeerConnected {
  Uuid peer;
  std::string peer_name;
  std::string address;
};

// A session ended; `reason` is "" for an orderly close.
struct PeerDisconnected {
  Uuid peer;
  std::string peer_name;
  std::string reason;
};

// A device was refused: not paired, another library, a bad handshake.
struct PeerRefused {
  std::string address;
  std::string reason;
};

// Progress of one transfer: when it starts, at most every 100 ms while it
// runs, and when it ends.
struct TransferUpdate {
  uint64_t transfer_id = 0;
  std::string peer_name;
  bool pulling = true;
  std::string owner_name;
  SyncStrategy strategy = SyncStrategy::kAuto;
  uint64_t done = 0;
  uint64_t total = 0;
  uint64_t bytes = 0;
  bool finished = false;
};

// Something failed in the background that a user should hear about.
struct EngineError {
  std::string message;  // one line
};

using EngineEvent =
    std::variant<OwnerAdvanced, PeerConnected, PeerDisconnected, PeerRefused, TransferUpdate, EngineError>;

using SubscriptionId = StrongInt<struct SubscriptionIdTag, uint64_t>;

}  // namespace entrysync
