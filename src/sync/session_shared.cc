#include "sync/session_shared.h"

#include <spdlog/spdlog.h>

#include "proto/convert.h"
#include "sync/session.h"
#include "sync/session_host.h"

namespace entrysync {

Status SessionShared::FailRequest(uint64_t request_id, const Status& why) {
  Send(EncodeFrame(ErrorToWire(why, request_id)));
  return Status::Ok();
}

Reader& SessionShared::reader() { return host.reader(); }

std::weak_ptr<void> SessionShared::alive() { return session.weak_from_this(); }

void SessionShared::Resume(const std::function<Status()>& fn) {
  if (session.closed()) return;
  Status st = fn();
  if (st.ok()) return;
  spdlog::warn("session with {}: {}", peer_name.empty() ? std::string("a peer") : peer_name, st.message());
  session.Close(st);
}

bool SessionShared::MayUpload() {
  if (!upload_limit || upload_limit->Ready()) return true;
  if (!upload_waiting_) {
    upload_waiting_ = true;
    upload_limit->Wait(alive(), [this] {
      upload_waiting_ = false;
      if (!session.closed()) wake();
    });
  }
  return false;
}

Status SessionShared::WhenMayUpload(std::function<Status()> fn) {
  if (!upload_limit || upload_limit->Ready()) return fn();
  upload_limit->Wait(alive(), [this, fn = std::move(fn)] { Resume([&] { return WhenMayUpload(fn); }); });
  return Status::Ok();
}

Result<std::optional<WatermarkInfo>> SessionShared::Holds(const Uuid& owner) {
  auto dev = lib->FindDeviceByUuid(owner);
  if (!dev.ok() && dev.status().code() == Code::kNotFound) return std::optional<WatermarkInfo>();
  if (!dev.ok()) return dev.status();
  return lib->GetWatermark(dev->id);
}

Result<std::pair<Epoch, Seq>> SessionShared::Servable(DeviceRowId owner) {
  if (owner == lib->local_device()) {
    ES_ASSIGN_OR_RETURN(DeviceInfo me, lib->LocalDevice());
    return std::make_pair(me.epoch, me.max_seq);
  }
  ES_ASSIGN_OR_RETURN(auto wm, lib->GetWatermark(owner));
  if (!wm) return std::make_pair(Epoch(0), Seq(0));
  return std::make_pair(wm->epoch, wm->seq);
}

Result<uint64_t> SessionShared::CountRange(DeviceRowId owner, Seq after, Seq upto) {
  ES_ASSIGN_OR_RETURN(
      store::Stmt st,
      lib->db().Prepare("SELECT count(*) FROM entry WHERE owner = ? AND seq > ? AND seq <= ?"));
  st.Bind(1, owner.value()).Bind(2, after.value()).Bind(3, upto.value());
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.Int(0)) : 0;
}

Result<std::optional<Checkpoint>> SessionShared::CheckpointOf(DeviceRowId owner, Epoch epoch) {
  return lib->GetCheckpoint(owner, epoch);
}

bool SessionShared::Provable(const Uuid& owner, const PeerHas& has) const {
  if (owner == peer_uuid) return true;
  return has.checkpoint && has.checkpoint->epoch == has.epoch && has.checkpoint->seq == has.max_seq;
}

}  // namespace entrysync
