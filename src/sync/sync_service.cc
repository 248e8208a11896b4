#include "sync/sync_service.h"

#include <spdlog/spdlog.h>

namespace entrysync {

SyncService::SyncService(std::string library_dir, SyncConfig config)
    : dir_(std::move(library_dir)), config_(config) {}

SyncService::~SyncService() { Stop(); }

Status SyncService::Start() {
  ES_ASSIGN_OR_RETURN(lib_, Library::Open(dir_));
  // What we already hold is announced by each session's Hello.
  ES_RETURN_IF_ERROR(PollAdvances());
  ticker_ = std::thread([this] { Tick(); });
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
    if (first) continue;  // sessions' Hellos carry the starting point
    for (auto& s : Sessions())
      if (!s->closed()) s->NotifyAdvance(d.uuid, now.first, now.second, d.is_local ? location : std::nullopt);
  }
  return Status::Ok();
}

void SyncService::Tick() {
  for (;;) {
    std::vector<std::shared_ptr<Session>> closed;  // destroyed outside the lock
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_ || wake_; });
      if (stop_) return;
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
    Status s = PollAdvances();
    if (!s.ok()) spdlog::warn("sync service: {}", s.message());
  }
}

}  // namespace entrysync
