// Node: one device at work. Owns the identity, two loops, the TLS listener,
// the dialer that keeps paired peers connected, and the sync service;
// writes a status file for `entrysync status`.
//
// Threads (constant, whatever the number of peers):
//   - the io thread (net::IoThread "es-io") owns every socket and TLS
//     object; it decodes frames and answers pings;
//   - the sync loop ("es-sync") runs every session's protocol state
//     machine, the SyncService, the dialer's and status writer's timers;
//   - the library writer ("es-write", sync/writer.h) owns the library's
//     write connection: the rows sessions apply are jobs posted to it;
//   - the snapshot preparer exports this device's index in the background
//     (SyncService).
// Nothing polls: idle, the node wakes for keepalives only.
//
// Thread safety: public methods are thread-safe. Stop() must be called from
// a thread other than the loops (the destructor calls it too).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/event_bus.h"
#include "base/mutex.h"
#include "net/identity.h"
#include "net/io_thread.h"
#include "net/tls.h"
#include "node/dial_backoff.h"
#include "node/node_events.h"
#include "snapshot/snapshot.h"
#include "store/library.h"
#include "store/library_lock.h"
#include "sync/sync_service.h"

namespace entrysync {

// Creates the device's key pair and certificate in LIBRARY/identity (once)
// and records its device id in the library. Returns the identity.
Result<Identity> EnsureIdentity(Library& lib);

// "host:port" -> parts. InvalidArgument on a malformed address.
Result<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& addr);

// What a daemon's LIBRARY/lock names as its holder (LibraryLock): other
// processes tell a daemon from an offline snapshot import by it.
inline constexpr char kDaemonLockHolder[] = "entrysync serve";

struct NodeOptions {
  std::string library_dir;
  std::string listen;      // "host:port" to accept peers; "" = none
  bool dial_peers = true;  // keep every paired peer with an address connected
  // The daemon: holds the library's process lock (store/library_lock.h),
  // hears other processes' commits, and writes LIBRARY/status.json (when
  // something changes, at most twice a second).
  bool write_status = true;
  // The daemon: called by Start once it holds the process lock, before it
  // listens or writes the status file; an error fails Start.
  std::function<Status()> on_locked;
  SyncConfig sync;
  // Events for the embedder, on the sync loop (see node_events.h).
  std::function<void(const NodeEvent&)> on_event;
};

class Node {
 public:
  static Result<std::unique_ptr<Node>> Open(NodeOptions options);
  ~Node();

  // Starts listening (when asked), dialing and syncing.
  Status Start();
  void Stop();

  uint16_t listen_port() const { return listener_ ? listener_->port() : 0; }
  SyncService& sync() { return *sync_; }
  const Identity& identity() const { return identity_; }
  // Commits made in this process through a TransactionManager on this bus
  // reach peers at once.
  EventBus& bus() { return bus_; }

  // This process changed the pairing of device `id` in the library: ends
  // its sessions when it is no longer paired, and dials it at once when it
  // is (any back-off forgotten). Thread-safe.
  void PeerChanged(const DeviceId& id);

  // Runs `job` on the library's writer (its thread and connection, in order
  // with the sessions' writes), then `done` with its status on a node
  // thread; `done` gets Aborted, and `job` does not run, when the node is
  // not running or stops first. Rows it commits through a
  // TransactionManager on bus() reach connected peers at once. Thread-safe.
  // `target`: what `job` writes (sync/writer.h), its owner when it writes
  // one owner's rows only.
  void RunWrite(WriteTarget target, std::function<Status(Library&)> job, std::function<void(Status)> done);

  // Imports the snapshot at `path` through the library's writer (its
  // thread, in order with the sessions' writes), and announces what advanced to connected peers; as
  // ::entrysync::ImportSnapshot otherwise. REQUIRES: started, not stopped,
  // not called on the node's loops.
  Result<ImportStats> ImportSnapshot(const std::string& path,
                                     const std::optional<std::string>& expected_sha256);

  // Dials `peer` now (blocking, up to the handshake timeout) and runs a
  // session with it. REQUIRES: not called on the node's loops.
  Result<std::shared_ptr<Session>> Connect(const DeviceInfo& peer);

  // The status document (see docs/architecture.md): this device, its
  // listener, and each session with transfers and counters.
  std::string StatusJson();

 private:
  Node(NodeOptions options, std::unique_ptr<Library> lib, Identity identity);
  Status Authorize(const DeviceId& id) EXCLUDES(lib_mu_);
  // A live session with device `id` (dialed by this device, when `outbound_only`).
  bool HasSession(const DeviceId& id, bool outbound_only = false);
  // Sync loop: dials every paired peer with an address that has no session
  // and whose back-off passed; arms the timer for the next retry.
  void Redial();
  void OnDialed(const DeviceInfo& peer, Result<std::unique_ptr<ByteStream>> stream);
  struct Dial;
  // Sync loop: the session this node dialed to `peer` ended.
  void OnDialedSessionEnded(const DeviceInfo& peer, Dial& d);
  // Sync loop: something changed; the status file and events follow.
  void OnChanged();
  void ArmStatus();
  void WriteStatus();
  void Emit(const NodeEvent& e);

  NodeOptions options_;
  Mutex lib_mu_;  // Authorize runs on the io thread
  std::unique_ptr<Library> lib_ GUARDED_BY(lib_mu_);
  Identity identity_;
  EventBus bus_;
  std::unique_ptr<IoThread> io_;
  std::unique_ptr<IoThread> loop_;
  std::unique_ptr<TlsListener> listener_;
  std::unique_ptr<SyncService> sync_;
  std::unique_ptr<LibraryLock> lock_;  // the daemon's
  bool started_ = false;
  std::atomic<bool> stopped_{false};  // set by Stop (any thread), read on the loop

  // Sync loop only.
  struct Dial {
    DialBackoff backoff;
    std::shared_ptr<Session> session;  // the last one this node dialed, until it ended
  };
  std::map<DeviceId, Dial> dials_;
  std::map<DeviceId, bool> dialing_;
  std::unique_ptr<SyncTimer> dial_timer_;
  std::unique_ptr<SyncTimer> status_timer_;
  bool status_armed_ = false;
  struct KnownSession {
    SessionState state;
    Uuid peer;
    std::string name, reason;
  };
  // For connected/disconnected events. Keyed by the session's control
  // block: a reaped session's entry can never match a new session that
  // happens to be allocated at the same address.
  std::map<std::weak_ptr<Session>, KnownSession, std::owner_less<>> known_states_;
};

}  // namespace entrysync
