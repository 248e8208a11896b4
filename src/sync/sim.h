// Simulation: several nodes in one process, on one loop and a manual clock.
//
// A test-only harness (sync/sim_test.cc). Every node's SyncService and every
// pipe end run on one asio io_context that the test thread polls; time is a
// ManualClock that moves only when nothing is ready, straight to the next
// timer (ManualClock::next_wake). A scenario of minutes (keepalives, idle
// timeouts, rate limits) runs in milliseconds, and runs the same way every
// time: nothing sleeps, nothing waits for real time, there is no thread.
//
// Each node is a real library in a temporary folder, with its own device
// id (its index in the simulation decides the order of ids: the first node
// added has the smallest). Nodes join the library of the first node added.
//
// Thread safety: none; everything runs on the test thread. Between two
// Run* calls the test may commit to a node's library, read it, and call a
// node's service (svc().Shutdown(), not Stop(): nobody else runs the loop).
#pragma once

#include <array>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/event_bus.h"
#include "base/test_util.h"
#include "net/pipe.h"
#include "proto/frame.h"
#include "store/checkpoint.h"
#include "store/library.h"
#include "store/transaction_manager.h"
#include "sync/sync_service.h"

namespace entrysync::sim {

using Duration = Clock::duration;

// A SyncConfig fit for the simulation: serving reads posted to the loop
// instead of the Reader's threads (sync/reader.h), and no background
// snapshot preparer.
SyncConfig DefaultConfig();

// A deterministic Ed25519 key whose device id starts with byte `first`
// (tests order devices by id), and a signer of checkpoints with it for
// `library` (SyncConfig::sign_checkpoint).
struct TestKey {
  std::shared_ptr<EVP_PKEY> key;
  DeviceId id;
  std::function<Result<Checkpoint>(Epoch, Seq, const LtHash::Checksum&)> Signer(const Uuid& library) const;
};
TestKey MakeTestKey(uint8_t first);

// One device: its library (this connection is the test's, the service opens
// its own), its index writer and its sync service.
class Node {
 public:
  Node(const std::string& name, uint8_t index, std::optional<Uuid> library, SyncConfig config,
       asio::any_io_executor exec);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }
  const DeviceId& id() const { return id_; }
  const TestKey& key() const { return key_; }
  const Uuid& uuid() const { return uuid_; }
  const std::string& dir() const { return dir_.path(); }
  Library& lib() { return *lib_; }
  SyncService& svc() { return *svc_; }
  bool started() const { return started_; }

  // Trusts `other` (one direction).
  void Pair(const Node& other);
  // Opens the service's library and hears this node's own commits.
  Status Start();
  // The service stops: its sessions close now. Safe between polls.
  void Stop();

  // Commits `n` generated entries (a folder and n-1 files) as a new
  // location rooted at `root`; returns them with their seqs.
  std::vector<EntryRecord> Index(int n, const std::string& root = "/data");
  // Commits changed rows of the last location Index made.
  Status Change(std::vector<EntryRecord> rows);

  // Digest of what this library holds of `owner` ("none" when nothing).
  std::string DigestOf(const Uuid& owner);
  uint64_t RowsAppliedTotal();

 private:
  const std::string name_;
  testing::TempDir dir_;
  TestKey key_;
  DeviceId id_;
  Uuid uuid_;
  std::unique_ptr<Library> lib_;
  EventBus bus_;
  std::unique_ptr<TransactionManager> tm_;
  asio::any_io_executor exec_;
  std::unique_ptr<SyncService> svc_;
  bool started_ = false;
  LocationInfo location_;
};

// What crossed one end of a pipe, frame by frame (it parses frame headers
// only, so partial writes are fine).
struct Traffic {
  std::array<uint64_t, 16> frames{};      // by MessageType
  std::array<uint64_t, 16> last_bytes{};  // size of the last frame of each type
  uint64_t bytes = 0;
  uint64_t Frames(MessageType t) const { return frames[static_cast<size_t>(t) & 15]; }
  uint64_t LastBytes(MessageType t) const { return last_bytes[static_cast<size_t>(t) & 15]; }
};

// One connection between two nodes: the dialer's session and the
// listener's, and what each end wrote.
struct Link {
  std::shared_ptr<Session> dialer, listener;
  // Frames written by each side. Valid while the sessions live.
  const Traffic& sent_by_dialer() const;
  const Traffic& sent_by_listener() const;
  // Breaks the connection: both sessions end with an IOError, bytes in
  // flight are lost.
  void Cut();
  bool BothCurrent() const { return dialer->BothCurrent() && listener->BothCurrent(); }
  bool BothClosed() const { return dialer->closed() && listener->closed(); }

  class Tap;
  Tap* dialer_end = nullptr;
  Tap* listener_end = nullptr;
};

class Simulation {
 public:
  Simulation();
  // Stops every node, runs what is left, removes the libraries.
  ~Simulation();  // NOLINT(bugprone-exception-escape): see sim.cc
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // A new node; the first one creates the library, the others join it.
  Node& AddNode(const std::string& name, SyncConfig config = DefaultConfig());
  // Trusts each other.
  static void Pair(Node& a, Node& b);
  // Starts every node not started yet. Fails with the first error.
  Status StartAll();

  // `dialer` connects to `listener` over a new pipe (outbound on the
  // dialer's side). The sessions start at the next Run.
  Link Connect(Node& dialer, Node& listener, PipeOptions options = {});
  // A connection to `listener` whose other end the test drives by hand, as
  // device `raw_id` (not started: Start it, or leave it mute).
  std::pair<std::unique_ptr<ByteStream>, std::shared_ptr<Session>> ConnectRaw(Node& listener,
                                                                              const DeviceId& raw_id);

  // Runs the loop until `pred` holds (checked after each handler) or
  // `limit` of simulated time passed. Returns the simulated time it took,
  // or nullopt when the limit passed first.
  std::optional<Duration> RunUntil(const std::function<bool()>& pred, Duration limit);
  // Runs exactly `d` of simulated time.
  void RunFor(Duration d);

  // Simulated time since the simulation began.
  Duration Elapsed() const { return clock_.now() - start_; }
  // Loop handlers run, and times the clock moved, since the simulation began.
  uint64_t handlers_run() const { return handlers_; }
  uint64_t wakeups() const { return wakeups_; }
  asio::io_context& io() { return io_; }

 private:
  // Runs what is ready, one handler at a time, until nothing is or `pred`
  // holds. Returns true when `pred` held.
  bool Drain(const std::function<bool()>& pred);

  ManualClock clock_;  // first: installed before anything reads the time
  const Clock::time_point start_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::optional<Uuid> library_;
  uint64_t handlers_ = 0;
  uint64_t wakeups_ = 0;
};

// Prints "[sim] NAME: 12.345 s simulated, N handlers, M wakeups, X ms real".
void Report(const Simulation& sim, const std::string& name, std::chrono::steady_clock::time_point real_start);

}  // namespace entrysync::sim
