// Engine::Impl: what an Engine holds, and helpers its methods share. The
// methods themselves are defined by job: engine.cc (opening, identity,
// peers, events), locations.cc, browse.cc (List and on-demand loads),
// queries.cc (stats, status, export, digest), snapshots.cc, sync.cc (the
// node and SyncOnce).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/event_hub.h"
#include "base/event_bus.h"
#include "entrysync/engine.h"
#include "node/node.h"
#include "store/library.h"

namespace entrysync {

// Hidden: it would otherwise inherit Engine's exported visibility.
struct __attribute__((visibility("hidden"))) Engine::Impl {
  explicit Impl(std::unique_ptr<Library> library);

  const std::string dir;
  const Uuid library_id;
  EventHub events;

  // Guards the members below: one thread at a time uses the library's
  // connection (Library is not thread-safe) or starts and stops the node.
  std::mutex mu;
  std::unique_ptr<Library> lib;
  // The TransactionManager's bus. Nothing subscribes: a running node sees
  // this connection's commits through SQLite, as it sees other processes'.
  EventBus bus;
  std::unique_ptr<Node> node;  // while started

  // The device row of `owner`. NotFound when unknown. REQUIRES: mu held.
  Result<DeviceInfo> OwnerRow(const Uuid& owner);
  // What the library holds of each owner: this device's max seq, the
  // watermark of every other. REQUIRES: mu held.
  Result<std::vector<OwnerAdvanced>> Holdings();
  // Publishes an OwnerAdvanced for each owner that moved since it was last
  // reported. Takes mu (REQUIRES: not held).
  void PublishAdvances();
  // Options for a node on this library whose events go to `events`.
  NodeOptions NodeOptionsFor(const SyncConfig& sync);
  // The node running on the library (this Engine's, else another live
  // process's status file), or none. REQUIRES: mu held.
  std::optional<DaemonStatus> RunningNode();
};

// `path` made absolute and lexically normal ("a/../b" -> "/cwd/b"); symlinks
// are not resolved.
std::string AbsolutePath(const std::string& path);

// The location of `owner` whose root contains `path` (the deepest), and the
// path's components below that root. NotFound when none does.
Result<std::pair<LocationInfo, std::vector<std::string>>> ResolvePath(Library& lib, DeviceRowId owner,
                                                                      std::string path);

// Points spdlog's default logger at stderr in entrysync's line format,
// unless the process already chose another one. Idempotent, thread-safe.
void InstallDefaultLog();

}  // namespace entrysync
