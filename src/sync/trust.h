// Trust: signed checkpoints and the verification of replicated rows
// (docs/trust.md, DESIGN.md §10).
//
// Every function that takes a Library runs on the writer's connection (a
// writer job), so checking a replica against a checkpoint, and dropping it
// when it does not match, is ordered with the rows that produced it.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "entrysync/status.h"
#include "proto/entrysync.pb.h"
#include "store/checkpoint.h"
#include "store/library.h"
#include "store/replica.h"

namespace entrysync {

// Signs this device's checkpoint (the node's device key; sync never sees
// the key itself).
using CheckpointSigner = std::function<Result<Checkpoint>(Epoch, Seq, const LtHash::Checksum&)>;

wire::Checkpoint CheckpointToWire(const Checkpoint& cp);
// Sizes checked; the signature is not (AcceptCheckpoint does).
Result<Checkpoint> CheckpointFromWire(const wire::Checkpoint& w);

// Where a replica of one owner stands against that owner's checkpoints.
struct Verification {
  enum class Kind : uint8_t {
    kNone,      // nothing to check: no rows, or behind the latest checkpoint
    kVerified,  // the digest at seq equals the owner's signed one
    kAhead,     // rows beyond the latest checkpoint known (not verified yet)
    kDiverged,  // the rows did not verify: dropped, to be fetched again
  };
  Kind kind = Kind::kNone;
  Seq seq;             // the watermark checked
  Seq checkpoint_seq;  // the latest checkpoint's seq (0: none)
  std::string detail;  // for kDiverged: what did not match
};

// Checks `cp`'s key and signature, refuses checkpoints of revoked devices
// (PermissionDenied), registers the owner (and its key) when new, and
// stores it when newer than the stored one of its epoch. Checkpoints of
// this device itself are ignored. Returns whether it was stored.
Result<bool> AcceptCheckpoint(Library& lib, const Checkpoint& cp, const std::string& owner_name);

// Checks the replica of `owner` against the latest checkpoint of its
// epoch. At the checkpoint's seq, a digest that differs drops the owner's
// rows (watermark back to 0 in the same epoch). With `must_end_verified`
// (a pull from a relay just ended), rows beyond every checkpoint known are
// dropped the same way: a relay serves only what it can prove.
Result<Verification> VerifyOwner(Library& lib, Replica& replica, DeviceRowId owner, bool must_end_verified);

// Signs and stores this device's checkpoint when the stored one is not for
// its current (epoch, max seq, digest). Returns whether it signed.
Result<bool> SignLocalCheckpoint(Library& lib, const CheckpointSigner& sign);

}  // namespace entrysync
