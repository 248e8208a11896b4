// SyncService: the sessions of one node, the library's writer, and what
// tells them that rows advanced.
//
// Everything runs on the node's sync loop (sync/loop.h): the sessions and
// this service. Rows are written by the LibraryWriter (sync/writer.h) the
// service owns, on its own thread: sessions post their applies to it and go
// on when they complete. The loop keeps a connection of its own
// (library()) for its small reads. Nothing polls. An owner's advance
// reaches connected peers through one of three events:
//   - a writer job moved an owner's watermark (rows a session pulled): the
//     writer announces the new position, which flows on to other peers;
//   - an in-process commit announced on an attached EventBus;
//   - another process committed (`entrysync rescan` while the daemon runs):
//     its Library sent a notice to LIBRARY/notify.sock after the commit
//     (store/commit_notice.h), which wakes the loop.
// The last two re-read where every owner stands (PollAdvances).
//
// Serving reads run off the loop on the service's Reader (sync/reader.h):
// two threads, each with its own connection, whatever the number of peers.
//
// With config.prepare_snapshots it also keeps a snapshot of this device's
// own index ready for new peers (sync/snapshot_cache.h): once the index
// holds at least snapshot_threshold rows and has not changed for a second
// (a timer on the loop), the Reader's export lane exports it unless a
// cached export is recent enough.
//
// Thread safety: Start, Stop, AddSession, Sessions, Snapshot, RunWrite and
// AttachBus are thread-safe; the SessionHost methods run on the loop.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "base/event_bus.h"
#include "base/mutex.h"
#include "sync/rate_limiter.h"
#include "sync/reader.h"
#include "sync/session.h"
#include "sync/writer.h"

namespace entrysync {

// What the node hears from its sync service, on the loop.
struct SyncObserver {
  // A session was added, became ready or closed, or another process wrote
  // the library (a peer may have been paired or removed).
  std::function<void()> on_changed;
  // A session's counters or transfers moved; often, keep it cheap.
  std::function<void()> on_progress;
  // This library now holds `owner`'s rows up to `seq`.
  std::function<void(const DeviceInfo& owner, Epoch epoch, Seq seq)> on_owner_advanced;
};

class SyncService : public SessionHost {
 public:
  // Runs on `exec`, which must run on one thread (or be polled by one).
  // The writer's jobs run on its own thread, or on `write_exec` when given
  // (the simulation passes `exec`: everything on one polled loop).
  SyncService(std::string library_dir, SyncConfig config, SyncExecutor exec, SyncObserver observer = {},
              std::optional<SyncExecutor> write_exec = std::nullopt);
  // REQUIRES: Stop() (or Shutdown() on the loop) ran, or Start never did.
  ~SyncService() override;

  // Opens the loop's connection and the writer's, starts the writer and
  // watching the library. Call before the loop runs anything of this
  // service. Fails when the library cannot be opened.
  Status Start();
  // Closes every session, stops watching and stops the writer (the job it
  // runs finishes, queued ones are dropped: see LibraryWriter::Stop).
  // Thread-safe and idempotent; REQUIRES: not on the loop, and the loop
  // runs on another thread.
  void Stop();
  // Stop on the loop itself (or by a test polling the loop).
  void Shutdown();
  // Runs `job`, which writes `target`, on the library's writer (its
  // thread, in order with the sessions' writes), then announces what
  // advanced. `job` gets nullptr when the service stopped first.
  // Thread-safe.
  void RunWrite(WriteTarget target, std::function<void(Library*)> job);
  // Hears this process's commits at once. `bus` must outlive the service.
  void AttachBus(EventBus& bus);

  // Runs a new session over `stream` (not yet started); returns it.
  // `outbound`: this device dialed it.
  std::shared_ptr<Session> AddSession(std::unique_ptr<ByteStream> stream, bool outbound = false);
  std::vector<std::shared_ptr<Session>> Sessions();
  std::vector<SessionSnapshot> Snapshot();
  SyncExecutor executor() const { return exec_; }

  // SessionHost (loop only)
  const std::string& library_dir() const override { return dir_; }
  const SyncConfig& config() const override { return config_; }
  Library& library() override { return *lib_; }
  Reader& reader() override { return *reader_; }
  LibraryWriter& writer() override { return writer_; }
  RateLimits& rate_limits() override { return limits_; }
  bool ClaimPull(const Uuid& owner, const Session* by) override;
  void ReleasePull(const Uuid& owner, const Session* by) override;
  void Distrust(const Uuid& owner, const Uuid& peer) override;
  bool Distrusted(const Uuid& owner, const Uuid& peer) const override;
  Admission OnPeerReady(Session* s) override;
  void OnSessionChanged(const Session* s) override;
  void OnSessionUpdated(const Session* s) override;

 private:
  // Loop: reap closed sessions, let the others pull again, announce what
  // advanced. Coalesced: many changes in one loop turn make one pass.
  // `poll`: also re-read where every owner stands (a commit the writer did
  // not make).
  void ScheduleRefresh(bool poll, std::optional<Uuid> location = std::nullopt);
  void Refresh();
  // Announces every owner that advanced since the last call. `baseline`:
  // only records where each owner is (at Start).
  Status PollAdvances(std::optional<Uuid> location, bool baseline = false);
  // The writer moved `pos.owner`'s watermark.
  void OnWriterAdvanced(const OwnerPosition& pos);
  // Announces `d` at `now` unless it was announced there already.
  void Announce(const DeviceInfo& d, std::pair<Epoch, Seq> now, std::optional<Uuid> location);
  Status WatchLibrary();
  void ArmWatch();
  void ArmPrepare();
  void PostPrepare();

  const std::string dir_;
  const SyncConfig config_;
  const SyncExecutor exec_;
  const SyncObserver observer_;

  Mutex mu_;
  std::vector<std::shared_ptr<Session>> sessions_ GUARDED_BY(mu_);

  LibraryWriter writer_;  // sessions post their applies to it

  // Loop only.
  std::unique_ptr<Library> lib_;    // the loop's connection: reads only
  std::unique_ptr<Reader> reader_;  // made in Start, after lib_ (which migrates)
  RateLimits limits_;
  DeviceId my_id_;
  std::map<Uuid, const Session*> pulls_;
  // (owner, peer) whose rows did not verify -> until when (Clock seconds).
  std::map<std::pair<Uuid, Uuid>, double> distrusted_;
  std::map<Uuid, std::pair<Epoch, Seq>> announced_;
  bool refresh_scheduled_ = false;
  bool poll_pending_ = false;
  std::optional<Uuid> pending_location_;
  bool stopped_ = false;
  struct Watch;
  std::unique_ptr<Watch> watch_;  // commit notices of other processes
  SyncTimer prepare_timer_;
  EventBus* bus_ = nullptr;
  EventBus::SubscriptionId sub_ = 0;
};

}  // namespace entrysync
