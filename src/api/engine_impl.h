// Engine::Impl: what an Engine holds, and helpers its methods share. The
// methods themselves are defined by job: engine.cc (opening, identity,
// peers, events), locations.cc, browse.cc (List and on-demand loads),
// queries.cc (stats, status, export, digest), snapshots.cc, sync.cc (the
// node and SyncOnce).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/control_client.h"
#include "api/control_server.h"
#include "api/event_hub.h"
#include "base/event_bus.h"
#include "base/mutex.h"
#include "entrysync/engine.h"
#include "index/indexer.h"
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
  Mutex mu;
  std::unique_ptr<Library> lib GUARDED_BY(mu);
  // The TransactionManager's bus while no node runs; nothing subscribes (a
  // node started later hears these commits through SQLite's notices).
  EventBus bus;
  std::unique_ptr<Node> node GUARDED_BY(mu);  // while started
  // While started as the daemon (StartOptions::write_status): the node
  // holds the library's process lock, and serves other processes' writes
  // on LIBRARY/control.sock (docs/control.md).
  bool daemon GUARDED_BY(mu) = false;
  std::unique_ptr<ControlServer> control GUARDED_BY(mu);

  // Runs `job`, which writes the library's own tables (devices, pairing),
  // on the library's one writer — the running node's (its thread, in turn
  // with the sessions' writes), else this Engine's connection — and returns
  // its status. REQUIRES: mu held.
  Status Write(const std::function<Status(Library&)>& job) REQUIRES(mu);
  // The daemon that owns the library from another process (it holds the
  // process lock as kDaemonLockHolder), when this Engine runs no node.
  // Takes mu (REQUIRES: not held).
  std::optional<DaemonRef> OtherDaemon() EXCLUDES(mu);
  // Sends a write to the daemon of another process when there is one
  // (docs/control.md); nullopt when there is none and the caller should run
  // it here. Otherwise the call's result as the daemon returned it, or why
  // the daemon could not be asked. Publishes what advanced. REQUIRES: mu
  // not held.
  template <class T>
  std::optional<Result<T>> Route(const ControlRequest& request,
                                 const std::function<void(uint64_t)>& progress = nullptr) EXCLUDES(mu);

  // Runs `index` (a walk and its commit) on the library's one writer: the
  // running node's, so that the commit takes its turn with the sessions'
  // writes and reaches peers at once; else this Engine's connection.
  // options.progress runs on the calling thread either way. REQUIRES: mu
  // held (a node cannot stop meanwhile).
  using IndexJob = std::function<Result<IndexReport>(Indexer& indexer, const IndexOptions& options)>;
  Result<IndexReport> Index(const IndexJob& index, const ScanOptions& options) REQUIRES(mu);

  // The device row of `owner`. NotFound when unknown. REQUIRES: mu held.
  Result<DeviceInfo> OwnerRow(const Uuid& owner) REQUIRES(mu);
  // What the library holds of each owner: this device's max seq, the
  // watermark of every other. REQUIRES: mu held.
  Result<std::vector<OwnerAdvanced>> Holdings() REQUIRES(mu);
  // Publishes an OwnerAdvanced for each owner that moved since it was last
  // reported. Takes mu (REQUIRES: not held).
  void PublishAdvances() EXCLUDES(mu);
  // Options for a node on this library whose events go to `events`.
  NodeOptions NodeOptionsFor(const SyncConfig& sync);
  // The node running on the library (this Engine's, else another live
  // process's status file), or none. REQUIRES: mu held.
  std::optional<DaemonStatus> RunningNode() REQUIRES(mu);
};

// The daemon's side of the control channel: runs `request` on `engine`
// (which runs the node) and returns the final reply. Runs on the
// ControlServer's thread.
ControlReply ServeControlRequest(Engine& engine, const ControlRequest& request,
                                 const std::function<void(uint64_t)>& progress);
// One debug line: the daemon with `pid` did `request`.
void LogRouted(const ControlRequest& request, int pid);

template <class T>
std::optional<Result<T>> Engine::Impl::Route(const ControlRequest& request,
                                             const std::function<void(uint64_t)>& progress) {
  std::optional<DaemonRef> daemon = OtherDaemon();
  if (!daemon) return std::nullopt;
  Result<ControlReply> reply = CallDaemon(*daemon, request, progress);
  // Not answered because it stopped meanwhile: the library is free to write.
  if (!reply.ok() && reply.status().code() == Code::kIOError && !OtherDaemon()) return std::nullopt;
  if (!reply.ok()) return Result<T>(reply.status());
  LogRouted(request, daemon->pid);
  PublishAdvances();
  if (reply->kind == ControlReply::Kind::kError) return Result<T>(reply->error);
  if (auto* value = std::get_if<T>(&reply->value)) return Result<T>(std::move(*value));
  return Result<T>(Corruption(std::string("the daemon's reply to ") + ControlOpName(request.op) +
                              " holds another kind of result"));
}

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
