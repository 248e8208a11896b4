// Scenarios of several nodes on one loop and a manual clock (sync/sim.h).
// Each runs minutes of simulated time in a fraction of a second, the same
// way every time, and asserts the numbers a user would measure.
#include "sync/sim.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "proto/convert.h"
#include "proto/frame.h"
#include "sync/rate_limiter.h"

namespace entrysync::sim {
namespace {

using namespace std::chrono_literals;

double Secs(Duration d) { return std::chrono::duration<double>(d).count(); }

class SimTest : public ::testing::Test {
 protected:
  void TearDown() override {
    Report(sim_, ::testing::UnitTest::GetInstance()->current_test_info()->name(), real_start_);
  }
  std::chrono::steady_clock::time_point real_start_ = std::chrono::steady_clock::now();
  Simulation sim_;
};

// The seam itself: a timer on the loop fires when the manual clock reaches
// it, at the next poll, and the simulation wakes once for it.
TEST_F(SimTest, ManualClockFiresTheLoopsTimers) {
  SyncTimer t(sim_.io().get_executor());
  bool fired = false;
  t.expires_after(5s);
  t.async_wait([&](const asio::error_code& ec) { fired = !ec; });
  auto took = sim_.RunUntil([&] { return fired; }, 1min);
  ASSERT_TRUE(took);
  EXPECT_EQ(*took, 5s);
  EXPECT_EQ(sim_.wakeups(), 1u);
}

// Two idle connected nodes for 10 minutes: a Ping each way every keepalive
// period, answered, and the loop runs a handful of handlers per ping: idle
// is not busy.
TEST_F(SimTest, IdlePeersStayConnectedOnKeepalives) {
  Node& a = sim_.AddNode("alpha");
  Node& b = sim_.AddNode("beta");
  Simulation::Pair(a, b);
  a.Index(10);
  ASSERT_TRUE(sim_.StartAll().ok());
  Link link = sim_.Connect(a, b);
  ASSERT_TRUE(sim_.RunUntil([&] { return link.BothCurrent(); }, 1s));
  const uint64_t handlers = sim_.handlers_run(), wakeups = sim_.wakeups();
  const uint64_t wire = link.dialer->Snapshot().wire_sent;
  sim_.RunFor(10min);

  EXPECT_FALSE(link.dialer->closed()) << link.dialer->close_status().message();
  EXPECT_FALSE(link.listener->closed()) << link.listener->close_status().message();
  EXPECT_TRUE(link.BothCurrent());
  // keepalive 5 s: pings at 5, 10, ..., 600 s from each side, each answered.
  const uint64_t pings = 600 / 5;
  for (const Traffic* t : {&link.sent_by_dialer(), &link.sent_by_listener()}) {
    EXPECT_EQ(t->Frames(MessageType::kPing), pings);
    EXPECT_EQ(t->Frames(MessageType::kPong), pings);
  }
  // Nothing but pings and pongs moved.
  const Traffic& d = link.sent_by_dialer();
  EXPECT_EQ(link.dialer->Snapshot().wire_sent - wire,
            pings * (d.LastBytes(MessageType::kPing) + d.LastBytes(MessageType::kPong)));
  // Both sides ping at the same instants: one wakeup per period.
  EXPECT_EQ(sim_.wakeups() - wakeups, pings);
  uint64_t per_ping = (sim_.handlers_run() - handlers) / (2 * pings);
  EXPECT_LE(per_ping, 6u) << "handlers per ping and pong";
}

// A peer that connects and never sends a byte: the session ends after
// idle_timeout, 30 s, having pinged it meanwhile.
TEST_F(SimTest, MutePeerTimesOutAfterThirtySeconds) {
  Node& a = sim_.AddNode("alpha");
  SyncConfig cfg = DefaultConfig();
  cfg.hello_timeout = std::chrono::hours(1);  // the idle timeout, not the Hello's deadline
  Node& b = sim_.AddNode("beta", cfg);
  Simulation::Pair(a, b);
  ASSERT_TRUE(b.Start().ok());
  FrameDecoder decoder;
  std::vector<MessageType> heard;
  auto [raw, session] = sim_.ConnectRaw(b, a.id());
  raw->Start(
      [&](std::string_view data) {
        decoder.Feed(data);
        for (auto f = decoder.Next(); f.ok() && f->has_value(); f = decoder.Next())
          heard.push_back((*f)->type);
      },
      [](Status) {});
  auto took = sim_.RunUntil([&] { return session->closed(); }, 5min);
  ASSERT_TRUE(took);
  EXPECT_GE(*took, 30s);
  EXPECT_LE(*took, 31s);
  EXPECT_NE(session->close_status().message().find("sent nothing for 30s"), std::string::npos)
      << session->close_status().message();
  // Hello, then a Ping at 5, 10, 15, 20 and 25 s (at 30 s it closes instead).
  std::vector<MessageType> want{MessageType::kHello};
  want.insert(want.end(), 5, MessageType::kPing);
  EXPECT_EQ(heard, want);
}

TEST_F(SimTest, PeerWithoutHelloIsCutAtTheHelloDeadline) {
  Node& a = sim_.AddNode("alpha");
  Node& b = sim_.AddNode("beta");
  Simulation::Pair(a, b);
  ASSERT_TRUE(b.Start().ok());
  auto conn = sim_.ConnectRaw(b, a.id());
  const std::shared_ptr<Session>& session = conn.second;
  conn.first->Start([](std::string_view) {}, [](const Status&) {});
  auto took = sim_.RunUntil([&] { return session->closed(); }, 5min);
  ASSERT_TRUE(took);
  EXPECT_GE(*took, 10s);
  EXPECT_LE(*took, 11s);
  EXPECT_EQ(session->close_status().message(), "peer sent no Hello within 10s");
}

wire::Hello HelloOf(Node& n) {
  wire::Hello h;
  h.set_protocol_version(1);
  h.set_library_id(UuidToWire(n.lib().library_id()));
  h.set_device_id(DeviceIdToWire(n.id()));
  h.set_device_uuid(UuidToWire(n.uuid()));
  h.set_device_name(n.name());
  auto* o = h.add_owners();
  o->set_owner(h.device_uuid());
  o->set_name(n.name());
  o->set_epoch(1);
  o->set_max_seq(0);
  return h;
}

// A peer that says Hello, sends one more frame 10 s later, then goes
// silent: the idle timeout counts from the last byte received, not from
// what this side sent (its pings go unanswered).
TEST_F(SimTest, SilentPeerTimesOutThirtySecondsAfterItsLastByte) {
  Node& a = sim_.AddNode("alpha");
  Node& b = sim_.AddNode("beta");
  Simulation::Pair(a, b);
  ASSERT_TRUE(b.Start().ok());
  auto [raw, session] = sim_.ConnectRaw(b, a.id());
  raw->Start([](std::string_view) {}, [](Status) {});
  raw->Write(EncodeFrame(HelloOf(a)));
  ASSERT_TRUE(sim_.RunUntil([&] { return session->ready(); }, 1s));
  sim_.RunFor(10s);
  ASSERT_FALSE(session->closed());
  wire::Ping p;
  p.set_nonce(1);
  raw->Write(EncodeFrame(p));
  auto took = sim_.RunUntil([&] { return session->closed(); }, 5min);
  ASSERT_TRUE(took);
  EXPECT_GE(*took, 30s);
  EXPECT_LE(*took, 31s);
  EXPECT_NE(session->close_status().message().find("sent nothing for 30s"), std::string::npos)
      << session->close_status().message();
}

// What a limiter lets through at once after idling (sync/rate_limiter.h).
double Burst(uint64_t rate) { return static_cast<double>(TokenBucket::DefaultBurst(rate)); }

// Bytes of the entry batches (or snapshot chunks) of `s`'s transfers in one
// direction.
uint64_t TransferBytes(const Session& s, bool pulling) {
  uint64_t n = 0;
  for (const auto& t : s.Snapshot().transfers)
    if (t.pulling == pulling) n += t.bytes;
  return n;
}

// B pulls 20,000 rows from A at fetch_rate_limit bytes/s: the burst goes at
// once, then every batch waits for its credit until the bytes so far,
// beyond the burst, fit the limit; the pull ends when the bytes before the
// last batch are paid for.
TEST_F(SimTest, RateLimitPacesAPull) {
  SyncConfig limited = DefaultConfig();
  limited.fetch_rate_limit = 20'000;  // bytes/s
  Node& a = sim_.AddNode("alpha");
  Node& b = sim_.AddNode("beta", limited);
  Simulation::Pair(a, b);
  a.Index(20000);
  ASSERT_TRUE(sim_.StartAll().ok());
  Link link = sim_.Connect(a, b);
  auto took = sim_.RunUntil([&] { return link.BothCurrent(); }, 10min);
  ASSERT_TRUE(took);
  EXPECT_EQ(a.DigestOf(a.uuid()), b.DigestOf(a.uuid()));
  auto snap = link.listener->Snapshot();
  ASSERT_EQ(snap.transfers.size(), 1u);
  const TransferProgress& pull = snap.transfers[0];
  EXPECT_EQ(pull.done, 20000u);
  EXPECT_EQ(snap.counters.batches_received, 20u + 1u);  // 20 entry batches + locations
  const uint64_t last_batch = link.sent_by_dialer().LastBytes(MessageType::kStateBatch);
  const double expected = (static_cast<double>(pull.bytes - last_batch) - Burst(limited.fetch_rate_limit)) /
                          limited.fetch_rate_limit;
  std::printf("[sim] %llu bytes at %llu B/s: %.3f s simulated, %.3f s expected\n",
              static_cast<unsigned long long>(pull.bytes),
              static_cast<unsigned long long>(limited.fetch_rate_limit), Secs(*took), expected);
  EXPECT_GT(expected, 2.0);  // the limit matters here
  EXPECT_NEAR(Secs(*took), expected, 0.001);
  // The same pull without a limit takes no simulated time at all.
  Node& c = sim_.AddNode("gamma");
  Simulation::Pair(a, c);
  ASSERT_TRUE(c.Start().ok());
  Link free = sim_.Connect(a, c);
  auto fast = sim_.RunUntil([&] { return free.BothCurrent(); }, 10min);
  ASSERT_TRUE(fast);
  EXPECT_EQ(*fast, Duration::zero());
}

// Issue 9: a daemon limited to 10 KB/s, idle for a minute, then pulled
// 210 KB in 0.2 s (the limit was a lifetime average, so idling banked a
// minute of bandwidth). Now idling fills the bucket to its burst only: the
// rest of a pull after a minute idle goes at the rate.
TEST_F(SimTest, RateLimitHoldsAfterAMinuteIdle) {
  SyncConfig limited = DefaultConfig();
  limited.fetch_rate_limit = 10'000;  // bytes/s
  Node& a = sim_.AddNode("alpha");
  Node& b = sim_.AddNode("beta", limited);
  Simulation::Pair(a, b);
  a.Index(10);
  ASSERT_TRUE(sim_.StartAll().ok());
  Link link = sim_.Connect(a, b);
  ASSERT_TRUE(sim_.RunUntil([&] { return link.BothCurrent(); }, 1min));
  sim_.RunFor(1min);
  a.Index(20000, "/more");  // announced with a notice: B pulls it
  auto took = sim_.RunUntil(
      [&] { return b.RowsAppliedTotal() == 10u + 1u + 20000u + 1u && link.BothCurrent(); }, 10min);
  ASSERT_TRUE(took);
  EXPECT_EQ(a.DigestOf(a.uuid()), b.DigestOf(a.uuid()));
  auto transfers = link.listener->Snapshot().transfers;
  ASSERT_EQ(transfers.size(), 2u);  // the 10 rows as changes, then the 20,000
  const uint64_t bytes = transfers[1].bytes;
  const uint64_t last_batch = link.sent_by_dialer().LastBytes(MessageType::kStateBatch);
  const double expected =
      (static_cast<double>(bytes - last_batch) - Burst(limited.fetch_rate_limit)) / limited.fetch_rate_limit;
  std::printf("[sim] after a minute idle: %llu bytes at %llu B/s in %.3f s, %.3f s expected\n",
              static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(limited.fetch_rate_limit), Secs(*took), expected);
  EXPECT_GT(bytes, 120'000u);
  EXPECT_GT(expected, 5.0);
  EXPECT_NEAR(Secs(*took), expected, 0.001);
}

// The budget is the device's, not the connection's: a connection cut after
// every other batch and dialed again pulls no faster. (Per session, every
// new connection started afresh: its first batch went at once and the
// limit was paid per connection, twice the rate here.)
TEST_F(SimTest, ReconnectingDoesNotResetTheRateLimit) {
  SyncConfig limited = DefaultConfig();
  limited.fetch_rate_limit = 10'000;  // bytes/s
  Node& a = sim_.AddNode("alpha");
  Node& b = sim_.AddNode("beta", limited);
  Simulation::Pair(a, b);
  a.Index(20000);
  ASSERT_TRUE(sim_.StartAll().ok());
  const Duration start = sim_.Elapsed();
  uint64_t bytes = 0, largest = 0;
  int links = 0;
  for (; b.RowsAppliedTotal() < 20001u && links < 50; ++links) {
    Link link = sim_.Connect(a, b);
    auto batches = [&] { return link.listener->Snapshot().counters.batches_received; };
    ASSERT_TRUE(sim_.RunUntil([&] { return batches() >= 3 || link.BothCurrent(); }, 10min));
    if (!link.BothCurrent()) {
      link.Cut();
      ASSERT_TRUE(sim_.RunUntil([&] { return link.BothClosed(); }, 1min));
    }
    bytes += TransferBytes(*link.listener, /*pulling=*/true);
    largest = std::max(largest, link.sent_by_dialer().LastBytes(MessageType::kStateBatch));
  }
  ASSERT_TRUE(sim_.RunUntil([&] { return b.RowsAppliedTotal() == 20001u; }, 10min));
  EXPECT_EQ(a.DigestOf(a.uuid()), b.DigestOf(a.uuid()));
  const double took = Secs(sim_.Elapsed() - start);
  const double paced =
      (static_cast<double>(bytes - largest) - Burst(limited.fetch_rate_limit)) / limited.fetch_rate_limit;
  std::printf("[sim] %d connections pulled %llu bytes at %llu B/s in %.3f s, at least %.3f s expected\n",
              links, static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(limited.fetch_rate_limit), took, paced);
  EXPECT_GE(links, 5);
  EXPECT_GT(paced, 5.0);
  EXPECT_GE(took, paced);
}

// A (upload_rate_limit) serves B, which pulls as fast as it may: A paces
// the batches it sends, the burst first, then the rate.
TEST_F(SimTest, UploadLimitPacesWhatASenderServes) {
  SyncConfig limited = DefaultConfig();
  limited.upload_rate_limit = 20'000;  // bytes/s
  Node& a = sim_.AddNode("alpha", limited);
  Node& b = sim_.AddNode("beta");
  Simulation::Pair(a, b);
  a.Index(20000);
  ASSERT_TRUE(sim_.StartAll().ok());
  Link link = sim_.Connect(a, b);
  auto took = sim_.RunUntil([&] { return link.BothCurrent(); }, 10min);
  ASSERT_TRUE(took);
  EXPECT_EQ(a.DigestOf(a.uuid()), b.DigestOf(a.uuid()));
  const uint64_t served = TransferBytes(*link.dialer, /*pulling=*/false);
  const uint64_t last_batch = link.sent_by_dialer().LastBytes(MessageType::kStateBatch);
  // The locations batch that opens the transfer is charged too (not paced):
  // a few hundred bytes, within the tolerance.
  const double expected = (static_cast<double>(served - last_batch) - Burst(limited.upload_rate_limit)) /
                          limited.upload_rate_limit;
  std::printf("[sim] served %llu bytes at %llu B/s: %.3f s simulated, %.3f s expected\n",
              static_cast<unsigned long long>(served),
              static_cast<unsigned long long>(limited.upload_rate_limit), Secs(*took), expected);
  EXPECT_GT(expected, 2.0);
  EXPECT_NEAR(Secs(*took), expected, 0.05);
}

// The same for a snapshot: its chunks wait for their turn.
TEST_F(SimTest, UploadLimitPacesASnapshot) {
  SyncConfig limited = DefaultConfig();
  limited.upload_rate_limit = 100'000;  // bytes/s
  limited.snapshot_threshold = 1000;
  limited.snapshot_chunk_bytes = 32 << 10;
  SyncConfig receiver = DefaultConfig();
  receiver.snapshot_threshold = 1000;
  Node& a = sim_.AddNode("alpha", limited);
  Node& b = sim_.AddNode("beta", receiver);
  Simulation::Pair(a, b);
  a.Index(20000);
  ASSERT_TRUE(sim_.StartAll().ok());
  Link link = sim_.Connect(a, b);
  auto took = sim_.RunUntil([&] { return link.BothCurrent(); }, 10min);
  ASSERT_TRUE(took);
  EXPECT_EQ(a.DigestOf(a.uuid()), b.DigestOf(a.uuid()));
  EXPECT_EQ(link.listener->Snapshot().counters.snapshots_imported, 1u);
  const Traffic& sent = link.sent_by_dialer();
  const uint64_t chunks = sent.Frames(MessageType::kSnapshotChunk);
  const uint64_t last_chunk = sent.LastBytes(MessageType::kSnapshotChunk);
  // Every chunk but the last is paid for: at least the chunks before it
  // beyond the burst (each is at most 32 KiB, compressed).
  std::printf("[sim] a snapshot in %llu chunks (%llu bytes sent) at %llu B/s: %.3f s simulated\n",
              static_cast<unsigned long long>(chunks), static_cast<unsigned long long>(sent.bytes),
              static_cast<unsigned long long>(limited.upload_rate_limit), Secs(*took));
  EXPECT_GT(chunks, 5u);
  const double expected = (static_cast<double>(sent.bytes - last_chunk) - Burst(limited.upload_rate_limit)) /
                          limited.upload_rate_limit;
  EXPECT_GT(expected, 1.0);
  EXPECT_NEAR(Secs(*took), expected, 0.05);  // what A sent besides chunks: a few hundred bytes
}

// A peer driven by hand as device `as`: Hello, then a pull of `owner` with
// a credit window of 8 and one more credit per batch, until Current.
struct RawPull {
  RawPull(Simulation& sim, Node& from, Node& as, const Uuid& owner) {
    auto [raw, s] = sim.ConnectRaw(from, as.id());
    stream = std::move(raw);
    session = std::move(s);
    stream->Start(
        [this](std::string_view data) {
          decoder.Feed(data);
          for (auto f = decoder.Next(); f.ok() && f->has_value(); f = decoder.Next()) OnFrame(**f);
        },
        [](Status) {});
    wire::Hello h;
    h.set_protocol_version(1);
    h.set_library_id(UuidToWire(as.lib().library_id()));
    h.set_device_id(DeviceIdToWire(as.id()));
    h.set_device_uuid(UuidToWire(as.uuid()));
    h.set_device_name(as.name());
    h.add_codecs(wire::CODEC_ZSTD);
    stream->Write(EncodeFrame(h));
    wire::StateRequest r;
    r.set_request_id(1);
    r.set_owner(UuidToWire(owner));
    r.set_max_batches(8);
    r.set_strategy(wire::STRATEGY_BATCH);
    stream->Write(EncodeFrame(r));
  }
  void OnFrame(const Frame& f) {
    if (f.type == MessageType::kStateBatch) {
      auto b = ParseMessage<wire::StateBatch>(f);
      if (!b.ok() || b->transfer_id() != 1 || b->model() == wire::MODEL_LOCATION) return;
      bytes += f.payload.size() + kFrameOverhead;
      wire::Credit c;
      c.set_transfer_id(1);
      c.set_batches(1);
      stream->Write(EncodeFrame(c));
    } else if (f.type == MessageType::kCurrent) {
      auto c = ParseMessage<wire::Current>(f);
      if (c.ok() && c->transfer_id() == 1) done = true;
    }
  }
  std::unique_ptr<ByteStream> stream;
  std::shared_ptr<Session> session;
  FrameDecoder decoder;
  uint64_t bytes = 0;
  bool done = false;
};

// Two connections of one device (say its daemon and a one-shot `ls`) pull
// from A at once: they share A's upload budget for that device, and take
// turns within it.
TEST_F(SimTest, TwoSessionsOfOneDeviceShareItsUploadBudget) {
  SyncConfig limited = DefaultConfig();
  limited.upload_rate_limit = 20'000;  // bytes/s
  Node& a = sim_.AddNode("alpha", limited);
  Node& b = sim_.AddNode("beta");
  Simulation::Pair(a, b);
  a.Index(10000);
  ASSERT_TRUE(a.Start().ok());
  RawPull one(sim_, a, b, a.uuid()), two(sim_, a, b, a.uuid());
  std::optional<Duration> first_done;
  auto took = sim_.RunUntil(
      [&] {
        if (!first_done && (one.done || two.done)) first_done = sim_.Elapsed();
        return one.done && two.done;
      },
      10min);
  ASSERT_TRUE(took) << one.session->close_status().message() << " / "
                    << two.session->close_status().message();
  ASSERT_TRUE(first_done);
  EXPECT_FALSE(one.session->closed());
  EXPECT_FALSE(two.session->closed());
  EXPECT_EQ(one.bytes, two.bytes);
  const double batch = static_cast<double>(one.bytes) / 10 / limited.upload_rate_limit;  // 10 batches each
  // The last batch goes when everything before it, beyond the burst, is paid.
  const double expected =
      (2.0 * static_cast<double>(one.bytes) - Burst(limited.upload_rate_limit)) / limited.upload_rate_limit -
      batch;
  std::printf(
      "[sim] two sessions of one device: 2 x %llu bytes at %llu B/s in %.3f s (first done at %.3f s)\n",
      static_cast<unsigned long long>(one.bytes), static_cast<unsigned long long>(limited.upload_rate_limit),
      Secs(*took), Secs(*first_done));
  EXPECT_GT(expected, 2.0);
  // Both paid at one rate (give or take the locations batches, charged
  // too, and batches of unequal sizes); one budget each would take half.
  EXPECT_NEAR(Secs(*took), expected, 0.1);
  // Taking turns, they finish together.
  EXPECT_GE(Secs(*first_done), Secs(*took) - batch);
}

// A node-wide total holds over every peer: B and C pulling from A at once
// share total_upload_rate_limit.
TEST_F(SimTest, ATotalUploadLimitIsSharedByEveryPeer) {
  SyncConfig limited = DefaultConfig();
  limited.total_upload_rate_limit = 20'000;  // bytes/s
  Node& a = sim_.AddNode("alpha", limited);
  Node& b = sim_.AddNode("beta");
  Node& c = sim_.AddNode("gamma");
  Simulation::Pair(a, b);
  Simulation::Pair(a, c);
  a.Index(10000);
  ASSERT_TRUE(sim_.StartAll().ok());
  Link ab = sim_.Connect(a, b);
  Link ac = sim_.Connect(a, c);
  auto took = sim_.RunUntil([&] { return ab.BothCurrent() && ac.BothCurrent(); }, 10min);
  ASSERT_TRUE(took);
  EXPECT_EQ(a.DigestOf(a.uuid()), b.DigestOf(a.uuid()));
  EXPECT_EQ(a.DigestOf(a.uuid()), c.DigestOf(a.uuid()));
  const uint64_t served = TransferBytes(*ab.dialer, false) + TransferBytes(*ac.dialer, false);
  const uint64_t last_batch = ab.sent_by_dialer().LastBytes(MessageType::kStateBatch);
  const double expected =
      (static_cast<double>(served - last_batch) - Burst(limited.total_upload_rate_limit)) /
      limited.total_upload_rate_limit;
  std::printf("[sim] two peers, one total: %llu bytes at %llu B/s in %.3f s, %.3f s expected\n",
              static_cast<unsigned long long>(served),
              static_cast<unsigned long long>(limited.total_upload_rate_limit), Secs(*took), expected);
  EXPECT_GT(expected, 2.0);
  EXPECT_NEAR(Secs(*took), expected, 0.1);
}

// A cut connection mid-transfer loses what was in flight; the reconnection
// pulls only the rest: every row is applied exactly once.
TEST_F(SimTest, ReconnectAfterACutPipeAppliesEachRowOnce) {
  Node& a = sim_.AddNode("alpha");
  Node& b = sim_.AddNode("beta");
  Simulation::Pair(a, b);
  a.Index(20000);
  ASSERT_TRUE(sim_.StartAll().ok());
  Link first = sim_.Connect(a, b);
  ASSERT_TRUE(sim_.RunUntil([&] { return first.listener->Snapshot().counters.batches_received >= 4; }, 1min));
  first.Cut();
  ASSERT_TRUE(sim_.RunUntil([&] { return first.BothClosed(); }, 1min));
  EXPECT_NE(first.listener->close_status().message().find("pipe cut"), std::string::npos)
      << first.listener->close_status().message();
  const uint64_t before = first.listener->Snapshot().counters.rows_applied;
  EXPECT_GT(before, 0u);
  EXPECT_LT(before, 20000u);
  EXPECT_GT(first.sent_by_dialer().Frames(MessageType::kStateBatch), 4u) << "batches were in flight";

  Link second = sim_.Connect(a, b);
  ASSERT_TRUE(sim_.RunUntil([&] { return second.BothCurrent(); }, 1min));
  EXPECT_EQ(a.DigestOf(a.uuid()), b.DigestOf(a.uuid()));
  auto counters = second.listener->Snapshot().counters;
  // Batches already queued at B's writer when the pipe was cut were still
  // written, counted by neither session (the first one had ended): the
  // library's own count proves every row was written exactly once.
  EXPECT_LE(before + counters.rows_applied, 20000u);
  EXPECT_GT(counters.rows_applied, 0u);
  EXPECT_EQ(counters.rows_skipped, 0u);
  EXPECT_EQ(b.RowsAppliedTotal(), 20000u + 1u);  // the entries and the location
}

// A -> B -> C: C never connects to A, gets A's rows through B, then a live
// change on A reaches C at once (no timer involved: zero simulated time).
// (B once announced the first rows it ever held of an owner to nobody.)
TEST_F(SimTest, RowsFlowTransitivelyThroughAMiddleNode) {
  Node& a = sim_.AddNode("alpha");
  Node& b = sim_.AddNode("beta");
  Node& c = sim_.AddNode("gamma");
  Simulation::Pair(a, b);
  Simulation::Pair(b, c);
  auto rows = a.Index(3000);
  ASSERT_TRUE(sim_.StartAll().ok());
  Link ab = sim_.Connect(a, b);
  Link bc = sim_.Connect(b, c);
  // The rows (3000 entries and their location) are checked by digest below.
  auto took = sim_.RunUntil(
      [&] { return ab.BothCurrent() && bc.BothCurrent() && c.RowsAppliedTotal() == 3001u; }, 10min);
  ASSERT_TRUE(took) << "C applied " << c.RowsAppliedTotal() << " rows";
  EXPECT_EQ(*took, Duration::zero());
  EXPECT_EQ(c.DigestOf(a.uuid()), a.DigestOf(a.uuid()));
  for (const auto& s : c.svc().Sessions()) EXPECT_EQ(s->remote_id(), b.id());

  std::vector<EntryRecord> change{rows[5], rows[6]};
  change[0].name = "renamed.txt";
  change[1].deleted = true;
  ASSERT_TRUE(a.Change(change).ok());
  auto live = sim_.RunUntil([&] { return c.RowsAppliedTotal() == 3003u; }, 1min);
  ASSERT_TRUE(live);
  EXPECT_EQ(*live, Duration::zero());
  EXPECT_EQ(c.DigestOf(a.uuid()), a.DigestOf(a.uuid()));
  EXPECT_EQ(bc.listener->Snapshot().counters.changes_received, 2u);
}

// Both devices dial each other at the same instant: each side keeps the
// connection dialed by the smaller device id, so both keep the same one.
void SimultaneousDial(Simulation& sim, bool smaller_dials_first) {
  Node& a = sim.AddNode("alpha");  // the smaller id
  Node& b = sim.AddNode("beta");
  ASSERT_LT(a.id(), b.id());
  Simulation::Pair(a, b);
  a.Index(2000);
  b.Index(1000, "/other");
  ASSERT_TRUE(sim.StartAll().ok());
  Link by_a, by_b;
  if (smaller_dials_first) {
    by_a = sim.Connect(a, b);
    by_b = sim.Connect(b, a);
  } else {
    by_b = sim.Connect(b, a);
    by_a = sim.Connect(a, b);
  }
  auto alive = [](Node& n) {
    int k = 0;
    for (const auto& s : n.svc().Sessions()) k += !s->closed();
    return k;
  };
  // BothCurrent alone may hold for a moment before the rows moved: the kept
  // connection cannot claim the pulls the closing one holds, and says "done"
  // until it is poked again. So wait for the rows.
  auto took = sim.RunUntil(
      [&] {
        return by_a.BothCurrent() && by_b.BothClosed() && alive(a) == 1 && alive(b) == 1 &&
               a.RowsAppliedTotal() == 1000u + 1u && b.RowsAppliedTotal() == 2000u + 1u;
      },
      1min);
  ASSERT_TRUE(took) << "by_a: " << by_a.dialer->close_status().message() << " / "
                    << by_a.listener->close_status().message();
  EXPECT_EQ(*took, Duration::zero());
  EXPECT_FALSE(by_a.dialer->closed());
  EXPECT_FALSE(by_a.listener->closed());
  EXPECT_EQ(a.DigestOf(a.uuid()), b.DigestOf(a.uuid()));
  EXPECT_EQ(a.DigestOf(b.uuid()), b.DigestOf(b.uuid()));
  // Each row crossed once, on the kept connection.
  EXPECT_EQ(a.RowsAppliedTotal(), 1000u + 1u);
  EXPECT_EQ(b.RowsAppliedTotal(), 2000u + 1u);
  // And it stays that way.
  sim.RunFor(1min);
  EXPECT_EQ(alive(a), 1);
  EXPECT_EQ(alive(b), 1);
  EXPECT_TRUE(by_a.BothCurrent());
}

TEST_F(SimTest, SimultaneousDialKeepsTheSmallerIdsConnection) { SimultaneousDial(sim_, true); }
TEST_F(SimTest, SimultaneousDialKeepsTheSmallerIdsConnectionWhicheverComesFirst) {
  SimultaneousDial(sim_, false);
}

}  // namespace
}  // namespace entrysync::sim
