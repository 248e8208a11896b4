// Engine: the control channel (docs/control.md). A daemon's Engine serves
// other processes' writes; an Engine that runs no node routes its writes to
// the daemon that owns the library.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "api/engine_impl.h"
#include "store/library_lock.h"

namespace entrysync {

namespace {

template <class T>
ControlReply ReplyOf(Result<T> r) {
  if (!r.ok()) return ErrorReply(r.status());
  return ResultReply(std::move(r).value());
}

}  // namespace

std::optional<DaemonRef> Engine::Impl::OtherDaemon() {
  {
    MutexLock lock(mu);
    if (node) return std::nullopt;
  }
  std::optional<LockHolder> holder = LibraryLock::Holder(dir);
  // A daemon of this process (another Engine) is left alone: its library
  // connections are as good as ours, and its control thread may be the
  // caller.
  if (!holder || holder->what != kDaemonLockHolder || holder->pid == ::getpid()) return std::nullopt;
  // No socket can exist at this path: nobody could answer, write here.
  if (ControlServer::SocketPath(dir).empty()) return std::nullopt;
  return DaemonRef{.library_dir = dir, .pid = holder->pid};
}

void LogRouted(const ControlRequest& request, int pid) {
  spdlog::debug("{}: done by the daemon (pid {})", ControlOpName(request.op), pid);
}

ControlReply ServeControlRequest(Engine& engine, const ControlRequest& r,
                                 const std::function<void(uint64_t)>& progress) {
  ScanOptions scan;
  scan.progress = progress;
  switch (r.op) {
    case ControlOp::kAddLocation:
      return ReplyOf(engine.AddLocation(r.path, scan));
    case ControlOp::kRescan:
      return ReplyOf(engine.Rescan(r.location, scan));
    case ControlOp::kPair:
      return ReplyOf(engine.Pair(r.name, r.device, r.address));
    case ControlOp::kUnpair: {
      Status s = engine.Unpair(r.device, r.purge);
      return s.ok() ? ResultReply(std::monostate{}) : ErrorReply(s);
    }
    case ControlOp::kImportSnapshot:
      return ReplyOf(engine.ImportSnapshot(r.path, r.sha256));
  }
  return ErrorReply(Internal("unhandled control op"));
}

}  // namespace entrysync
