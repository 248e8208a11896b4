// Checkpoint: an owner's signed statement of its whole row set.
//
// After each commit an owner signs, with its device key (Ed25519),
//   "entrysync-checkpoint-v1" || library id (16) || owner uuid (16)
//   || epoch (8, big-endian) || seq (8, big-endian) || digest (32)
// where digest is the SHA-256 of the owner's LtHash set digest
// (store/digest.h) after that commit. Any replica passes the owner's latest
// checkpoint on with the rows; a receiver whose own digest of the owner,
// at that seq, differs has rows the owner never wrote. The key travels in
// the checkpoint and is self-certifying: the owner uuid is derived from it
// (OwnerUuidOf), so a relay can neither forge nor re-attribute one.
// docs/trust.md has the whole argument.
#pragma once

#include <openssl/types.h>

#include <array>
#include <string>

#include "base/lthash.h"
#include "entrysync/status.h"
#include "entrysync/types.h"

namespace entrysync {

struct Checkpoint {
  Uuid owner;
  Epoch epoch;
  Seq seq;
  LtHash::Checksum digest{};
  std::array<uint8_t, 32> public_key{};  // raw Ed25519
  std::array<uint8_t, 64> signature{};

  bool operator==(const Checkpoint&) const = default;
  // The bytes the signature covers.
  std::string SignedBytes(const Uuid& library) const;
};

// Signs (library, owner, epoch, seq, digest) with `key` (Ed25519). The
// owner is the key's own uuid. Fails when `key` is not an Ed25519 key.
Result<Checkpoint> SignCheckpoint(EVP_PKEY* key, const Uuid& library, Epoch epoch, Seq seq,
                                  const LtHash::Checksum& digest);

// OK when `cp.public_key` is the owner's (its uuid derives from it) and the
// signature over `library` verifies; PermissionDenied naming what failed.
Status VerifyCheckpoint(const Checkpoint& cp, const Uuid& library);

// The device id (SHA-256 of the DER SubjectPublicKeyInfo) of a raw Ed25519
// public key.
DeviceId DeviceIdOfEd25519(const std::array<uint8_t, 32>& public_key);

}  // namespace entrysync
