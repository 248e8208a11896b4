// The sync protocol between nodes in one process, joined by in-memory pipes.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "base/test_util.h"
#include "net/io_thread.h"
#include "net/pipe.h"
#include "proto/batch.h"
#include "proto/convert.h"
#include "proto/frame.h"
#include "store/export.h"
#include "store/transaction_manager.h"
#include "sync/rate_limiter.h"
#include "sync/sim.h"
#include "sync/sync_service.h"

namespace entrysync {
namespace {

using testing::TempDir;
using namespace std::chrono_literals;

struct TestNode {
  TestNode(const std::string& name, std::optional<Uuid> library, SyncConfig cfg = {}) {
    auto l = Library::Create(dir.path(), name, library);
    EXPECT_TRUE(l.ok()) << l.status().message();
    lib = std::move(*l);
    key = sim::MakeTestKey(static_cast<uint8_t>(name[0]));  // ids ordered by name
    id = key.id;
    EXPECT_TRUE(lib->SetLocalDeviceId(id).ok());
    uuid = lib->LocalDevice()->uuid;
    tm = std::make_unique<TransactionManager>(*lib, bus);
    Configure(cfg);
  }
  ~TestNode() {
    if (started) svc->Stop();
    svc.reset();
    loop.Stop();
  }
  // A new service with `cfg` (before Start).
  void Configure(const SyncConfig& cfg) {
    if (started) svc->Stop();
    started = false;
    SyncConfig signing = cfg;
    if (!signing.sign_checkpoint) signing.sign_checkpoint = key.Signer(lib->library_id());
    svc = std::make_unique<SyncService>(dir.path(), signing, loop.context().get_executor());
  }
  Status Start() {
    Status s = svc->Start();
    started = s.ok();
    if (started) svc->AttachBus(bus);
    return s;
  }
  void Pair(TestNode& other) { ASSERT_TRUE(lib->AddPeer(other.lib->LocalDevice()->name, other.id, "").ok()); }
  // Commits `n` generated entries under a new location; returns them.
  std::vector<EntryRecord> Index(int n, const std::string& root = "/data") {
    auto loc = tm->AddLocation(root, "data");
    EXPECT_TRUE(loc.ok());
    location = *loc;
    std::vector<EntryRecord> rows(n);
    Uuid root_uuid = NewUuidV7();
    for (int i = 0; i < n; ++i) {
      rows[i].uuid = i == 0 ? root_uuid : NewUuidV7();
      rows[i].parent = i == 0 ? Uuid::Nil() : root_uuid;
      rows[i].name = i == 0 ? "data" : "file-" + std::to_string(i) + ".txt";
      rows[i].extension = i == 0 ? "" : "txt";
      rows[i].kind = i == 0 ? EntryKind::kDir : EntryKind::kFile;
      rows[i].size = static_cast<uint64_t>(i) * 100;
      rows[i].inode = static_cast<uint64_t>(i) + 1000;
      rows[i].modified_ns = 1'700'000'000'000'000'000 + i;
    }
    auto r = tm->CommitBulkEntries(location, rows);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return rows;
  }
  std::string DigestOf(const Uuid& owner) {
    auto l = Library::Open(dir.path());
    auto d = (*l)->FindDeviceByUuid(owner);
    if (!d.ok()) return "none";
    return DigestOwner(**l, d->id)->sha256_hex;
  }
  TempDir dir;
  std::unique_ptr<Library> lib;
  sim::TestKey key;
  DeviceId id;
  Uuid uuid;
  EventBus bus;
  std::unique_ptr<TransactionManager> tm;
  IoThread loop{"test-sync"};
  std::unique_ptr<SyncService> svc;
  bool started = false;
  LocationInfo location;
};

std::pair<std::shared_ptr<Session>, std::shared_ptr<Session>> Connect(TestNode& a, TestNode& b) {
  auto [ea, eb] = MakePipe(a.loop.context().get_executor(), b.loop.context().get_executor(), a.id, b.id,
                           PipeOptions{4096});
  auto sa = a.svc->AddSession(std::move(ea), /*outbound=*/true);
  auto sb = b.svc->AddSession(std::move(eb));
  return {sa, sb};
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit = 30s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = std::make_unique<TestNode>("alpha", std::nullopt);
    b_ = std::make_unique<TestNode>("beta", a_->lib->library_id());
    a_->Pair(*b_);
    b_->Pair(*a_);
  }
  void StartBoth() {
    ASSERT_TRUE(a_->Start().ok());
    ASSERT_TRUE(b_->Start().ok());
  }
  std::unique_ptr<TestNode> a_, b_;
};

TEST_F(SyncTest, BatchTransferConvergesAndAppliesEachRowOnce) {
  a_->Index(5000);
  StartBoth();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  auto snap = sb->Snapshot();
  EXPECT_EQ(snap.counters.rows_applied, 5000u);
  EXPECT_EQ(snap.counters.batches_received, 5u + 1u);  // 5 entry batches + locations
  ASSERT_FALSE(snap.transfers.empty());
  EXPECT_EQ(snap.transfers[0].strategy, Strategy::kBatch);
  EXPECT_EQ(snap.transfers[0].total, 5000u);
  EXPECT_EQ(snap.transfers[0].done, 5000u);
  EXPECT_GT(snap.wire_received, 5000u * 5);
}

TEST_F(SyncTest, SmallDeltaGoesAsStateChanges) {
  a_->Index(50);
  StartBoth();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  auto snap = sb->Snapshot();
  EXPECT_EQ(snap.counters.changes_received, 50u);
  EXPECT_EQ(snap.counters.rows_applied, 50u);
}

TEST_F(SyncTest, BothDirectionsAtOnce) {
  a_->Index(3000);
  b_->Index(2000, "/other");
  StartBoth();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  EXPECT_EQ(a_->DigestOf(b_->uuid), b_->DigestOf(b_->uuid));
}

TEST_F(SyncTest, LiveChangesArriveAndResumeAfterReconnect) {
  auto rows = a_->Index(2000);
  StartBoth();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  // A rename and a delete while connected: pushed as StateChanges.
  std::vector<EntryRecord> change{rows[5], rows[6]};
  change[0].name = "renamed.txt";
  change[1].deleted = true;
  ASSERT_TRUE(a_->tm->CommitChanges(a_->location, change).ok());
  ASSERT_TRUE(WaitFor([&] { return a_->DigestOf(a_->uuid) == b_->DigestOf(a_->uuid); }, 5s));
  EXPECT_EQ(sb->Snapshot().counters.changes_received, 2u);
  // Disconnect, change more, reconnect: only the delta moves.
  sa->Close(Status::Ok());
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  std::vector<EntryRecord> more{rows[10], rows[11], rows[12]};
  for (auto& r : more) r.size += 1;
  ASSERT_TRUE(a_->tm->CommitChanges(a_->location, more).ok());
  auto [sa2, sb2] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa2->BothCurrent() && sb2->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  EXPECT_EQ(sb2->Snapshot().counters.rows_applied, 3u);
}

TEST_F(SyncTest, BulkCommitWhileConnectedIsAnnouncedThenPulled) {
  a_->Index(10);
  StartBoth();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  a_->Index(3000, "/more");
  ASSERT_TRUE(WaitFor([&] { return a_->DigestOf(a_->uuid) == b_->DigestOf(a_->uuid); }, 10s));
  EXPECT_GE(sb->Snapshot().counters.notices_received, 1u);
}

TEST_F(SyncTest, ForcedChangeStrategy) {
  SyncConfig cfg;
  cfg.forced = Strategy::kChange;
  b_->Configure(cfg);
  a_->Index(1500);
  StartBoth();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  EXPECT_EQ(sb->Snapshot().counters.changes_received, 1500u);
}

TEST_F(SyncTest, NewEpochMakesReceiverResyncFromZero) {
  a_->Index(500);
  StartBoth();
  {
    auto [sa, sb] = Connect(*a_, *b_);
    ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
    sa->Close(Status::Ok());
    ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  }
  // B holds a stray row of A's old epoch that A never had in the new one.
  ASSERT_TRUE(a_->lib->SetEpoch(a_->lib->local_device(), Epoch(12345)).ok());
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  auto wm = b_->lib->GetWatermark(b_->lib->FindDeviceByUuid(a_->uuid)->id);
  EXPECT_EQ((*wm)->epoch, Epoch(12345));
  EXPECT_EQ(sb->Snapshot().counters.rows_applied, 500u);
}

TEST_F(SyncTest, LazyPeerLoadsOnlyTheFolderItBrowses) {
  SyncConfig lazy;
  lazy.auto_fetch = false;
  b_->Configure(lazy);
  // A: /data/{sub1,sub2}/file-N: two folders of 300 files each.
  auto loc = a_->tm->AddLocation("/data", "data");
  ASSERT_TRUE(loc.ok());
  std::vector<EntryRecord> rows;
  auto add = [&](const Uuid& parent, const std::string& name, EntryKind kind) {
    EntryRecord e;
    e.uuid = NewUuidV7();
    e.parent = parent;
    e.name = name;
    e.kind = kind;
    rows.push_back(e);
    return e.uuid;
  };
  Uuid root = add(Uuid::Nil(), "data", EntryKind::kDir);
  for (const char* sub : {"sub1", "sub2"}) {
    Uuid d = add(root, sub, EntryKind::kDir);
    for (int i = 0; i < 300; ++i) add(d, "file-" + std::to_string(i), EntryKind::kFile);
  }
  ASSERT_TRUE(a_->tm->CommitBulkEntries(*loc, rows).ok());
  StartBoth();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sb->ready(); }));
  auto owner_row = [&] { return b_->lib->FindDeviceByUuid(a_->uuid)->id; };
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(b_->lib->FindDeviceByUuid(a_->uuid).ok() && *b_->lib->CountEntries(owner_row(), true) > 0)
      << "a lazy peer pulled rows nobody asked for";
  std::promise<Status> done;
  sb->RequestPath(a_->uuid, "/data/sub2", [&](Status s) { done.set_value(s); });
  auto fut = done.get_future();
  ASSERT_EQ(fut.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(fut.get().ok());
  // The path (data, sub2) and sub2's 300 children: not sub1's.
  EXPECT_EQ(*b_->lib->CountEntries(owner_row(), true), 302u);
  auto kids = b_->lib->ListChildren(rows[0].uuid);
  ASSERT_TRUE(kids.ok());
  ASSERT_EQ(kids->size(), 1u);
  EXPECT_EQ((*kids)[0].name, "sub2");
  // The watermark did not move: the replica is not "complete".
  auto wm = b_->lib->GetWatermark(owner_row());
  EXPECT_TRUE(!wm->has_value() || (*wm)->seq == Seq(0));
  // A missing folder is a clear NotFound, and the session goes on.
  std::promise<Status> missing;
  sb->RequestPath(a_->uuid, "/data/nope", [&](Status s) { missing.set_value(s); });
  auto mf = missing.get_future();
  ASSERT_EQ(mf.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(mf.get().code(), Code::kNotFound);
  EXPECT_FALSE(sb->closed());
}

TEST_F(SyncTest, BulkPullsPageByPageAndHonoursTheRateLimit) {
  SyncConfig bulk;
  bulk.forced = Strategy::kBulk;
  bulk.bulk_page_records = 2000;
  bulk.fetch_rate_limit = 20'000;  // bytes/s
  b_->Configure(bulk);
  a_->Index(12000);
  StartBoth();
  auto t0 = std::chrono::steady_clock::now();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  auto snap = sb->Snapshot();
  int pages = 0;
  for (const auto& t : snap.transfers)
    if (t.pulling && t.done > 0) ++pages;
  EXPECT_GE(pages, 6);  // 12000 rows in pages of 2000
  // Beyond the burst, the pages wait until the bytes so far fit the limit:
  // ~90 KB at 20 KB/s, less the 64 KiB burst and the last batch, take at
  // least ~0.8 s.
  uint64_t all = 0;
  for (const auto& t : snap.transfers)
    if (t.pulling) all += t.bytes;
  const double paced =
      static_cast<double>(all) - static_cast<double>(TokenBucket::DefaultBurst(20'000)) - 8000;
  EXPECT_GT(paced, 10'000);
  EXPECT_GE(secs, paced / 20'000 * 0.9);
}

TEST_F(SyncTest, NewPeerOfALargeOwnerGetsASnapshotThenStateChanges) {
  SyncConfig cfg;
  cfg.snapshot_threshold = 3000;  // "large" for this test
  a_->Configure(cfg);
  b_->Configure(cfg);
  auto rows = a_->Index(5000);
  StartBoth();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  auto snap = sb->Snapshot();
  EXPECT_EQ(snap.counters.snapshots_imported, 1u);
  EXPECT_EQ(snap.counters.batches_received, 0u);      // no rows streamed
  EXPECT_EQ(snap.counters.rows_applied, 5000u + 1u);  // entries + the location
  ASSERT_FALSE(snap.transfers.empty());
  EXPECT_EQ(snap.transfers[0].strategy, Strategy::kSnapshot);
  EXPECT_EQ(snap.transfers[0].done, snap.transfers[0].total);
  EXPECT_GT(snap.transfers[0].total_bytes, 0u);
  EXPECT_EQ(snap.transfers[0].bytes, snap.transfers[0].total_bytes);
  // Current now: a rename goes as a StateChange, not another snapshot.
  std::vector<EntryRecord> change{rows[7]};
  change[0].name = "renamed.txt";
  ASSERT_TRUE(a_->tm->CommitChanges(a_->location, change).ok());
  ASSERT_TRUE(WaitFor([&] { return a_->DigestOf(a_->uuid) == b_->DigestOf(a_->uuid); }, 5s));
  EXPECT_EQ(sb->Snapshot().counters.changes_received, 1u);
  EXPECT_EQ(sb->Snapshot().counters.snapshots_imported, 1u);
  // Nothing of the download is left behind.
  EXPECT_FALSE(std::filesystem::exists(b_->dir.path() + "/snapshots/" + a_->uuid.ToString() + ".part"));
}

TEST_F(SyncTest, APreparedSnapshotServesNewPeersThenDeltasFollow) {
  SyncConfig cfg;
  cfg.snapshot_threshold = 3000;
  a_->Configure(cfg);
  b_->Configure(cfg);
  auto rows = a_->Index(5000);
  StartBoth();
  // A exports its settled index in the background, before anyone asks.
  auto cached = [&] {
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(a_->dir.path() + "/snapshots", ec))
      if (f.path().extension() == ".info") return true;
    return false;
  };
  ASSERT_TRUE(WaitFor(cached, 10s));
  // A moves on a little: the prepared export still serves, the rest follows as rows.
  std::vector<EntryRecord> change{rows[1], rows[2], rows[3]};
  for (auto& r : change) r.name += ".moved";
  ASSERT_TRUE(a_->tm->CommitChanges(a_->location, change).ok());
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  auto snap = sb->Snapshot();
  EXPECT_EQ(snap.counters.snapshots_imported, 1u);
  EXPECT_EQ(snap.counters.changes_received, 3u);  // the delta after the export's max seq
}

TEST_F(SyncTest, SnapshotDownloadResumesByByteOffsetAfterADisconnect) {
  SyncConfig slow;
  slow.forced = Strategy::kSnapshot;
  slow.snapshot_chunk_bytes = 16 << 10;
  slow.fetch_rate_limit = 400'000;  // bytes/s: the download takes a while
  b_->Configure(slow);
  SyncConfig server;
  server.snapshot_chunk_bytes = 16 << 10;
  a_->Configure(server);
  a_->Index(20000);
  StartBoth();
  std::string part = b_->dir.path() + "/snapshots/" + a_->uuid.ToString() + ".part";
  uint64_t size = 0;
  {
    auto [sa, sb] = Connect(*a_, *b_);
    ASSERT_TRUE(WaitFor([&] {
      auto t = sb->Snapshot().transfers;
      return !t.empty() && t[0].bytes > 64u << 10;
    }));
    size = sb->Snapshot().transfers[0].total_bytes;
    sb->Close(Status::Ok());  // mid-download
    ASSERT_TRUE(WaitFor([&] { return sa->closed(); }));
  }
  ASSERT_TRUE(std::filesystem::exists(part));
  uint64_t had = std::filesystem::file_size(part);
  ASSERT_GT(had, 0u);
  ASSERT_LT(had, size);
  EXPECT_FALSE(b_->lib->GetWatermark(b_->lib->FindDeviceByUuid(a_->uuid)->id)->has_value())
      << "nothing is imported before the whole file is verified";
  SyncConfig fast;
  fast.forced = Strategy::kSnapshot;
  b_->Configure(fast);
  ASSERT_TRUE(b_->Start().ok());
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  // Only the rest of the file moved the second time.
  EXPECT_LT(sb->Snapshot().wire_received, size - had + (64u << 10));
  EXPECT_EQ(sb->Snapshot().counters.snapshots_imported, 1u);
  EXPECT_FALSE(std::filesystem::exists(part));
}

TEST_F(SyncTest, ChangesDuringASnapshotDownloadAreNotLost) {
  SyncConfig slow;
  slow.forced = Strategy::kSnapshot;
  slow.fetch_rate_limit = 300'000;
  slow.snapshot_chunk_bytes = 16 << 10;
  b_->Configure(slow);
  a_->Configure(slow);
  auto rows = a_->Index(10000);
  StartBoth();
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] {
    auto t = sb->Snapshot().transfers;
    return !t.empty() && t[0].bytes > 0;
  }));
  std::vector<EntryRecord> change{rows[3], rows[4]};
  change[0].name = "renamed-during-download.txt";
  change[1].deleted = true;
  ASSERT_TRUE(a_->tm->CommitChanges(a_->location, change).ok());
  ASSERT_TRUE(WaitFor([&] { return a_->DigestOf(a_->uuid) == b_->DigestOf(a_->uuid); }, 30s));
  EXPECT_EQ(sb->Snapshot().counters.snapshots_imported, 1u);
}

TEST_F(SyncTest, ThreeDevicesRelayThroughTheMiddle) {
  TestNode c("gamma", a_->lib->library_id());
  b_->Pair(c);
  c.Pair(*b_);
  a_->Index(2500);
  StartBoth();
  ASSERT_TRUE(c.Start().ok());
  auto [sa, sb] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb->BothCurrent(); }));
  sa->Close(Status::Ok());  // A goes away
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  auto [sb2, sc] = Connect(*b_, c);
  ASSERT_TRUE(WaitFor([&] { return sb2->BothCurrent() && sc->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), c.DigestOf(a_->uuid));
  c.svc->Stop();
}

// A paired device D sets its own device uuid to A's and connects to B, to
// take over A's pairing (and A's rows) there. An owner is its key: B
// refuses the Hello, keeps A's pairing, and the real A syncs afterwards.
TEST_F(SyncTest, APairedDeviceCannotHijackAnotherDevicesPairing) {
  TestNode d("delta", a_->lib->library_id());
  b_->Pair(d);
  d.Pair(*b_);
  a_->Index(300);
  StartBoth();
  ASSERT_TRUE(
      d.lib->db()
          .Exec("UPDATE device SET uuid = x'" + HexEncode(a_->uuid.bytes.data(), 16) + "' WHERE is_local = 1")
          .ok());
  ASSERT_TRUE(d.Start().ok());
  auto [sd, sb] = Connect(d, *b_);
  ASSERT_TRUE(WaitFor([&] { return sd->closed() && sb->closed(); }));
  EXPECT_NE(sb->close_status().message().find("claims owner " + a_->uuid.ToString()), std::string::npos)
      << sb->close_status().message();
  auto a_row = b_->lib->FindDeviceByUuid(a_->uuid);
  ASSERT_TRUE(a_row.ok());
  EXPECT_EQ(a_row->device_id, a_->id);  // A's pairing is still A's
  auto [sa, sb2] = Connect(*a_, *b_);
  ASSERT_TRUE(WaitFor([&] { return sa->BothCurrent() && sb2->BothCurrent(); }));
  EXPECT_EQ(a_->DigestOf(a_->uuid), b_->DigestOf(a_->uuid));
  d.svc->Stop();
}

TEST_F(SyncTest, WrongLibraryIsRefusedAndNothingMoves) {
  TestNode stranger("sigma", std::nullopt);  // another library
  stranger.Pair(*b_);
  b_->Pair(stranger);
  stranger.Index(100);
  ASSERT_TRUE(stranger.Start().ok());
  StartBoth();
  auto [ss, sb] = Connect(stranger, *b_);
  ASSERT_TRUE(WaitFor([&] { return ss->closed() && sb->closed(); }));
  EXPECT_NE(sb->close_status().message().find("library"), std::string::npos) << sb->close_status().message();
  // Paired, so known by its key's owner uuid, but none of its rows moved:
  // the digest of nothing.
  EXPECT_EQ(b_->DigestOf(stranger.uuid), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  stranger.svc->Stop();
}

TEST_F(SyncTest, UnpairedDeviceIsRefused) {
  TestNode intruder("iota", a_->lib->library_id());
  intruder.Pair(*b_);  // it knows B, B does not know it
  intruder.Index(100);
  ASSERT_TRUE(intruder.Start().ok());
  StartBoth();
  auto [si, sb] = Connect(intruder, *b_);
  ASSERT_TRUE(WaitFor([&] { return si->closed() && sb->closed(); }));
  EXPECT_NE(sb->close_status().message().find("not paired"), std::string::npos)
      << sb->close_status().message();
  EXPECT_EQ(b_->DigestOf(intruder.uuid), "none");
}

// Feeds raw bytes to B's session as if they came from A.
class RawPeerTest : public SyncTest {
 protected:
  std::shared_ptr<Session> Open(std::unique_ptr<ByteStream>* raw) {
    auto [ea, eb] =
        MakePipe(a_->loop.context().get_executor(), b_->loop.context().get_executor(), a_->id, b_->id);
    // Frames B sends, decoded (on A's loop thread; read under mu_).
    ea->Start(
        [this](std::string_view d) {
          std::lock_guard<std::mutex> lock(mu_);
          decoder_.Feed(d);
          for (auto f = decoder_.Next(); f.ok() && f->has_value(); f = decoder_.Next()) got_.push_back(**f);
        },
        [](Status) {});
    *raw = std::move(ea);
    return b_->svc->AddSession(std::move(eb));
  }
  // A Hello from A (as the raw peer) with `codecs` and limits.
  wire::Hello HelloFromA(std::vector<wire::Codec> codecs, uint32_t max_frame = 0, uint32_t max_records = 0) {
    wire::Hello h;
    h.set_protocol_version(1);
    h.set_library_id(std::string(reinterpret_cast<const char*>(a_->lib->library_id().bytes.data()), 16));
    h.set_device_id(std::string(reinterpret_cast<const char*>(a_->id.bytes.data()), 32));
    h.set_device_uuid(std::string(reinterpret_cast<const char*>(a_->uuid.bytes.data()), 16));
    h.set_device_name("alpha");
    for (auto c : codecs) h.add_codecs(c);
    h.set_max_frame_bytes(max_frame);
    h.set_max_batch_records(max_records);
    return h;
  }
  std::vector<Frame> Frames() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  // Asks B for B's own rows from scratch, as a batch stream.
  void RequestAllOfB(ByteStream& raw) {
    wire::StateRequest r;
    r.set_request_id(7);
    r.set_owner(std::string(reinterpret_cast<const char*>(b_->uuid.bytes.data()), 16));
    r.set_max_batches(1000);
    r.set_strategy(wire::STRATEGY_BATCH);
    raw.Write(EncodeFrame(r));
  }
  std::vector<wire::StateBatch> EntryBatches() {
    std::vector<wire::StateBatch> out;
    for (const Frame& f : Frames())
      if (f.type == MessageType::kStateBatch) {
        auto b = ParseMessage<wire::StateBatch>(f);
        if (b.ok() && b->model() == wire::MODEL_ENTRY) out.push_back(*b);
      }
    return out;
  }
  bool Answered() {
    for (const Frame& f : Frames())
      if (f.type == MessageType::kCurrent && ParseMessage<wire::Current>(f)->transfer_id() == 7) return true;
    return false;
  }
  // A session of B with a raw peer that never reads what B sends.
  std::shared_ptr<Session> OpenNotReading(std::unique_ptr<ByteStream>* raw) {
    auto [ea, eb] =
        MakePipe(a_->loop.context().get_executor(), b_->loop.context().get_executor(), a_->id, b_->id);
    *raw = std::move(ea);
    return b_->svc->AddSession(std::move(eb));
  }
  static std::string Pings(int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      wire::Ping p;
      p.set_nonce(i);
      out += EncodeFrame(p);
    }
    return out;
  }
  std::mutex mu_;
  FrameDecoder decoder_;
  std::vector<Frame> got_;
};

TEST_F(RawPeerTest, PeerThatPingsAndNeverReadsIsDisconnected) {
  SyncConfig cfg;
  cfg.max_pending_write_bytes = 64 << 10;
  b_->Configure(cfg);
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = OpenNotReading(&raw);
  raw->Write(EncodeFrame(HelloFromA({})));
  // 20,000 Pongs would be ~360 KB: the first 64 KiB are queued, then as
  // many are not, then the peer is cut off.
  for (int i = 0; i < 20; ++i) raw->Write(Pings(1000));
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  EXPECT_NE(sb->close_status().message().find("not reading its replies"), std::string::npos)
      << sb->close_status().message();
}

TEST_F(RawPeerTest, PeerThatDoesNotReadATransferIsDisconnected) {
  SyncConfig cfg;
  cfg.max_unread_bytes = 256 << 10;  // below the write cap: the transfer's own bytes overrun it
  b_->Configure(cfg);
  b_->Index(20000, "/bdata");
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = OpenNotReading(&raw);
  raw->Write(EncodeFrame(HelloFromA({})));
  RequestAllOfB(*raw);
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  EXPECT_NE(sb->close_status().message().find("not reading what it is sent"), std::string::npos)
      << sb->close_status().message();
}

TEST_F(RawPeerTest, PeerThatSendsFasterThanTheLoopHandlesIsDisconnected) {
  SyncConfig cfg;
  cfg.max_inbox_bytes = 16 << 10;
  b_->Configure(cfg);
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = Open(&raw);
  // One delivery of 100 frames: all wait for the loop at once.
  std::string burst = EncodeFrame(HelloFromA({}));
  for (int i = 0; i < 100; ++i) {
    wire::Credit c;
    c.set_transfer_id(1000 + i);
    c.set_batches(1);
    burst += EncodeFrame(c);
  }
  raw->Write(burst);
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  EXPECT_NE(sb->close_status().message().find("sends faster than it is handled"), std::string::npos)
      << sb->close_status().message();
}

TEST_F(RawPeerTest, PeerThatPushesFasterThanTheWriterCommitsIsDisconnected) {
  a_->Pair(*b_);
  b_->Pair(*a_);
  StartBoth();
  // B's writer is held busy: every change A pushes waits for it.
  std::promise<void> release;
  std::shared_future<void> held = release.get_future().share();
  b_->svc->writer().Post(WriteTarget::LibraryTables(),
                         [held](Library&) -> Result<WriteOutcome> {
                           held.wait();
                           return WriteOutcome{};
                         },
                         {});
  std::unique_ptr<ByteStream> raw;
  auto sb = Open(&raw);
  std::string burst = EncodeFrame(HelloFromA({}));
  for (size_t i = 0; i <= Puller::kMaxQueuedPushes; ++i) {
    EntryRecord e;
    e.uuid = NewUuidV7();
    e.name = "pushed-" + std::to_string(i);
    e.seq = Seq(static_cast<int64_t>(i) + 1);
    wire::StateChange c;
    c.set_owner(UuidToWire(a_->uuid));
    c.set_epoch(1);
    EntryToWire(e, c.mutable_entry());
    burst += EncodeFrame(c);
  }
  raw->Write(burst);
  bool closed = WaitFor([&] { return sb->closed(); });
  release.set_value();
  ASSERT_TRUE(closed);
  EXPECT_NE(sb->close_status().message().find("pushes changes faster than they are written"),
            std::string::npos)
      << sb->close_status().message();
}

TEST_F(RawPeerTest, ADeviceHoldsAFewConnectionsAtMost) {
  StartBoth();
  std::vector<std::unique_ptr<ByteStream>> raws(SessionHost::kMaxSessionsPerDevice + 1);
  std::vector<std::shared_ptr<Session>> sessions;
  for (auto& raw : raws) {
    sessions.push_back(Open(&raw));
    raw->Write(EncodeFrame(HelloFromA({})));
    ASSERT_TRUE(WaitFor([&] { return sessions.back()->ready() || sessions.back()->closed(); }));
  }
  for (size_t i = 0; i < SessionHost::kMaxSessionsPerDevice; ++i) EXPECT_FALSE(sessions[i]->closed()) << i;
  ASSERT_TRUE(sessions.back()->closed());
  EXPECT_NE(sessions.back()->close_status().message().find("connections with alpha; this one refused"),
            std::string::npos)
      << sessions.back()->close_status().message();
}

TEST_F(RawPeerTest, PeerThatSendsNoHelloIsDisconnected) {
  SyncConfig cfg;
  cfg.hello_timeout = 300ms;
  cfg.keepalive = 100ms;
  b_->Configure(cfg);
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = Open(&raw);
  // Pings keep the connection alive but are no Hello.
  for (int i = 0; i < 10 && !sb->closed(); ++i) {
    raw->Write(Pings(1));
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }, 5s));
  EXPECT_EQ(sb->close_status().message(), "peer sent no Hello within 300ms");
}

TEST_F(RawPeerTest, PeerThatAsksForTooManyTransfersAtOnceIsDisconnected) {
  b_->Index(500, "/bdata");
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = Open(&raw);
  std::string burst = EncodeFrame(HelloFromA({}));
  for (size_t i = 0; i <= IndexSender::kMaxRequests; ++i) {
    wire::StateRequest r;
    r.set_request_id(100 + i);
    r.set_owner(std::string(reinterpret_cast<const char*>(b_->uuid.bytes.data()), 16));
    r.set_max_batches(0);  // one batch of credit: each serve stays open
    r.set_strategy(wire::STRATEGY_BATCH);
    burst += EncodeFrame(r);
  }
  raw->Write(burst);
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  EXPECT_NE(sb->close_status().message().find("more than 256 transfers at once"), std::string::npos)
      << sb->close_status().message();
}

TEST_F(RawPeerTest, SenderUsesACodecThePeerListsAndItsLimits) {
  b_->Index(3000, "/bdata");
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = Open(&raw);
  // A peer that decodes gzip only, takes batches of at most 500 records.
  raw->Write(EncodeFrame(HelloFromA({wire::CODEC_GZIP}, 0, 500)));
  RequestAllOfB(*raw);
  ASSERT_TRUE(WaitFor([&] { return Answered(); }));
  auto batches = EntryBatches();
  ASSERT_EQ(batches.size(), 6u);  // 3000 rows in batches of 500
  for (const auto& b : batches) {
    EXPECT_EQ(b.codec(), wire::CODEC_GZIP);
    EXPECT_LE(b.record_count(), 500u);
  }
  // The Hello's owner entry count says what a pull from zero moves.
  for (const Frame& f : Frames()) {
    if (f.type != MessageType::kHello) continue;
    auto hello = ParseMessage<wire::Hello>(f);
    ASSERT_TRUE(hello.ok());
    for (const auto& o : hello->owners()) {
      if (o.name() == "beta") {
        EXPECT_EQ(o.entry_count(), 3000u);
      }
    }
  }
  EXPECT_FALSE(sb->closed());
}

TEST_F(RawPeerTest, NoCommonCodecMeansUncompressedAndSmallFramesMeanSmallerBatches) {
  SyncConfig big;
  big.batch_records = 100000;  // one batch would be ~20 bytes x 20,000 rows
  b_->Configure(big);
  b_->Index(20000, "/bdata");
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = Open(&raw);
  // No codec in common, and frames of at most 64 KiB: the batch is split
  // until each part fits.
  raw->Write(EncodeFrame(HelloFromA({}, 64 << 10, 100000)));
  RequestAllOfB(*raw);
  ASSERT_TRUE(WaitFor([&] { return Answered(); }));
  auto batches = EntryBatches();
  uint64_t rows = 0;
  for (const auto& b : batches) {
    EXPECT_EQ(b.codec(), wire::CODEC_NONE);
    EXPECT_LE(b.ByteSizeLong() + kFrameOverhead, size_t{64} << 10);
    rows += b.record_count();
  }
  EXPECT_EQ(rows, 20000u);
  EXPECT_GT(batches.size(), 4u);
  EXPECT_FALSE(sb->closed());
}

TEST_F(RawPeerTest, GarbageFrameClosesWithClearError) {
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = Open(&raw);
  raw->Write(std::string("\x00\x00\x00\x09garbage!!", 13));
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  EXPECT_EQ(sb->close_status().code(), Code::kProtocol) << sb->close_status().message();
  EXPECT_EQ(*b_->lib->CountEntries(b_->lib->local_device(), true), 0u);
}

TEST_F(RawPeerTest, OversizedFrameIsRefused) {
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = Open(&raw);
  raw->Write(std::string("\x7f\x00\x00\x00\x01", 5));
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  EXPECT_NE(sb->close_status().message().find("exceeds limit"), std::string::npos)
      << sb->close_status().message();
}

TEST_F(RawPeerTest, BatchWithBadChecksumIsRefusedAndChangesNothing) {
  // A plays the peer by hand: a valid Hello offering rows, then a batch
  // (answering B's first request, id 1) whose checksum does not match.
  StartBoth();
  std::unique_ptr<ByteStream> raw;
  auto sb = Open(&raw);
  wire::Hello h;
  h.set_protocol_version(1);
  h.set_library_id(std::string(reinterpret_cast<const char*>(a_->lib->library_id().bytes.data()), 16));
  h.set_device_id(std::string(reinterpret_cast<const char*>(a_->id.bytes.data()), 32));
  h.set_device_uuid(std::string(reinterpret_cast<const char*>(a_->uuid.bytes.data()), 16));
  h.set_device_name("alpha");
  auto* o = h.add_owners();
  o->set_owner(h.device_uuid());
  o->set_name("alpha");
  o->set_epoch(99);
  o->set_max_seq(10);
  raw->Write(EncodeFrame(h));
  std::vector<EntryRecord> rows(3);
  LocationRecord loc{NewUuidV7(), "/x", "x", Seq(1), false};
  for (int i = 0; i < 3; ++i) {
    rows[i].uuid = NewUuidV7();
    rows[i].location = loc.uuid;
    rows[i].name = "f" + std::to_string(i);
    rows[i].seq = Seq(2 + i);
  }
  BatchHeader hdr{a_->uuid, Epoch(99), 1, 0, 0, 1, Codec::kNone, {}};
  auto lb = BuildLocationBatch(hdr, std::span(&loc, 1));
  ASSERT_TRUE(lb.ok());
  lb->set_from_seq(0);
  raw->Write(EncodeFrame(*lb));
  auto b = BuildEntryBatch(hdr, rows);
  ASSERT_TRUE(b.ok());
  b->set_from_seq(0);
  b->set_checksum(b->checksum() ^ 1);
  raw->Write(EncodeFrame(*b));
  ASSERT_TRUE(WaitFor([&] { return sb->closed(); }));
  EXPECT_NE(sb->close_status().message().find("checksum"), std::string::npos) << sb->close_status().message();
  auto owner = b_->lib->FindDeviceByUuid(a_->uuid);
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(*b_->lib->CountEntries(owner->id, true), 0u);
  auto wm = b_->lib->GetWatermark(owner->id);
  EXPECT_TRUE(!wm->has_value() || (*wm)->seq == Seq(0));
}

}  // namespace
}  // namespace entrysync
