#include "sync/trust.h"

#include <cstring>

#include "proto/convert.h"

namespace entrysync {
namespace {

template <size_t N>
Status CopyExact(std::string_view from, std::array<uint8_t, N>& to, const char* field) {
  if (from.size() != N)
    return ProtocolError(std::string("checkpoint ") + field + ": " + std::to_string(from.size()) +
                         " bytes, expected " + std::to_string(N));
  std::memcpy(to.data(), from.data(), N);
  return Status::Ok();
}

std::string Short(const Uuid& u) { return u.ToString().substr(0, 8); }

}  // namespace

wire::Checkpoint CheckpointToWire(const Checkpoint& cp) {
  wire::Checkpoint w;
  w.set_owner(UuidToWire(cp.owner));
  w.set_epoch(cp.epoch.value());
  w.set_seq(cp.seq.value());
  w.set_digest(cp.digest.data(), cp.digest.size());
  w.set_public_key(cp.public_key.data(), cp.public_key.size());
  w.set_signature(cp.signature.data(), cp.signature.size());
  return w;
}

Result<Checkpoint> CheckpointFromWire(const wire::Checkpoint& w) {
  Checkpoint cp;
  ES_ASSIGN_OR_RETURN(cp.owner, UuidFromWire(w.owner(), "checkpoint owner"));
  cp.epoch = Epoch(w.epoch());
  cp.seq = Seq(w.seq());
  if (cp.seq.value() < 0) return ProtocolError("checkpoint seq " + std::to_string(w.seq()) + " is negative");
  ES_RETURN_IF_ERROR(CopyExact(w.digest(), cp.digest, "digest"));
  ES_RETURN_IF_ERROR(CopyExact(w.public_key(), cp.public_key, "public_key"));
  ES_RETURN_IF_ERROR(CopyExact(w.signature(), cp.signature, "signature"));
  return cp;
}

Result<bool> AcceptCheckpoint(Library& lib, const Checkpoint& cp, const std::string& owner_name) {
  ES_RETURN_IF_ERROR(VerifyCheckpoint(cp, lib.library_id()));
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib.LocalDevice());
  if (cp.owner == me.uuid) return false;  // ours: we sign our own
  const DeviceId key = DeviceIdOfEd25519(cp.public_key);
  auto dev = lib.FindDeviceByUuid(cp.owner);
  DeviceRowId row;
  if (dev.ok()) {
    if (dev->revoked) return PermissionDenied("checkpoint of " + dev->name + ", a removed device, refused");
    row = dev->id;
    if (!dev->device_id) ES_RETURN_IF_ERROR(lib.SetDeviceId(row, key));
  } else if (dev.status().code() == Code::kNotFound) {
    ES_ASSIGN_OR_RETURN(row, lib.EnsureDevice(cp.owner, owner_name.empty() ? Short(cp.owner) : owner_name));
    ES_RETURN_IF_ERROR(lib.SetDeviceId(row, key));
  } else {
    return dev.status();
  }
  return lib.PutCheckpoint(row, cp);
}

Result<Verification> VerifyOwner(Library& lib, Replica& replica, DeviceRowId owner, bool must_end_verified) {
  Verification v;
  ES_ASSIGN_OR_RETURN(auto wm, lib.GetWatermark(owner));
  if (!wm || wm->seq.value() == 0) return v;
  v.seq = wm->seq;
  ES_ASSIGN_OR_RETURN(auto cp, lib.GetCheckpoint(owner, wm->epoch));
  if (cp) v.checkpoint_seq = cp->seq;
  // Live changes beyond the watermark (applied before the Current that
  // moves it) are in the digest but not in the watermark: the replica is
  // between two states, and is checked once the watermark covers them.
  ES_ASSIGN_OR_RETURN(Seq stored, lib.MaxStoredSeq(owner));
  if (stored > wm->seq) return v;
  if (cp && cp->seq == wm->seq) {
    ES_ASSIGN_OR_RETURN(LtHash mine, lib.digests().Get(owner));
    if (mine.checksum() == cp->digest) {
      if (wm->verified_seq != wm->seq) ES_RETURN_IF_ERROR(lib.SetVerifiedSeq(owner, wm->seq));
      v.kind = Verification::Kind::kVerified;
      return v;
    }
    v.detail =
        "the set digest at seq " + std::to_string(wm->seq.value()) + " differs from the one the owner signed";
  } else if (!cp || cp->seq < wm->seq) {
    if (!must_end_verified) {
      v.kind = Verification::Kind::kAhead;
      return v;
    }
    v.detail = "rows up to seq " + std::to_string(wm->seq.value()) +
               " go beyond the owner's latest checkpoint (" +
               (cp ? "seq " + std::to_string(cp->seq.value()) : std::string("none")) + ")";
  } else {
    return v;  // behind the latest checkpoint: more rows are on their way
  }
  // Not the owner's rows: drop them; they are fetched again (elsewhere).
  ES_RETURN_IF_ERROR(replica.ResetOwner(owner, wm->epoch));
  v.kind = Verification::Kind::kDiverged;
  return v;
}

Result<bool> SignLocalCheckpoint(Library& lib, const CheckpointSigner& sign) {
  if (!sign) return false;
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib.LocalDevice());
  ES_ASSIGN_OR_RETURN(LtHash digest, lib.digests().Get(me.id));
  const LtHash::Checksum sum = digest.checksum();
  ES_ASSIGN_OR_RETURN(auto stored, lib.GetCheckpoint(me.id, me.epoch));
  if (stored && stored->seq == me.max_seq && stored->digest == sum) return false;
  ES_ASSIGN_OR_RETURN(Checkpoint cp, sign(me.epoch, me.max_seq, sum));
  if (cp.owner != me.uuid)
    return Internal("the device key signs for owner " + cp.owner.ToString() + ", not this device's " +
                    me.uuid.ToString());
  ES_RETURN_IF_ERROR(lib.ReplaceCheckpoint(me.id, cp));
  return true;
}

}  // namespace entrysync
