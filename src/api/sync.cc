// Engine: the node (Start, Stop) and one-shot syncs (SyncOnce).
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "api/convert.h"
#include "api/engine_impl.h"
#include "store/integrity.h"

namespace entrysync {

// As the daemon, the control server is made once the node holds the
// library's lock (a socket left by a killed daemon is replaced) and before
// it listens: whoever sees the daemon ready can reach it.
Status Engine::Start(const StartOptions& options) {
  // A server made by a Start that then failed: stopped once mu is released
  // (its request in progress, if any, waits for mu).
  std::unique_ptr<ControlServer> control;
  std::optional<IntegrityReport> integrity;  // logged once the node started: a failed start is one line
  return [&]() -> Status {
    MutexLock lock(impl_->mu);
    if (impl_->node) return AlreadyExists("a node already runs on " + impl_->dir + " in this process");
    NodeOptions o = impl_->NodeOptionsFor(ToSyncConfig(options.sync));
    o.listen = options.listen;
    o.dial_peers = options.dial_peers;
    o.write_status = options.write_status;
    o.on_locked = [this, &control, &integrity]() -> Status {
      // A daemon passes its rows on to its peers: a damaged library is
      // refused here, before anything is served from it.
      auto checked = CheckLibraryIntegrity(impl_->dir);
      if (!checked.ok())
        return Status(checked.status().code(), checked.status().message() + "; not serving it");
      integrity = std::move(*checked);
      auto server = ControlServer::Start(impl_->dir, [this](const ControlRequest& r, const auto& progress) {
        return ServeControlRequest(*this, r, progress);
      });
      if (server.ok()) {
        control = std::move(*server);
      } else if (server.status().code() == Code::kInvalidArgument) {
        spdlog::warn("other processes' writes run in those processes: {}", server.status().message());
      } else {
        return server.status();
      }
      return Status::Ok();
    };
    ES_ASSIGN_OR_RETURN(auto node, Node::Open(std::move(o)));
    ES_RETURN_IF_ERROR(node->Start());
    if (integrity && integrity->complete) spdlog::info("library {}: {}", impl_->dir, integrity->summary);
    if (integrity && !integrity->complete) spdlog::warn("library {}: {}", impl_->dir, integrity->summary);
    impl_->node = std::move(node);
    impl_->daemon = options.write_status;
    impl_->control = std::move(control);
    // The daemon's writes go through its node's writer (Impl::Write,
    // Impl::Index), which announces them; no notices to itself.
    if (impl_->daemon) impl_->lib->SetCommitNotices(false);
    return Status::Ok();
  }();
}

// The control server goes first, while the node still runs: a request in
// progress finishes on it (and may need mu meanwhile).
void Engine::Stop() {
  std::unique_ptr<ControlServer> control;
  {
    MutexLock lock(impl_->mu);
    control = std::move(impl_->control);
  }
  control.reset();
  std::unique_ptr<Node> node;
  {
    MutexLock lock(impl_->mu);
    node = std::move(impl_->node);
    impl_->daemon = false;
    impl_->lib->SetCommitNotices(true);
  }
  if (node) node->Stop();
}

bool Engine::running() const {
  MutexLock lock(impl_->mu);
  return impl_->node != nullptr;
}

uint16_t Engine::listen_port() const {
  MutexLock lock(impl_->mu);
  return impl_->node ? impl_->node->listen_port() : 0;
}

namespace {

SyncProgress ProgressOf(const SessionSnapshot& snap, double now) {
  SyncProgress p;
  p.wire_received = snap.wire_received;
  p.wire_sent = snap.wire_sent;
  for (const auto& t : snap.transfers) {
    if (t.pulling) {
      p.done += t.done;
      p.total += t.total;
    }
    p.transfers.push_back(ToTransfer(t, now));
  }
  return p;
}

}  // namespace

// Polls the session every 50 ms: a Session says when both sides are current
// only when asked (BothCurrent), and the progress callback wants the same
// pace anyway.
Result<SyncReport> Engine::SyncOnce(const DeviceId& peer, const SyncOnceOptions& options) {
  DeviceInfo target;
  NodeOptions o;
  {
    MutexLock lock(impl_->mu);
    auto d = impl_->lib->FindDeviceById(peer);
    if (!d.ok() && d.status().code() != Code::kNotFound) return d.status();
    if (!d.ok() || d->is_local || !d->trusted)
      return NotFound("device " + peer.ToShortString() + " is not a paired peer");
    target = *d;
    o = impl_->NodeOptionsFor(ToSyncConfig(options.sync));
  }
  o.dial_peers = false;
  o.write_status = false;
  ES_ASSIGN_OR_RETURN(auto node, Node::Open(std::move(o)));
  ES_RETURN_IF_ERROR(node->Start());
  auto t0 = std::chrono::steady_clock::now();
  auto session = node->Connect(target);
  if (!session.ok()) {
    node->Stop();
    return session.status();
  }
  std::shared_ptr<Session> s = *session;
  auto finish = [&](Status why) -> Status {
    node->Stop();
    impl_->PublishAdvances();  // rows applied before a failure stay applied
    return why;
  };
  for (;;) {
    if (options.progress) options.progress(ProgressOf(s->Snapshot(), SteadyNow()));
    if (s->BothCurrent() || s->closed()) break;
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - t0;
    if (options.timeout.count() > 0 && elapsed > options.timeout)
      return finish(Aborted("sync with " + target.name + " did not finish within " +
                            std::to_string(static_cast<int>(options.timeout.count())) + "s"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  SessionSnapshot snap = s->Snapshot();
  bool current = s->BothCurrent();
  Status why = s->close_status();
  if (!current && why.ok()) why = Aborted("the session ended before both devices were current");
  ES_RETURN_IF_ERROR(finish(current ? Status::Ok() : why.Wrap("sync with " + target.name)));
  double now = SteadyNow();
  SyncReport report{.peer_name = target.name,
                    .seconds = secs,
                    .counters = ToSyncCounters(snap.counters),
                    .wire_received = snap.wire_received,
                    .wire_sent = snap.wire_sent,
                    .transfers = {}};
  for (const auto& t : snap.transfers) report.transfers.push_back(ToTransfer(t, now));
  return report;
}

}  // namespace entrysync
