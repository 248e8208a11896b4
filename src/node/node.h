// Node: one device at work. Owns the identity, the io thread, the TLS
// listener, the dialer that keeps paired peers connected, and the sync
// service; writes a status file for `entrysync status`.
//
// Thread safety: public methods are thread-safe. Stop() must be called
// before destruction from the thread that owns the Node (the destructor
// calls it too).
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "net/identity.h"
#include "net/io_thread.h"
#include "net/tls.h"
#include "node/node_events.h"
#include "store/library.h"
#include "sync/sync_service.h"

namespace entrysync {

// Creates the device's key pair and certificate in LIBRARY/identity (once)
// and records its device id in the library. Returns the identity.
Result<Identity> EnsureIdentity(Library& lib);

// "host:port" -> parts. InvalidArgument on a malformed address.
Result<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& addr);

struct NodeOptions {
  std::string library_dir;
  std::string listen;          // "host:port" to accept peers; "" = none
  bool dial_peers = true;      // keep every paired peer with an address connected
  bool write_status = true;    // LIBRARY/status.json, twice a second
  SyncConfig sync;
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

  // Dials `peer` now (blocking, up to the handshake timeout) and runs a
  // session with it.
  Result<std::shared_ptr<Session>> Connect(const DeviceInfo& peer);

  // The status document (see docs/architecture.md): this device, its
  // listener, and each session with transfers and counters.
  std::string StatusJson();

 private:
  Node(NodeOptions options, std::unique_ptr<Library> lib, Identity identity);
  Status Authorize(const DeviceId& id);
  void DialLoop();
  bool HasSession(const DeviceId& id);
  void Track(const DeviceId& id, std::shared_ptr<Session> s);

  NodeOptions options_;
  std::mutex lib_mu_;              // guards lib_ (used by Authorize on the io thread)
  std::unique_ptr<Library> lib_;
  Identity identity_;
  std::unique_ptr<IoThread> io_;
  std::unique_ptr<TlsListener> listener_;
  std::unique_ptr<SyncService> sync_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<DeviceId, std::weak_ptr<Session>> by_device_;
  std::thread dialer_;
  std::thread status_writer_;
};

}  // namespace entrysync
