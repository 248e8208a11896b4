// The Engine as an application sees it: public headers only (plus a temp
// folder), real libraries on disk, real TLS on 127.0.0.1.
#include "entrysync/engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/test_util.h"

namespace entrysync {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void WriteFile(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

// `files` files spread over a few folders under `root`.
void MakeTree(const std::string& root, int files) {
  for (int i = 0; i < files; ++i)
    WriteFile(root + "/d" + std::to_string(i % 7) + "/f" + std::to_string(i) + ".txt", std::to_string(i));
}

std::unique_ptr<Engine> MustCreate(const std::string& dir, const std::string& name,
                                   std::optional<Uuid> join = std::nullopt) {
  auto e = Engine::Create(dir, {.device_name = name, .join_library = join});
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

// Collects the events an Engine delivers.
class Recorder {
 public:
  explicit Recorder(Engine& e) : engine_(e) {
    id_ = e.Subscribe([this](const EngineEvent& ev) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(ev);
    });
  }
  ~Recorder() { engine_.Unsubscribe(id_); }
  std::vector<OwnerAdvanced> Advances() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<OwnerAdvanced> out;
    for (const auto& e : events_)
      if (const auto* a = std::get_if<OwnerAdvanced>(&e)) out.push_back(*a);
    return out;
  }

 private:
  Engine& engine_;
  SubscriptionId id_;
  std::mutex mu_;
  std::vector<EngineEvent> events_;
};

TEST(EngineTest, CreateOpenIdentity) {
  TempDir tmp;
  std::string dir = tmp.Sub("lib");
  LibraryIdentity id;
  {
    auto e = MustCreate(dir, "alpha");
    ASSERT_NE(e, nullptr);
    auto got = e->Identity();
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    id = *got;
    EXPECT_FALSE(id.device_id.is_zero());
    EXPECT_EQ(id.device_name, "alpha");
    EXPECT_EQ(id.library_id, e->library_id());
    EXPECT_EQ(e->library_dir(), dir);
  }
  auto again = Engine::Open(dir);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto same = (*again)->Identity();
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->device_id, id.device_id);
  EXPECT_EQ(same->device_uuid, id.device_uuid);
  auto me = (*again)->LocalDevice();
  ASSERT_TRUE(me.ok());
  EXPECT_TRUE(me->is_local);
  EXPECT_EQ(me->device_id, id.device_id);

  EXPECT_EQ(Engine::Create(dir, {.device_name = "again", .join_library = std::nullopt}).status().code(),
            Code::kAlreadyExists);
  EXPECT_EQ(Engine::Create(tmp.Sub("x"), {.device_name = "", .join_library = std::nullopt}).status().code(),
            Code::kInvalidArgument);
  auto missing = Engine::Open(tmp.Sub("missing"));
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("no library"), std::string::npos);
}

TEST(EngineTest, IndexListExportDigest) {
  TempDir tmp;
  auto e = MustCreate(tmp.Sub("lib"), "alpha");
  ASSERT_NE(e, nullptr);
  std::string root = fs::canonical(tmp.path()).string() + "/data";
  MakeTree(root, 40);
  Recorder events(*e);

  uint64_t progress_calls = 0;
  ScanOptions so;
  so.progress = [&](uint64_t) { ++progress_calls; };
  auto added = e->AddLocation(root, so);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(added->entries, 48u);  // the root, 7 folders, 40 files
  EXPECT_TRUE(added->bulk);
  EXPECT_EQ(added->location.root_path, root);
  EXPECT_EQ(added->location.owner_name, "alpha");
  EXPECT_GT(progress_calls, 0u);
  EXPECT_EQ(e->AddLocation(root).status().code(), Code::kAlreadyExists);
  EXPECT_FALSE(e->AddLocation(tmp.Sub("nope")).ok());

  auto me = e->LocalDevice();
  ASSERT_TRUE(me.ok());
  auto advances = events.Advances();
  ASSERT_FALSE(advances.empty());
  EXPECT_EQ(advances.back().owner, me->uuid);
  EXPECT_EQ(advances.back().seq, added->max_seq);

  auto locations = e->Locations(me->uuid);
  ASSERT_TRUE(locations.ok());
  ASSERT_EQ(locations->size(), 1u);
  EXPECT_EQ(locations->front().uuid, added->location.uuid);
  auto found = e->FindLocalLocation(root + "/d3/f3.txt");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->uuid, added->location.uuid);
  EXPECT_EQ(e->FindLocalLocation(tmp.path()).status().code(), Code::kNotFound);

  auto folder = e->List(me->uuid, root + "/d3");
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  EXPECT_EQ(folder->entry.kind, EntryKind::kDir);
  EXPECT_EQ(folder->children.size(), 6u);  // f3, f10, f17, f24, f31, f38
  auto file = e->List(me->uuid, root + "/d3/f10.txt");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->entry.kind, EntryKind::kFile);
  EXPECT_TRUE(file->children.empty());
  EXPECT_EQ(e->List(me->uuid, root + "/d3/none").status().code(), Code::kNotFound);

  std::vector<std::string> lines;
  ASSERT_TRUE(e->Export(me->uuid, [&](std::string_view l) { lines.emplace_back(l); }).ok());
  EXPECT_EQ(lines.size(), 48u);
  auto digest = e->Digest(me->uuid);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(digest->sha256.size(), 64u);
  EXPECT_EQ(digest->entries, 48u);
  EXPECT_EQ(digest->live, 48u);

  WriteFile(root + "/d0/new.txt", "new");
  fs::remove(root + "/d1/f1.txt");
  auto rescanned = e->Rescan(added->location.uuid);
  ASSERT_TRUE(rescanned.ok()) << rescanned.status().ToString();
  EXPECT_EQ(rescanned->added, 1u);
  EXPECT_EQ(rescanned->deleted, 1u);
  EXPECT_GT(rescanned->max_seq, added->max_seq);
  EXPECT_EQ(events.Advances().back().seq, rescanned->max_seq);
  EXPECT_EQ(e->Rescan(Uuid::Nil()).status().code(), Code::kNotFound);

  auto stats = e->Stats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->owners.size(), 1u);
  EXPECT_EQ(stats->owners[0].entries, 48u);
  EXPECT_EQ(stats->owners[0].tombstones, 1u);
  EXPECT_EQ(stats->owners[0].max_seq, rescanned->max_seq);
  ASSERT_EQ(stats->owners[0].locations.size(), 1u);
  auto status = e->GetStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->device_name, "alpha");
  EXPECT_FALSE(status->daemon.has_value());
}

TEST(EngineTest, PairAndUnpair) {
  TempDir tmp;
  auto a = MustCreate(tmp.Sub("a"), "alpha");
  ASSERT_NE(a, nullptr);
  auto b = MustCreate(tmp.Sub("b"), "beta", a->library_id());
  ASSERT_NE(b, nullptr);
  DeviceId b_id = b->Identity()->device_id;

  EXPECT_EQ(a->Pair("beta", b_id, "nocolon").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(a->Pair("self", a->Identity()->device_id).status().code(), Code::kInvalidArgument);
  auto paired = a->Pair("beta", b_id, "127.0.0.1:9");
  ASSERT_TRUE(paired.ok()) << paired.status().ToString();
  EXPECT_TRUE(paired->paired);
  EXPECT_EQ(paired->address, "127.0.0.1:9");
  EXPECT_EQ(paired->device_id, b_id);
  auto found = a->FindDevice("beta");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->device_id, b_id);
  EXPECT_EQ(a->FindDevice("gamma").status().code(), Code::kNotFound);
  auto devices = a->Devices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), 2u);
  EXPECT_TRUE(devices->front().is_local);

  ASSERT_TRUE(a->Unpair(b_id).ok());
  EXPECT_FALSE(a->FindDevice("beta")->paired);
  EXPECT_EQ(a->Unpair(a->Identity()->device_id).code(), Code::kInvalidArgument);
  EXPECT_EQ(a->Unpair(DeviceId{}).code(), Code::kNotFound);
  // An unpaired peer cannot be synced with.
  EXPECT_EQ(a->SyncOnce(b_id).status().code(), Code::kNotFound);
}

// Two devices sync over TLS on 127.0.0.1 through the API: alpha runs its
// node (Start), beta syncs once; then a third device loads one of alpha's
// folders on demand, and a snapshot of alpha's index moves offline.
// A started Engine writes through its node's writer: indexing and pairing
// work as without a node, and progress still runs on the calling thread.
TEST(EngineTest, WritesWhileStartedGoThroughTheNode) {
  TempDir tmp;
  auto a = MustCreate(tmp.Sub("a"), "alpha");
  auto b = MustCreate(tmp.Sub("b"), "beta", a->library_id());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  StartOptions start;
  start.dial_peers = false;
  ASSERT_TRUE(a->Start(start).ok());

  std::string root = fs::canonical(tmp.path()).string() + "/data";
  MakeTree(root, 9000);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> calls{0}, elsewhere{0};
  std::atomic<uint64_t> last{0};
  ScanOptions scan;
  scan.progress = [&](uint64_t entries) {
    ++calls;
    last = entries;
    if (std::this_thread::get_id() != caller) ++elsewhere;
  };
  auto added = a->AddLocation(root, scan);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  // Progress may be coalesced on its way back; the last count arrives.
  EXPECT_GE(calls.load(), 1);
  EXPECT_EQ(last.load(), added->entries);
  EXPECT_EQ(elsewhere.load(), 0);
  EXPECT_EQ(a->Stats()->owners[0].entries, 9008u);  // 9000 files, 7 folders, the root

  WriteFile(root + "/new.txt", "x");
  auto rescanned = a->Rescan(added->location.uuid, scan);
  ASSERT_TRUE(rescanned.ok()) << rescanned.status().ToString();
  EXPECT_EQ(rescanned->added, 1u);
  EXPECT_EQ(a->AddLocation(root).status().code(), Code::kAlreadyExists);

  auto paired = a->Pair("beta", b->Identity()->device_id);
  ASSERT_TRUE(paired.ok()) << paired.status().ToString();
  EXPECT_TRUE(paired->paired);
  EXPECT_TRUE(a->Unpair(b->Identity()->device_id).ok());
  a->Stop();
  EXPECT_FALSE(a->FindDevice("beta")->paired);
}

TEST(EngineTest, SyncOverTls) {
  TempDir tmp;
  auto a = MustCreate(tmp.Sub("a"), "alpha");
  ASSERT_NE(a, nullptr);
  auto b = MustCreate(tmp.Sub("b"), "beta", a->library_id());
  auto c = MustCreate(tmp.Sub("c"), "gamma", a->library_id());
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  LibraryIdentity ia = *a->Identity(), ib = *b->Identity(), ic = *c->Identity();

  std::string root = fs::canonical(tmp.path()).string() + "/data";
  MakeTree(root, 300);
  ASSERT_TRUE(a->AddLocation(root).ok());

  ASSERT_TRUE(a->Pair("beta", ib.device_id).ok());
  ASSERT_TRUE(a->Pair("gamma", ic.device_id).ok());
  StartOptions start;
  start.listen = "127.0.0.1:0";
  start.dial_peers = false;
  ASSERT_TRUE(a->Start(start).ok());
  EXPECT_TRUE(a->running());
  EXPECT_EQ(a->Start(start).code(), Code::kAlreadyExists);
  ASSERT_NE(a->listen_port(), 0);
  std::string addr = "127.0.0.1:" + std::to_string(a->listen_port());
  ASSERT_TRUE(b->Pair("alpha", ia.device_id, addr).ok());
  ASSERT_TRUE(c->Pair("alpha", ia.device_id, addr).ok());

  Recorder b_events(*b);
  std::atomic<int> progress_calls{0};
  SyncOnceOptions once;
  once.timeout = std::chrono::seconds(60);
  once.sync.strategy = SyncStrategy::kBatch;
  once.progress = [&](const SyncProgress&) { ++progress_calls; };
  auto report = b->SyncOnce(ia.device_id, once);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->peer_name, "alpha");
  EXPECT_GE(report->counters.rows_applied, 308u);  // 300 files, 7 folders, the root, the location
  EXPECT_GT(report->wire_received, 0u);
  EXPECT_GT(progress_calls.load(), 0);
  bool pulled_batch = false;
  for (const auto& t : report->transfers)
    pulled_batch |= t.pulling && t.owner_name == "alpha" && t.strategy == SyncStrategy::kBatch;
  EXPECT_TRUE(pulled_batch);

  auto da = a->Digest(ia.device_uuid);
  auto db = b->Digest(ia.device_uuid);
  ASSERT_TRUE(da.ok());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(da->sha256, db->sha256);
  EXPECT_EQ(db->entries, 308u);

  // beta heard that it now holds alpha's rows.
  auto advances = b_events.Advances();
  ASSERT_FALSE(advances.empty());
  EXPECT_EQ(advances.back().owner, ia.device_uuid);
  EXPECT_EQ(advances.back().owner_name, "alpha");
  EXPECT_EQ(advances.back().seq, a->Stats()->owners[0].max_seq);

  // alpha's status shows its own node.
  auto status = a->GetStatus();
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(status->daemon.has_value());
  EXPECT_EQ(status->daemon->listen_port, a->listen_port());
  EXPECT_EQ(status->daemon->pid, static_cast<int>(getpid()));
  EXPECT_NE(status->daemon->document.find("\"listen_port\""), std::string::npos);

  // gamma fetches lazily: connected once (it learns alpha's device uuid),
  // it holds nothing of alpha; listing one folder loads just that folder.
  SyncOnceOptions lazy;
  lazy.timeout = std::chrono::seconds(60);
  lazy.sync.fetch_in_background = false;
  auto met = c->SyncOnce(ia.device_id, lazy);
  ASSERT_TRUE(met.ok()) << met.status().ToString();
  EXPECT_EQ(met->counters.rows_applied, 0u);
  EXPECT_EQ(c->FindDevice("alpha")->uuid, ia.device_uuid);
  auto listing = c->List(ia.device_uuid, root + "/d2");
  ASSERT_TRUE(listing.ok()) << listing.status().ToString();
  EXPECT_EQ(listing->children.size(), 43u);  // f2, f9, ..., f296
  auto c_holds = c->Digest(ia.device_uuid);
  ASSERT_TRUE(c_holds.ok());
  EXPECT_LT(c_holds->entries, 308u);

  // A snapshot of alpha's index, exported by beta, imported offline by gamma.
  std::string file = tmp.Sub("alpha.snap");
  auto exported = b->ExportSnapshot(ia.device_uuid, file);
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  auto inspected = Engine::InspectSnapshot(file);
  ASSERT_TRUE(inspected.ok()) << inspected.status().ToString();
  EXPECT_EQ(inspected->sha256, exported->sha256);
  EXPECT_EQ(inspected->owner, ia.device_uuid);
  // alpha's daemon imports through its node, and refuses its own index.
  EXPECT_EQ(a->ImportSnapshot(file).status().code(), Code::kPermissionDenied);
  Recorder c_events(*c);
  auto imported = c->ImportSnapshot(file, exported->sha256);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(c->Digest(ia.device_uuid)->sha256, da->sha256);
  ASSERT_FALSE(c_events.Advances().empty());
  EXPECT_EQ(c_events.Advances().back().owner, ia.device_uuid);
  EXPECT_EQ(c->ImportSnapshot(file).status().code(), Code::kAlreadyExists);

  a->Stop();
  EXPECT_FALSE(a->running());
  EXPECT_EQ(a->listen_port(), 0);
  a->Stop();  // idempotent
  // With alpha stopped, a sync fails with the connection's reason.
  auto refused = b->SyncOnce(ia.device_id, once);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("connect to alpha"), std::string::npos)
      << refused.status().message();
}

TEST(EngineTest, StrategiesAndAddresses) {
  EXPECT_STREQ(SyncStrategyName(SyncStrategy::kSnapshot), "snapshot");
  EXPECT_EQ(ParseSyncStrategy("bulk"), SyncStrategy::kBulk);
  EXPECT_FALSE(ParseSyncStrategy("warp").has_value());
  EXPECT_TRUE(ValidateAddress("127.0.0.1:0").ok());
  EXPECT_TRUE(ValidateAddress("[::1]:7000").ok());
  EXPECT_EQ(ValidateAddress("nocolon").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateAddress("h:99999").code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace entrysync
