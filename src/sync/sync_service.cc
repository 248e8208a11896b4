#include "sync/sync_service.h"

#include <spdlog/spdlog.h>

#include "sync/snapshot_cache.h"

namespace entrysync {

SyncService::SyncService(std::string library_dir, SyncConfig config)
    : dir_(std::move(library_dir)), config_(config) {}

SyncService::~SyncService() { Stop(); }

Status SyncService::Start() {
  ES_ASSIGN_OR_RETURN(lib_, Library::Open(dir_));
  // What we already hold is announced by each session's Hello.
  ES_RETURN_IF_ERROR(PollAdvances());
  ticker_ = std::thread([this] { Tick(); });
  if (config_.prepare_snapshots) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      prepare_due_ = true;  // look at the index as it is at start
    }
    preparer_ = std::thread([this] { PrepareLoop(); });
  }
  return Status::Ok();
}

void SyncService::AttachBus(EventBus& bus) {
  bus_ = &bus;
  sub_ = bus.Subscribe([this](const Event& e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto* b = std::get_if<BulkIndexComplete>(&e)) pending_location_ = b->location;
    wake_ = true;
    cv_.notify_all();
  });
}

void SyncService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (bus_) bus_->Unsubscribe(sub_);
  if (ticker_.joinable()) ticker_.join();
  if (preparer_.joinable()) preparer_.join();
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions.swap(sessions_);
  }
  for (auto& s : sessions) s->Close(Status::Ok());
  sessions.clear();  // joins the session threads
}

std::shared_ptr<Session> SyncService::AddSession(std::unique_ptr<ByteStream> stream) {
  auto s = std::make_shared<Session>(*this, std::move(stream));
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.push_back(s);
  }
  s->Start();
  return s;
}

std::vector<std::shared_ptr<Session>> SyncService::Sessions() {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_;
}

std::vector<SessionSnapshot> SyncService::Snapshot() {
  std::vector<SessionSnapshot> out;
  for (auto& s : Sessions()) out.push_back(s->Snapshot());
  return out;
}

bool SyncService::ClaimPull(const Uuid& owner, const Session* by) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = pulls_.emplace(owner, by);
  return inserted || it->second == by;
}

void SyncService::ReleasePull(const Uuid& owner, const Session* by) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pulls_.find(owner);
  if (it != pulls_.end() && it->second == by) pulls_.erase(it);
}

void SyncService::OnSessionChanged(const Session* changed) {
  // Another session may now pull what this one held or gave up, and the
  // rows just pulled may need to flow on: wake the ticker.
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = true;
  cv_.notify_all();
  for (auto& s : sessions_)
    if (s.get() != changed) s->Poke();
}

Status SyncService::PollAdvances() {
  ES_ASSIGN_OR_RETURN(auto devices, lib_->ListDevices());
  std::optional<Uuid> location;
  {
    std::lock_guard<std::mutex> lock(mu_);
    location.swap(pending_location_);
  }
  for (const auto& d : devices) {
    std::pair<Epoch, Seq> now;
    if (d.is_local) {
      now = {d.epoch, d.max_seq};
    } else {
      ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(d.id));
      if (!wm) continue;
      now = {wm->epoch, wm->seq};
    }
    auto it = announced_.find(d.uuid);
    bool first = it == announced_.end();
    if (!first && it->second == now) continue;
    announced_[d.uuid] = now;
    if (d.is_local && !first) {
      std::lock_guard<std::mutex> lock(mu_);
      local_changed_at_ = std::chrono::steady_clock::now();
      prepare_due_ = true;
      cv_.notify_all();
    }
    if (first) continue;  // sessions' Hellos carry the starting point
    for (auto& s : Sessions())
      if (!s->closed()) s->NotifyAdvance(d.uuid, now.first, now.second, d.is_local ? location : std::nullopt);
  }
  return Status::Ok();
}

Result<int64_t> SyncService::DataVersion() {
  if (!data_version_) {
    ES_ASSIGN_OR_RETURN(store::Stmt st, lib_->db().Prepare("PRAGMA data_version"));
    data_version_.emplace(std::move(st));
  }
  store::Stmt& st = *data_version_;
  auto row = st.Step();
  int64_t v = row.ok() && *row ? st.Int(0) : -1;
  st.Reset();
  if (!row.ok()) return row.status();
  return v;
}

// Wakes every 10 ms, but reads the library only when it changed: SQLite's
// data_version moves when another connection (a session, or another
// process such as `entrysync rescan`) commits, so a change committed
// anywhere reaches connected peers within about 10 ms. Also wakes at once
// on this process's event bus, and polls at least every second.
void SyncService::Tick() {
  int64_t seen_version = -1;
  auto last_poll = std::chrono::steady_clock::now();
  for (;;) {
    std::vector<std::shared_ptr<Session>> closed;  // destroyed outside the lock
    bool woken;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(10), [this] { return stop_ || wake_; });
      if (stop_) return;
      woken = wake_;
      wake_ = false;
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
    auto version = DataVersion();
    auto now = std::chrono::steady_clock::now();
    bool changed = !version.ok() || *version != seen_version;
    if (!woken && !changed && now - last_poll < std::chrono::seconds(1)) continue;
    if (version.ok()) seen_version = *version;
    last_poll = now;
    Status s = PollAdvances();
    if (!s.ok()) spdlog::warn("sync service: {}", s.message());
  }
}

void SyncService::PrepareLoop() {
  std::unique_ptr<Library> lib;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Wait until asked, then until the index settled for a second.
      cv_.wait(lock, [this] { return stop_ || prepare_due_; });
      while (!stop_ && std::chrono::steady_clock::now() - local_changed_at_ < std::chrono::seconds(1))
        cv_.wait_until(lock, local_changed_at_ + std::chrono::seconds(1));
      if (stop_) return;
      prepare_due_ = false;
    }
    Status s = [&]() -> Status {
      if (!lib) {
        ES_ASSIGN_OR_RETURN(lib, Library::Open(dir_));
      }
      ES_ASSIGN_OR_RETURN(DeviceInfo me, lib->LocalDevice());
      ES_ASSIGN_OR_RETURN(uint64_t rows, lib->CountEntries(me.id, /*include_deleted=*/true));
      if (rows < config_.snapshot_threshold) return Status::Ok();
      ES_ASSIGN_OR_RETURN(auto snap,
                          FindOrExportSnapshot(*lib, dir_, me.id, me.uuid, me.epoch, me.max_seq,
                                               config_.snapshot_max_lag, /*export_if_missing=*/true));
      if (snap && snap->export_seconds > 0)
        spdlog::info("prepared a snapshot of {} for new peers: {} entries up to seq {}, {} bytes in {:.2f}s",
                     me.name, snap->entries, snap->max_seq.value(), snap->size, snap->export_seconds);
      return Status::Ok();
    }();
    if (!s.ok()) spdlog::warn("preparing a snapshot: {}", s.message());
  }
}

}  // namespace entrysync
