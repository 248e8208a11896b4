#include "sync/sync_service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <asio/local/datagram_protocol.hpp>
#include <cstring>
#include <future>

#include "sync/snapshot_cache.h"
#include "sync/snapshot_download.h"

namespace entrysync {

// LIBRARY/notify.sock: other processes' Library connections send a byte
// after each commit (store/commit_notice.h).
struct SyncService::Watch {
  explicit Watch(const SyncExecutor& exec) : socket(exec) {}
  asio::local::datagram_protocol::socket socket;
  std::string path;
  char buf[64];
};

SyncService::SyncService(std::string library_dir, SyncConfig config, SyncExecutor exec, SyncObserver observer,
                         std::optional<SyncExecutor> write_exec)
    : dir_(std::move(library_dir)),
      config_(std::move(config)),
      exec_(std::move(exec)),
      observer_(std::move(observer)),
      writer_(exec_, std::move(write_exec)),
      limits_(exec_, config_),
      prepare_timer_(exec_) {}

// The Reader's threads stop first: a job that runs finishes (an export may
// take a second), queued ones are dropped.
SyncService::~SyncService() {
  if (bus_) bus_->Unsubscribe(sub_);
  reader_.reset();
}

Status SyncService::Start() {
  ES_ASSIGN_OR_RETURN(lib_, Library::Open(dir_));
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib_->LocalDevice());
  if (me.device_id) my_id_ = *me.device_id;
  RemoveFinishedDownloads(*lib_, dir_);  // a kill after an import's commit left its files
  // What we already hold is announced by each session's Hello.
  ES_RETURN_IF_ERROR(PollAdvances(std::nullopt, /*baseline=*/true));
  if (config_.hear_other_processes) {
    Status watched = WatchLibrary();
    if (!watched.ok())
      spdlog::warn("changes made by other processes reach peers only with this process's own: {}",
                   watched.message());
  }
  ES_ASSIGN_OR_RETURN(reader_, Reader::Start(dir_, exec_, config_.reader_threads));
  // A daemon hears its writer's commits from the writer itself; a one-shot
  // node tells a daemon that may serve the same library.
  ES_RETURN_IF_ERROR(writer_.Start(
      dir_, /*commit_notices=*/watch_ == nullptr, [this](const OwnerPosition& pos) { OnWriterAdvanced(pos); },
      config_.sign_checkpoint));
  // Our checkpoint, if what is stored is not for our rows as they are (a
  // library indexed by another process, or by an older version).
  if (config_.sign_checkpoint) writer_.SignOwn([](const Result<WriteOutcome>&) {});
  if (config_.prepare_snapshots) PostPrepare();  // look at the index as it is at start
  return Status::Ok();
}

void SyncService::Stop() {
  auto run_on_loop = [this](std::function<void()> fn) {
    std::promise<void> done;
    asio::post(exec_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  };
  run_on_loop([this] { Shutdown(); });
  // A refresh the loop queued for itself before Shutdown ran may still be
  // behind it; it sees stopped_ and returns. Wait for it, so that nothing
  // of this service runs once Stop returned.
  run_on_loop([] {});
}

void SyncService::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  if (bus_) bus_->Unsubscribe(sub_);
  bus_ = nullptr;
  if (watch_) {
    asio::error_code ec;
    watch_->socket.close(ec);
    ::unlink(watch_->path.c_str());
  }
  prepare_timer_.cancel();
  limits_.Stop();
  for (auto& s : Sessions()) s->CloseNow(Aborted("this device stopped syncing"));
  writer_.Stop();
}

void SyncService::AttachBus(EventBus& bus) {
  bus_ = &bus;
  sub_ = bus.Subscribe([this](const Event& e) {
    std::optional<Uuid> location;
    if (auto* b = std::get_if<BulkIndexComplete>(&e)) location = b->location;
    asio::post(exec_, [this, location] {
      if (stopped_) return;
      if (!config_.sign_checkpoint) return ScheduleRefresh(/*poll=*/true, location);
      // Committed on the caller's own connection: sign where our rows
      // stand before anyone hears of them.
      writer_.SignOwn([this, location](const Result<WriteOutcome>&) {
        if (!stopped_) ScheduleRefresh(/*poll=*/true, location);
      });
    });
  });
}

void SyncService::RunWrite(WriteTarget target, std::function<void(Library*)> job) {
  auto fn = std::make_shared<std::function<void(Library*)>>(std::move(job));
  asio::post(exec_, [this, target, fn] {
    // Announced by re-reading: what such a job advanced is not known here.
    writer_.Post(
        target,
        [fn](Library& lib) -> Result<WriteOutcome> {
          (*fn)(&lib);
          return WriteOutcome{};
        },
        [this, fn](const Result<WriteOutcome>& r) {
          if (!r.ok()) return (*fn)(nullptr);  // dropped: the service stopped
          ScheduleRefresh(/*poll=*/true);
        });
  });
}

std::shared_ptr<Session> SyncService::AddSession(std::unique_ptr<ByteStream> stream, bool outbound) {
  auto s = std::make_shared<Session>(*this, std::move(stream), exec_, outbound);
  {
    MutexLock lock(mu_);
    sessions_.push_back(s);
  }
  s->Start();
  asio::post(exec_, [this] {
    if (observer_.on_changed) observer_.on_changed();
  });
  return s;
}

std::vector<std::shared_ptr<Session>> SyncService::Sessions() {
  MutexLock lock(mu_);
  return sessions_;
}

std::vector<SessionSnapshot> SyncService::Snapshot() {
  std::vector<SessionSnapshot> out;
  for (auto& s : Sessions()) out.push_back(s->Snapshot());
  return out;
}

bool SyncService::ClaimPull(const Uuid& owner, const Session* by) {
  auto [it, inserted] = pulls_.emplace(owner, by);
  return inserted || it->second == by;
}

void SyncService::ReleasePull(const Uuid& owner, const Session* by) {
  auto it = pulls_.find(owner);
  if (it != pulls_.end() && it->second == by) pulls_.erase(it);
}

// An hour: long enough not to fetch the same bad rows in a loop, short
// enough that a peer that fixed itself (it met the owner) serves again.
constexpr double kDistrustSeconds = 3600;

void SyncService::Distrust(const Uuid& owner, const Uuid& peer) {
  distrusted_[{owner, peer}] = Clock::Seconds() + kDistrustSeconds;
}

bool SyncService::Distrusted(const Uuid& owner, const Uuid& peer) const {
  auto it = distrusted_.find({owner, peer});
  return it != distrusted_.end() && Clock::Seconds() < it->second;
}

// One connection per pair of devices. When both dialed each other, both
// sides keep the connection dialed by the device with the smaller id, so
// they close the same one. Connections dialed by the same side all stay:
// a one-shot `entrysync sync` or `ls` of a device whose daemon is connected
// too (another process, the same device id).
SessionHost::Admission SyncService::OnPeerReady(Session* s) {
  auto dialer = [&](const Session& x) { return x.outbound() ? my_id_ : x.remote_id(); };
  // Two daemons keep one connection; a device's other sessions (its `sync`
  // command while its daemon runs) are allowed up to a few.
  size_t others = 0;
  for (auto& other : Sessions()) {
    if (other.get() == s || other->closed() || !other->ready() || other->remote_id() != s->remote_id())
      continue;
    if (dialer(*s) != dialer(*other)) {
      if (dialer(*s) < dialer(*other)) {
        other->Close(Status::Ok());
        continue;
      }
      return Admission::kDuplicate;
    }
    ++others;
  }
  if (others >= kMaxSessionsPerDevice) return Admission::kTooMany;
  if (observer_.on_changed) observer_.on_changed();
  return Admission::kAdmitted;
}

void SyncService::OnSessionChanged(const Session*) { ScheduleRefresh(/*poll=*/false); }

void SyncService::OnSessionUpdated(const Session*) {
  if (observer_.on_progress) observer_.on_progress();
}

void SyncService::ScheduleRefresh(bool poll, std::optional<Uuid> location) {
  if (location) pending_location_ = location;
  poll_pending_ |= poll;
  if (refresh_scheduled_ || stopped_) return;
  refresh_scheduled_ = true;
  asio::post(exec_, [this] { Refresh(); });
}

void SyncService::Refresh() {
  refresh_scheduled_ = false;
  if (stopped_) return;
  std::vector<std::shared_ptr<Session>> closed;  // destroyed after the lock
  {
    MutexLock lock(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if ((*it)->closed()) {
        closed.push_back(std::move(*it));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  closed.clear();
  for (auto& s : Sessions()) s->Poke();
  if (poll_pending_) {
    poll_pending_ = false;
    std::optional<Uuid> location;
    location.swap(pending_location_);
    Status st = PollAdvances(location);
    if (!st.ok()) spdlog::warn("sync service: {}", st.message());
  }
  if (observer_.on_changed) observer_.on_changed();
}

Status SyncService::PollAdvances(std::optional<Uuid> location, bool baseline) {
  ES_ASSIGN_OR_RETURN(auto devices, lib_->ListDevices());
  for (const auto& d : devices) {
    std::pair<Epoch, Seq> now;
    if (d.is_local) {
      now = {d.epoch, d.max_seq};
    } else {
      ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(d.id));
      if (!wm) continue;
      now = {wm->epoch, wm->seq};
    }
    // Sessions' Hellos carry the starting point. An owner first held after
    // that (its first rows just pulled) is an advance like any other.
    if (baseline) {
      announced_[d.uuid] = now;
      continue;
    }
    Announce(d, now, d.is_local ? location : std::nullopt);
  }
  return Status::Ok();
}

void SyncService::OnWriterAdvanced(const OwnerPosition& pos) {
  if (stopped_) return;
  auto d = lib_->FindDeviceByUuid(pos.owner);  // committed before this runs
  if (!d.ok()) {
    spdlog::warn("sync service: {}", d.status().message());
    return;
  }
  Announce(*d, {pos.epoch, pos.seq}, std::nullopt);
}

void SyncService::Announce(const DeviceInfo& d, std::pair<Epoch, Seq> now, std::optional<Uuid> location) {
  auto it = announced_.find(d.uuid);
  if (it != announced_.end() && it->second == now) return;
  announced_[d.uuid] = now;
  if (d.is_local) ArmPrepare();
  if (observer_.on_owner_advanced) observer_.on_owner_advanced(d, now.first, now.second);
  for (auto& s : Sessions())
    if (!s->closed()) s->NotifyAdvance(d.uuid, now.first, now.second, location);
}

Status SyncService::WatchLibrary() {
  lib_->SetCommitNotices(false);  // our own commits are announced in-process
  std::string path = CommitNoticePath(dir_);
  if (path.empty()) return InvalidArgument("the path of " + dir_ + "/notify.sock is too long for a socket");
  ::unlink(path.c_str());  // left by a daemon that was killed
  auto watch = std::make_unique<Watch>(exec_);
  watch->path = path;
  asio::error_code ec;
  watch->socket.open(asio::local::datagram_protocol(), ec);
  if (!ec) watch->socket.bind(asio::local::datagram_protocol::endpoint(path), ec);
  if (ec) return IOError("cannot bind " + path + ": " + ec.message());
  watch_ = std::move(watch);
  ArmWatch();
  return Status::Ok();
}

void SyncService::ArmWatch() {
  watch_->socket.async_receive(asio::buffer(watch_->buf), [this](const asio::error_code& ec, size_t) {
    if (ec || stopped_) return;
    // Drain what queued meanwhile: one refresh covers them all.
    asio::error_code more;
    while (watch_->socket.available(more) > 0 && !more)
      watch_->socket.receive(asio::buffer(watch_->buf), 0, more);
    // Another process may have written our own rows: sign where they stand,
    // then look at what moved.
    if (config_.sign_checkpoint)
      writer_.SignOwn([this](const Result<WriteOutcome>&) {
        if (!stopped_) ScheduleRefresh(/*poll=*/true);
      });
    ScheduleRefresh(/*poll=*/true);
    if (observer_.on_changed) observer_.on_changed();
    ArmWatch();
  });
}

// The index must be quiet for a second before it is exported: each advance
// of this device's own rows pushes the timer back.
void SyncService::ArmPrepare() {
  if (!config_.prepare_snapshots || stopped_) return;
  prepare_timer_.expires_after(std::chrono::seconds(1));
  prepare_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec && !stopped_) PostPrepare();
  });
}

// On the Reader's export lane: exports this device's index when it is
// large and no cached export is recent enough.
void SyncService::PostPrepare() {
  reader_->Post(Reader::Lane::kExport, [dir = dir_, config = config_](Library& lib) {
    Status s = [&]() -> Status {
      ES_ASSIGN_OR_RETURN(DeviceInfo me, lib.LocalDevice());
      ES_ASSIGN_OR_RETURN(uint64_t rows, lib.CountEntries(me.id, /*include_deleted=*/true));
      if (rows < config.snapshot_threshold) return Status::Ok();
      ES_ASSIGN_OR_RETURN(auto snap,
                          FindOrExportSnapshot(lib, dir, me.id, me.uuid, me.epoch, me.max_seq,
                                               config.snapshot_max_lag, /*export_if_missing=*/true));
      if (snap && snap->export_seconds > 0)
        spdlog::info("prepared a snapshot of {} for new peers: {} entries up to seq {}, {} bytes in {:.2f}s",
                     me.name, snap->entries, snap->max_seq.value(), snap->size, snap->export_seconds);
      return Status::Ok();
    }();
    if (!s.ok()) spdlog::warn("preparing a snapshot: {}", s.message());
  });
}

}  // namespace entrysync
