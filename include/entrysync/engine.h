// Engine: one device's library, and the node that keeps it in sync with
// the device's peers. The public face of entrysync: the `entrysync` CLI and
// any application that embeds entrysync use it and nothing else.
//
//   auto engine = entrysync::Engine::Open("/home/me/lib");
//   if (!engine.ok()) return Fail(engine.status().message());
//   auto stats = (*engine)->Stats();
//
// Errors are values: every fallible call returns a Status or a Result<T>
// whose message is one line for a user, naming what failed and on what. A
// call that fails changes nothing that was stored, unless it says otherwise.
//
// Devices are named by strong ids: owners (any device whose entries the
// library holds) by their device uuid, paired peers by their DeviceId (the
// SHA-256 of their public key), locations by their uuid.
//
// Thread safety: an Engine is thread-safe. Calls that touch the library are
// serialized on the Engine's one SQLite connection; AddLocation and Rescan
// hold it for their whole walk, SyncOnce and List's load of a remote folder
// wait for the network without holding it. While started, the Engine's
// writes (AddLocation, Rescan, Pair, Unpair, ImportSnapshot) run on its
// node's library writer, in turn with what the node's sessions apply. Other processes may open the
// same library at the same time (SQLite serializes writers); one daemon
// (Start with write_status, or `entrysync serve`) owns a library at a time.
//
// Writes and the daemon: while a daemon of another process owns the
// library, an Engine that runs no node sends its writes (AddLocation,
// Rescan, Pair, Unpair, ImportSnapshot) to that daemon over
// LIBRARY/control.sock (docs/control.md), which runs them and pushes their
// commits to its peers at once; the result, errors included, is the one the
// daemon's Engine returned. Progress callbacks still run on the calling
// thread. A daemon that holds the library but does not answer fails the
// call with IOError naming its pid and the socket; nothing is changed. The
// daemon serves such writes one at a time: a call may wait for another
// process's.
//
// Callbacks (ScanOptions::progress, SyncOnceOptions::progress) run on the
// calling thread. Event handlers (Subscribe) run on a thread of the node or
// on the thread of the call that caused the event, one event at a time.
// Neither may call the Engine, except a handler may call Subscribe and
// Unsubscribe; both must return quickly (copy what you need, post it
// elsewhere).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "entrysync/events.h"
#include "entrysync/export.h"
#include "entrysync/info.h"
#include "entrysync/options.h"
#include "entrysync/status.h"
#include "entrysync/types.h"

namespace entrysync {

class ENTRYSYNC_EXPORT Engine {
 public:
  // Opens the library in `library_dir` and migrates its schema forward.
  // NotFound when the folder holds no library; InvalidArgument when its
  // schema is newer than this build; IOError when SQLite cannot open it.
  static Result<std::unique_ptr<Engine>> Open(const std::string& library_dir);

  // Creates `library_dir` if needed and a new library in it with this
  // device as `options.device_name` (joining `options.join_library` when
  // given, else drawing a new library id), and this device's key pair in
  // LIBRARY/identity. AlreadyExists when the folder already holds a library;
  // InvalidArgument for an empty device name.
  static Result<std::unique_ptr<Engine>> Create(const std::string& library_dir, const CreateOptions& options);

  // Checks the snapshot file at `path` (format, sizes, checksums; see
  // docs/snapshot-format.md) and returns what it holds. Needs no library.
  // Corruption (or InvalidArgument for a newer format) naming the file when
  // it is not a sound snapshot.
  static Result<SnapshotSummary> InspectSnapshot(const std::string& path);

  // Stops the node (as Stop does) and closes the library. REQUIRES: no
  // other call on this Engine is in progress.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const std::string& library_dir() const;
  const Uuid& library_id() const;

  // ---- identity ----

  // This device's id and the library id: what a peer needs to pair. Creates
  // the device's key pair on first use (a library made by Create has one).
  // Fails, naming the file, when LIBRARY/identity holds a bad key or
  // certificate.
  Result<LibraryIdentity> Identity();

  // ---- devices and peers ----

  // Every device the library knows: this one first, then by name.
  Result<std::vector<Device>> Devices();
  Result<Device> LocalDevice();
  // The device called `name`, a paired one first. NotFound when none.
  Result<Device> FindDevice(const std::string& name);

  // Pairs the device `id` as `name`: it may connect to this device, and
  // this device dials it at `address` ("HOST:PORT"; "" = it dials us) and
  // syncs with it. A device already known by that id, or an unpaired owner
  // known by that name, is updated (an empty address keeps the old one).
  // Creates this device's key pair if needed. InvalidArgument for an empty
  // name, a malformed address, or this device's own id.
  Result<Device> Pair(const std::string& name, const DeviceId& id, const std::string& address = "");
  // Unpairs and revokes the device `id`: it is refused from now on, a
  // running daemon (this Engine's node, or another process's) ends the
  // sessions it has with it, and its rows and checkpoints are refused from
  // every other peer too. Its entries replicated here stay, unless `purge`
  // (then they are deleted, in one transaction). Pairing it again lifts
  // the revocation. NotFound when no device has that id; InvalidArgument
  // for this device.
  Status Unpair(const DeviceId& id, bool purge = false);

  // ---- locations ----

  // The live locations of `owner`, or of every owner when none is given,
  // ordered by owner, then root path.
  Result<std::vector<Location>> Locations(std::optional<Uuid> owner = std::nullopt);
  // The location of this device whose root holds `path` (the deepest one;
  // symlinks in `path` resolved when it exists). NotFound when none does.
  Result<Location> FindLocalLocation(const std::string& path);
  // Makes the folder `path` a new location of this device and indexes it
  // in one bulk commit, which a running node announces to its peers.
  // Stores nothing and fails when `path` is missing (NotFound), not a
  // folder (InvalidArgument) or already a location (AlreadyExists).
  // Folders that cannot be read are kept as empty and named in
  // ScanReport::warnings.
  Result<ScanReport> AddLocation(const std::string& path, const ScanOptions& options = {});
  // Rescans a location of this device: added and changed entries take new
  // seqs, removed ones become tombstones, unchanged ones are left alone; a
  // renamed or moved entry keeps its uuid. NotFound for an unknown
  // location; InvalidArgument for another device's.
  Result<ScanReport> Rescan(const Uuid& location, const ScanOptions& options = {});

  // ---- queries ----

  // The entry `path` names among `owner`'s entries and, for a folder, its
  // children. For this device `path` is made absolute first. For another
  // owner, a folder this library does not hold (and always with
  // options.refresh) is first loaded on demand from a peer: the owner
  // itself, then every other paired peer with an address, each given 30 s;
  // what is loaded is kept. NotFound when `path` is in no location of the
  // owner, is not indexed, or is in no index (a failed load's reason when
  // nothing is held).
  Result<Listing> List(const Uuid& owner, const std::string& path, const ListOptions& options = {});
  Result<LibraryStats> Stats();
  // What the library holds of each owner, and the node running on it: this
  // Engine's when started, else another process's (`entrysync serve`)
  // while it runs.
  Result<LibraryStatus> GetStatus();
  // Calls `line` with each line of `owner`'s canonical export, without the
  // newline: one entry per line, tombstones included, sorted by uuid,
  // tab-separated (tabs, newlines and backslashes in text escaped as \t, \n,
  // \\): uuid parent location path kind size inode created_ns modified_ns
  // accessed_ns extension content_hash seq deleted; parent is "-" for a
  // location's root, path is relative to the root ("." for the root). Two
  // libraries hold the same rows of an owner exactly when their exports are
  // equal. NotFound for an unknown owner; on failure some lines may have
  // been delivered.
  Status Export(const Uuid& owner, const std::function<void(std::string_view line)>& line);
  // The SHA-256 of that export.
  Result<OwnerDigest> Digest(const Uuid& owner);

  // ---- snapshots ----

  // Writes the rows of `owner` held here to a snapshot file at `path`
  // (written beside it, then renamed over it). This device: every row; a
  // remote owner: the rows up to its watermark. NotFound when the owner is
  // unknown or nothing of it is held; IOError when the file cannot be
  // written (then nothing is left at `path`).
  Result<SnapshotSummary> ExportSnapshot(const Uuid& owner, const std::string& path);
  // Replaces what this library holds of the snapshot's owner with the
  // snapshot, in one transaction (all or nothing), after checking it (its
  // SHA-256 must equal `expected_sha256`, hex, when given); connected peers
  // then hear of it. A daemon imports it through its node's write
  // connection (the daemon of another process does it for this Engine);
  // without one, this process holds the library's lock while it imports.
  // Refuses, changing nothing: Corruption (a bad file), PermissionDenied
  // (another library, or this device's own index), AlreadyExists ("already
  // current"), Aborted (another process's offline import holds the library,
  // or this Engine's node runs without write_status).
  Result<SnapshotImport> ImportSnapshot(const std::string& path,
                                        const std::optional<std::string>& expected_sha256 = std::nullopt);

  // ---- the node ----

  // Starts this device's node: accepts paired peers on options.listen, dials
  // every paired peer with an address, and syncs continuously in the
  // background until Stop. With options.write_status it is the library's
  // daemon: it holds LIBRARY/lock and serves other processes' writes on
  // LIBRARY/control.sock (mode 0600) on one thread of its own.
  // AlreadyExists when started; Aborted naming the pid when another process
  // owns the library; InvalidArgument for a malformed address; IOError when
  // it cannot listen or create the control socket.
  Status Start(const StartOptions& options = {});
  // Stops serving other processes (a write in progress finishes first),
  // closes every session and stops the node. Idempotent.
  void Stop();
  bool running() const;
  // The port the node accepts peers on; 0 when not listening.
  uint16_t listen_port() const;

  // Dials the paired peer `peer` and exchanges rows until both devices are
  // current, then disconnects. Runs its own connection with options.sync,
  // whether or not the Engine is started. NotFound when `peer` is not a
  // paired peer; InvalidArgument when it has no address; the connection's
  // error (prefixed "connect to NAME at ADDRESS") when it cannot connect;
  // the session's reason prefixed "sync with NAME" when it ends before both
  // are current; Aborted on timeout. Rows applied before a failure stay
  // applied.
  Result<SyncReport> SyncOnce(const DeviceId& peer, const SyncOnceOptions& options = {});

  // ---- events ----

  // Calls `handler` with every event from now on (see the thread-safety
  // note above). Never fails.
  SubscriptionId Subscribe(std::function<void(const EngineEvent&)> handler);
  // After it returns, `id`'s handler is not running (unless Unsubscribe is
  // called from that handler) and will not be called again. Unknown ids are
  // ignored.
  void Unsubscribe(SubscriptionId id);

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace entrysync
