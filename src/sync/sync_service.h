// SyncService: runs the sessions of one node and tells them what changed.
//
// It polls the library (SQLite's data_version every 10 ms) for owners
// whose rows advanced: this device's own commits, made by this process or by
// another one (`entrysync rescan` while the daemon runs), and rows of other
// owners that a session just pulled (so they flow on to a third device).
// An attached EventBus wakes it at once and names a bulk commit's location.
//
// With config.prepare_snapshots it also keeps a snapshot of this device's
// own index ready for new peers (sync/snapshot_cache.h): once the index
// holds at least snapshot_threshold rows and has not changed for a second,
// a background thread exports it unless a cached export is recent enough.
//
// Thread safety: every public method is thread-safe. Sessions run on their
// own threads; the service's ticker thread only posts to them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/event_bus.h"
#include "sync/session.h"

namespace entrysync {

class SyncService : public SessionHost {
 public:
  SyncService(std::string library_dir, SyncConfig config);
  ~SyncService() override;  // Stop()s

  // Starts the ticker. Fails when the library cannot be opened.
  Status Start();
  // Closes every session and stops the ticker. Idempotent.
  void Stop();
  // Hears this process's commits at once (optional). `bus` must outlive the
  // service.
  void AttachBus(EventBus& bus);

  // Runs a new session over `stream` (not yet started); returns it.
  std::shared_ptr<Session> AddSession(std::unique_ptr<ByteStream> stream);
  std::vector<std::shared_ptr<Session>> Sessions();
  std::vector<SessionSnapshot> Snapshot();

  // SessionHost
  const std::string& library_dir() const override { return dir_; }
  const SyncConfig& config() const override { return config_; }
  bool ClaimPull(const Uuid& owner, const Session* by) override;
  void ReleasePull(const Uuid& owner, const Session* by) override;
  void OnSessionChanged(const Session* s) override;

 private:
  void Tick();
  void PrepareLoop();
  Status PollAdvances();
  // SQLite's PRAGMA data_version of the ticker's connection.
  Result<int64_t> DataVersion();

  const std::string dir_;
  const SyncConfig config_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::vector<std::shared_ptr<Session>> sessions_;
  std::map<Uuid, const Session*> pulls_;
  std::map<Uuid, std::pair<Epoch, Seq>> announced_;  // ticker thread only
  std::optional<Uuid> pending_location_;             // from the bus
  std::unique_ptr<Library> lib_;                     // ticker thread only
  std::optional<store::Stmt> data_version_;          // ticker thread only
  EventBus* bus_ = nullptr;
  EventBus::SubscriptionId sub_ = 0;
  std::thread ticker_;
  std::thread preparer_;
  // When this device's own index last advanced (steady clock), and whether
  // the preparer should look at it; guarded by mu_.
  std::chrono::steady_clock::time_point local_changed_at_{};
  bool prepare_due_ = false;
};

}  // namespace entrysync
