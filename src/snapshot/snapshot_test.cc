#include "snapshot/snapshot.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "base/event_bus.h"
#include "base/test_util.h"
#include "store/export.h"
#include "store/replica.h"
#include "store/transaction_manager.h"

namespace entrysync {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// One device's library with a writer for its own rows.
struct Device {
  Device(const TempDir& t, const std::string& name, std::optional<Uuid> library_id) {
    auto l = Library::Create(t.Sub(name), name, library_id);
    EXPECT_TRUE(l.ok()) << l.status().message();
    lib = std::move(*l);
    tm = std::make_unique<TransactionManager>(*lib, bus);
  }
  LocationInfo AddLocation(const std::string& root) {
    auto loc = tm->AddLocation(root, fs::path(root).filename().string());
    EXPECT_TRUE(loc.ok()) << loc.status().message();
    return *loc;
  }
  EventBus bus;
  std::unique_ptr<Library> lib;
  std::unique_ptr<TransactionManager> tm;
};

// A small tree: a root folder, `dirs` folders below it, files in each.
std::vector<EntryRecord> MakeTree(int dirs, int files_per_dir, const std::string& tag) {
  std::vector<EntryRecord> v;
  EntryRecord root;
  root.uuid = NewUuidV7();
  root.kind = EntryKind::kDir;
  root.name = tag;
  v.push_back(root);
  for (int d = 0; d < dirs; ++d) {
    EntryRecord dir;
    dir.uuid = NewUuidV7();
    dir.parent = root.uuid;
    dir.kind = EntryKind::kDir;
    dir.name = "dir" + std::to_string(d);
    v.push_back(dir);
    for (int f = 0; f < files_per_dir; ++f) {
      EntryRecord e;
      e.uuid = NewUuidV7();
      e.parent = dir.uuid;
      e.name = tag + "-file-" + std::to_string(d) + "-" + std::to_string(f) + ".txt";
      e.extension = "txt";
      e.size = static_cast<uint64_t>(d * 1000 + f);
      e.inode = static_cast<uint64_t>(100000 + d * 1000 + f);
      e.created_ns = 1700000000000000000LL + f;
      e.modified_ns = e.created_ns + 5;
      e.accessed_ns = e.created_ns + 9;
      if (f % 7 == 0) e.content_hash = std::string(32, static_cast<char>('a' + f % 26));
      v.push_back(e);
    }
  }
  return v;
}

std::string DigestOf(Library& lib, const Uuid& owner) {
  auto dev = lib.FindDeviceByUuid(owner);
  if (!dev.ok()) return "<no owner>";
  auto d = DigestOwner(lib, dev->id);
  EXPECT_TRUE(d.ok()) << d.status().message();
  return d.ok() ? d->sha256_hex + "/" + std::to_string(d->entries) : "<error>";
}

// What a refused import must not change.
struct LibState {
  std::string digest;
  std::optional<std::pair<uint64_t, int64_t>> watermark;
  uint64_t rows_applied = 0;
  size_t devices = 0;
  bool operator==(const LibState&) const = default;
};
LibState StateOf(Library& lib, const Uuid& owner) {
  LibState s;
  s.digest = DigestOf(lib, owner);
  auto dev = lib.FindDeviceByUuid(owner);
  if (dev.ok()) {
    auto wm = lib.GetWatermark(dev->id);
    if (wm.ok() && *wm) s.watermark = std::make_pair((*wm)->epoch.value(), (*wm)->seq.value());
  }
  s.rows_applied = *lib.RowsAppliedTotal();
  s.devices = lib.ListDevices()->size();
  return s;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = std::make_unique<Device>(tmp_, "alpha", std::nullopt);
    b_ = std::make_unique<Device>(tmp_, "beta", a_->lib->library_id());
    c_ = std::make_unique<Device>(tmp_, "gamma", a_->lib->library_id());
    loc1_ = a_->AddLocation("/home/alpha/docs");
    loc2_ = a_->AddLocation("/home/alpha/photos");
    rows1_ = MakeTree(20, 100, "docs");
    rows2_ = MakeTree(5, 50, "photos");
    ASSERT_TRUE(a_->tm->CommitBulkEntries(loc1_, rows1_).ok());
    ASSERT_TRUE(a_->tm->CommitBulkEntries(loc2_, rows2_).ok());
    // Tombstones and an update, so the snapshot carries every kind of row.
    std::vector<EntryRecord> changes1 = {rows1_[5], rows1_[6]};
    changes1[0].deleted = true;
    changes1[1].deleted = true;
    ASSERT_TRUE(a_->tm->CommitChanges(loc1_, changes1).ok());
    std::vector<EntryRecord> changes2 = {rows2_[10]};
    changes2[0].size = 424242;
    ASSERT_TRUE(a_->tm->CommitChanges(loc2_, changes2).ok());
    alpha_ = a_->lib->LocalDevice()->uuid;
  }
  std::string Snap(const std::string& name) const { return tmp_.Sub(name); }

  TempDir tmp_;
  std::unique_ptr<Device> a_, b_, c_;
  LocationInfo loc1_, loc2_;
  std::vector<EntryRecord> rows1_, rows2_;
  Uuid alpha_;
};

TEST_F(SnapshotTest, ExportInspectImportGivesIdenticalDigest) {
  std::string file = Snap("alpha.snap");
  auto info = ExportSnapshot(*a_->lib, a_->lib->local_device(), file);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  DeviceInfo me = *a_->lib->LocalDevice();
  EXPECT_EQ(info->owner, alpha_);
  EXPECT_EQ(info->owner_name, "alpha");
  EXPECT_EQ(info->epoch, me.epoch);
  EXPECT_EQ(info->max_seq, me.max_seq);
  EXPECT_EQ(info->entries, *a_->lib->CountEntries(me.id, true));
  EXPECT_EQ(info->locations, 2u);
  EXPECT_EQ(info->size_bytes, fs::file_size(file));
  EXPECT_EQ(info->sha256.size(), 64u);

  auto seen = InspectSnapshot(file);
  ASSERT_TRUE(seen.ok()) << seen.status().message();
  EXPECT_EQ(seen->sha256, info->sha256);
  EXPECT_EQ(seen->entries, info->entries);
  EXPECT_EQ(seen->max_seq, info->max_seq);

  uint64_t applied_before = *b_->lib->RowsAppliedTotal();
  auto st = ImportSnapshot(*b_->lib, file, info->sha256);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->rows_written, info->entries + info->locations);
  EXPECT_EQ(st->rows_replaced, 0u);
  EXPECT_EQ(DigestOf(*b_->lib, alpha_), DigestOf(*a_->lib, alpha_));
  auto wm = b_->lib->GetWatermark(st->owner);
  ASSERT_TRUE(wm.ok() && *wm);
  EXPECT_EQ((*wm)->epoch, me.epoch);
  EXPECT_EQ((*wm)->seq, me.max_seq);
  EXPECT_EQ(*b_->lib->RowsAppliedTotal(), applied_before + st->rows_written);
  EXPECT_EQ(b_->lib->GetDevice(st->owner)->name, "alpha");
  EXPECT_EQ(b_->lib->ListLocations(st->owner)->size(), 2u);
}

// Gives alpha a fresh Ed25519 key (its owner uuid derives from it) and
// stores alpha's checkpoint at its max seq over `digest` (its own digest
// when not given), as its daemon signs after a commit.
struct AlphaKey {
  explicit AlphaKey(Library& lib) : key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")) {
    std::array<uint8_t, 32> pub{};
    size_t len = pub.size();
    EXPECT_EQ(EVP_PKEY_get_raw_public_key(key, pub.data(), &len), 1);
    EXPECT_TRUE(lib.SetLocalDeviceId(DeviceIdOfEd25519(pub)).ok());
  }
  ~AlphaKey() { EVP_PKEY_free(key); }
  AlphaKey(const AlphaKey&) = delete;
  AlphaKey& operator=(const AlphaKey&) = delete;
  Checkpoint Sign(Library& lib, std::optional<LtHash::Checksum> digest = std::nullopt) const {
    DeviceInfo me = *lib.LocalDevice();
    if (!digest) digest = lib.digests().Get(me.id)->checksum();
    auto cp = SignCheckpoint(key, lib.library_id(), me.epoch, me.max_seq, *digest);
    EXPECT_TRUE(cp.ok()) << cp.status().message();
    EXPECT_TRUE(lib.ReplaceCheckpoint(me.id, *cp).ok());
    return *cp;
  }
  EVP_PKEY* key;
};

TEST_F(SnapshotTest, AFileCarriesTheOwnersCheckpointAndIsVerifiedByIt) {
  AlphaKey alpha(*a_->lib);
  alpha_ = a_->lib->LocalDevice()->uuid;
  const Checkpoint cp = alpha.Sign(*a_->lib);
  std::string file = Snap("alpha.snap");
  auto info = ExportSnapshot(*a_->lib, a_->lib->local_device(), file);
  ASSERT_TRUE(info.ok()) << info.status().message();
  ASSERT_TRUE(info->checkpoint.has_value());
  EXPECT_EQ(*info->checkpoint, cp);
  auto seen = InspectSnapshot(file);
  ASSERT_TRUE(seen.ok()) << seen.status().message();
  EXPECT_EQ(seen->checkpoint, info->checkpoint);

  // Imported by hand, without the owner ever met: verified at once, and the
  // checkpoint kept to pass on with the rows.
  auto st = ImportSnapshot(*b_->lib, file, std::nullopt);
  ASSERT_TRUE(st.ok()) << st.status().message();
  auto wm = b_->lib->GetWatermark(st->owner);
  ASSERT_TRUE(wm.ok() && *wm);
  EXPECT_TRUE((*wm)->verified());
  auto kept = b_->lib->GetCheckpoint(st->owner, cp.epoch);
  ASSERT_TRUE(kept.ok() && *kept);
  EXPECT_EQ(**kept, cp);
  EXPECT_EQ(b_->lib->GetDevice(st->owner)->device_id, DeviceIdOfEd25519(cp.public_key));
  // A replica's export of it carries it on.
  auto again = ExportSnapshot(*b_->lib, st->owner, Snap("relayed.snap"));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->checkpoint, cp);
}

TEST_F(SnapshotTest, RowsTheFilesCheckpointDoesNotSignAreRefused) {
  AlphaKey alpha(*a_->lib);
  alpha_ = a_->lib->LocalDevice()->uuid;
  // A valid signature over another set (what a replica that changed rows
  // after the owner signed would hold): the file inspects, the import is
  // refused inside its transaction.
  alpha.Sign(*a_->lib, LtHash().checksum());
  std::string file = Snap("alpha.snap");
  ASSERT_TRUE(ExportSnapshot(*a_->lib, a_->lib->local_device(), file).ok());
  ASSERT_TRUE(InspectSnapshot(file).ok());
  LibState before = StateOf(*b_->lib, alpha_);
  auto st = ImportSnapshot(*b_->lib, file, std::nullopt);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), Code::kCorruption);
  EXPECT_NE(st.status().message().find("not the ones alpha signed"), std::string::npos)
      << st.status().message();
  EXPECT_EQ(StateOf(*b_->lib, alpha_), before);

  // A signature that does not verify is refused by inspection.
  Checkpoint forged = alpha.Sign(*a_->lib);
  forged.signature[0] ^= 1;
  ASSERT_TRUE(a_->lib->ReplaceCheckpoint(a_->lib->local_device(), forged).ok());
  ASSERT_TRUE(ExportSnapshot(*a_->lib, a_->lib->local_device(), file).ok());
  auto seen = InspectSnapshot(file);
  ASSERT_FALSE(seen.ok());
  EXPECT_NE(seen.status().message().find("checkpoint does not verify"), std::string::npos)
      << seen.status().message();
  EXPECT_FALSE(ImportSnapshot(*b_->lib, file, std::nullopt).ok());
  EXPECT_EQ(StateOf(*b_->lib, alpha_), before);
}

TEST_F(SnapshotTest, RefusalsLeaveTheLibraryUnchanged) {
  std::string file = Snap("alpha.snap");
  auto info = ExportSnapshot(*a_->lib, a_->lib->local_device(), file);
  ASSERT_TRUE(info.ok()) << info.status().message();
  std::string bytes = ReadAll(file);
  LibState before = StateOf(*b_->lib, alpha_);

  // Truncated (at a page boundary and in the middle of a page).
  for (size_t keep : {bytes.size() - 4096, bytes.size() / 2 + 17, size_t{50}, size_t{0}}) {
    std::string cut = Snap("cut.snap");
    WriteAll(cut, bytes.substr(0, keep));
    auto r = ImportSnapshot(*b_->lib, cut, std::nullopt);
    ASSERT_FALSE(r.ok()) << keep;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
    EXPECT_EQ(StateOf(*b_->lib, alpha_), before);
    EXPECT_FALSE(InspectSnapshot(cut).ok());
  }

  // One byte flipped inside a row: refused with the sha, and without it by
  // the content checksum.
  std::string flipped = bytes;
  size_t at = flipped.find("docs-file-7-42.txt");
  ASSERT_NE(at, std::string::npos);
  flipped[at + 3] ^= 0x01;
  std::string bad = Snap("flipped.snap");
  WriteAll(bad, flipped);
  auto r1 = ImportSnapshot(*b_->lib, bad, info->sha256);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), Code::kCorruption);
  EXPECT_NE(r1.status().message().find("SHA-256 mismatch"), std::string::npos) << r1.status().message();
  auto r2 = ImportSnapshot(*b_->lib, bad, std::nullopt);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), Code::kCorruption) << r2.status().message();
  EXPECT_EQ(StateOf(*b_->lib, alpha_), before);

  // Wrong library.
  Device other(tmp_, "stranger", std::nullopt);
  auto r3 = ImportSnapshot(*other.lib, file, info->sha256);
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.status().code(), Code::kPermissionDenied) << r3.status().message();
  EXPECT_EQ(other.lib->ListDevices()->size(), 1u);

  // The local device as owner.
  LibState a_before = StateOf(*a_->lib, alpha_);
  auto r4 = ImportSnapshot(*a_->lib, file, info->sha256);
  ASSERT_FALSE(r4.ok());
  EXPECT_EQ(r4.status().code(), Code::kPermissionDenied) << r4.status().message();
  EXPECT_EQ(StateOf(*a_->lib, alpha_), a_before);

  // Not newer: a second import of the same snapshot.
  ASSERT_TRUE(ImportSnapshot(*b_->lib, file, info->sha256).ok());
  LibState imported = StateOf(*b_->lib, alpha_);
  auto r5 = ImportSnapshot(*b_->lib, file, info->sha256);
  ASSERT_FALSE(r5.ok());
  EXPECT_EQ(r5.status().code(), Code::kAlreadyExists);
  EXPECT_NE(r5.status().message().find("already current"), std::string::npos);
  EXPECT_EQ(StateOf(*b_->lib, alpha_), imported);

  // Not a SQLite file at all; a missing file.
  std::string junk = Snap("junk.snap");
  WriteAll(junk, std::string(8192, 'x'));
  EXPECT_EQ(InspectSnapshot(junk).status().code(), Code::kCorruption);
  EXPECT_EQ(InspectSnapshot(Snap("missing.snap")).status().code(), Code::kNotFound);
}

// Any single flipped byte is either refused or harmless (the rows that
// would be imported are the original ones): never a silent corruption.
TEST_F(SnapshotTest, EveryFlippedByteIsRefusedOrHarmless) {
  std::string file = Snap("alpha.snap");
  ASSERT_TRUE(ExportSnapshot(*a_->lib, a_->lib->local_device(), file).ok());
  std::string bytes = ReadAll(file);
  std::string want = DigestOf(*a_->lib, alpha_);
  int refused = 0, harmless = 0;
  std::string bad = Snap("flip.snap");
  for (size_t at = 0; at < bytes.size(); at += 997) {
    std::string f = bytes;
    f[at] ^= 0x20;
    WriteAll(bad, f);
    auto info = InspectSnapshot(bad);
    if (!info.ok()) {
      ++refused;
      EXPECT_EQ(info.status().message().find('\n'), std::string::npos) << info.status().message();
      continue;
    }
    // Accepted: import into a fresh library and compare.
    TempDir t;
    Device fresh(t, "fresh", a_->lib->library_id());
    auto st = ImportSnapshot(*fresh.lib, bad, std::nullopt);
    if (!st.ok()) {
      ++refused;
      continue;
    }
    ++harmless;
    EXPECT_EQ(DigestOf(*fresh.lib, alpha_), want) << "flip at " << at << " went unnoticed";
  }
  EXPECT_GT(refused, 0);
  std::printf("flip scan: %d refused, %d harmless of %zu bytes\n", refused, harmless, bytes.size());
}

// A file's SQL runs when it is read. A snapshot whose `entry` is a view
// (here of the very same rows, so every count and the checksum agree, or
// an endless recursive one, which made inspection spin for as long as the
// view runs) or that carries a trigger is not the format: refused at once.
TEST_F(SnapshotTest, ViewsAndTriggersInPlaceOfTheTablesAreRefused) {
  std::string file = Snap("alpha.snap");
  ASSERT_TRUE(ExportSnapshot(*a_->lib, a_->lib->local_device(), file).ok());
  const std::string good = ReadAll(file);
  const std::string columns =
      "seq, uuid, location, parent, name, extension, kind, size, inode, created_ns, modified_ns,"
      " accessed_ns, content_hash, deleted";
  const std::vector<std::string> edits = {
      "CREATE TABLE rows AS SELECT * FROM entry; DROP TABLE entry;"
      " CREATE VIEW entry AS SELECT * FROM rows ORDER BY seq;",
      "DROP TABLE entry; CREATE VIEW entry(" + columns +
          ") AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 20000000)"
          " SELECT x, randomblob(16), 1, NULL, 'n', '', 0, 0, 0, 0, 0, 0, NULL, 0 FROM n;",
      "CREATE TRIGGER t AFTER DELETE ON location BEGIN SELECT 1; END;",
  };
  for (const std::string& sql : edits) {
    std::string bad = Snap("edited.snap");
    WriteAll(bad, good);
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(bad.c_str(), &db), SQLITE_OK);
    const std::string script = "PRAGMA journal_mode = DELETE; " + sql + " VACUUM;";
    ASSERT_EQ(sqlite3_exec(db, script.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
    auto t0 = std::chrono::steady_clock::now();
    auto info = InspectSnapshot(bad);
    ASSERT_FALSE(info.ok()) << sql;
    EXPECT_EQ(info.status().code(), Code::kCorruption);
    EXPECT_NE(info.status().message().find("not the snapshot format's"), std::string::npos)
        << info.status().message();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
    LibState before = StateOf(*b_->lib, alpha_);
    EXPECT_FALSE(ImportSnapshot(*b_->lib, bad, std::nullopt).ok());
    EXPECT_EQ(StateOf(*b_->lib, alpha_), before);
  }
}

TEST_F(SnapshotTest, FailureInsideTheTransactionRollsBackEverything) {
  std::string s1 = Snap("s1.snap"), s2 = Snap("s2.snap");
  ASSERT_TRUE(ExportSnapshot(*a_->lib, a_->lib->local_device(), s1).ok());
  ASSERT_TRUE(ImportSnapshot(*b_->lib, s1, std::nullopt).ok());
  // Alpha adds a file; beta (wrongly) already holds that uuid under another
  // owner, so the insert fails half-way through the import.
  std::vector<EntryRecord> add = MakeTree(1, 3, "late");
  ASSERT_TRUE(a_->tm->CommitChanges(loc1_, add).ok());
  ASSERT_TRUE(ExportSnapshot(*a_->lib, a_->lib->local_device(), s2).ok());
  auto loc = b_->AddLocation("/beta");
  std::vector<EntryRecord> clash = {add.back()};
  ASSERT_TRUE(b_->tm->CommitChanges(loc, clash).ok());
  LibState before = StateOf(*b_->lib, alpha_);
  auto r = ImportSnapshot(*b_->lib, s2, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  EXPECT_FALSE(ImportMayRetry(r.status())) << r.status().message();  // the same file would fail again
  EXPECT_EQ(StateOf(*b_->lib, alpha_), before);
  // The library is still usable and the attachment is gone.
  EXPECT_TRUE(b_->lib->db().Exec("SELECT count(*) FROM entry").ok());
  EXPECT_FALSE(b_->lib->db().Exec("SELECT count(*) FROM es_snapshot.entry").ok());
}

TEST_F(SnapshotTest, RelayThroughAReplicaAndNewerSnapshotReplaces) {
  std::string s1 = Snap("a1.snap");
  ASSERT_TRUE(ExportSnapshot(*a_->lib, a_->lib->local_device(), s1).ok());
  auto st = ImportSnapshot(*b_->lib, s1, std::nullopt);
  ASSERT_TRUE(st.ok()) << st.status().message();
  // B re-exports alpha's rows: C imports them.
  std::string relay = Snap("relay.snap");
  auto info = ExportSnapshot(*b_->lib, st->owner, relay);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->owner, alpha_);
  EXPECT_EQ(info->max_seq, a_->lib->LocalDevice()->max_seq);
  EXPECT_EQ(info->exported_by, b_->lib->LocalDevice()->uuid);
  auto st2 = ImportSnapshot(*c_->lib, relay, info->sha256);
  ASSERT_TRUE(st2.ok()) << st2.status().message();
  EXPECT_EQ(DigestOf(*c_->lib, alpha_), DigestOf(*a_->lib, alpha_));

  // Alpha changes; its newer snapshot replaces what B holds.
  std::vector<EntryRecord> upd = {rows1_[100], rows1_[200]};
  upd[0].deleted = true;
  upd[1].name = "renamed.txt";
  ASSERT_TRUE(a_->tm->CommitChanges(loc1_, upd).ok());
  std::string s2 = Snap("a2.snap");
  ASSERT_TRUE(ExportSnapshot(*a_->lib, a_->lib->local_device(), s2).ok());
  auto st3 = ImportSnapshot(*b_->lib, s2, std::nullopt);
  ASSERT_TRUE(st3.ok()) << st3.status().message();
  EXPECT_EQ(st3->rows_replaced, st->rows_written);
  EXPECT_EQ(DigestOf(*b_->lib, alpha_), DigestOf(*a_->lib, alpha_));
}

TEST_F(SnapshotTest, ImportThenDeltasContinue) {
  std::string file = Snap("alpha.snap");
  auto info = ExportSnapshot(*a_->lib, a_->lib->local_device(), file);
  ASSERT_TRUE(info.ok());
  auto st = ImportSnapshot(*b_->lib, file, info->sha256);
  ASSERT_TRUE(st.ok()) << st.status().message();

  // Later changes on alpha: an update, a tombstone, new files, a new location.
  std::vector<EntryRecord> upd = {rows1_[10], rows1_[11]};
  upd[0].size = 1;
  upd[1].deleted = true;
  ASSERT_TRUE(a_->tm->CommitChanges(loc1_, upd).ok());
  LocationInfo loc3 = a_->AddLocation("/home/alpha/music");
  auto more = MakeTree(3, 10, "music");
  ASSERT_TRUE(a_->tm->CommitBulkEntries(loc3, more).ok());

  // The delta a session would send: rows with seq > the snapshot's max_seq.
  Seq upto = a_->lib->LocalDevice()->max_seq;
  std::vector<EntryRecord> delta;
  ASSERT_TRUE(a_->lib
                  ->ScanOwnerEntries(a_->lib->local_device(), info->max_seq, upto, 0,
                                     [&](EntryRecord&& r) {
                                       delta.push_back(std::move(r));
                                       return true;
                                     })
                  .ok());
  std::vector<LocationRecord> locs;
  auto all_locs = a_->lib->ListLocations(a_->lib->local_device());
  ASSERT_TRUE(all_locs.ok());
  for (const auto& l : *all_locs)
    if (l.record.seq > info->max_seq) locs.push_back(l.record);
  ASSERT_EQ(locs.size(), 1u);
  auto rep = Replica::Make(*b_->lib);
  ASSERT_TRUE(rep.ok());
  auto applied = rep->Apply(st->owner, info->epoch, locs, delta, upto, st->owner);
  ASSERT_TRUE(applied.ok()) << applied.status().message();
  EXPECT_EQ(applied->skipped, 0u);
  EXPECT_EQ(DigestOf(*b_->lib, alpha_), DigestOf(*a_->lib, alpha_));
  EXPECT_EQ((*b_->lib->GetWatermark(st->owner))->seq, upto);
}

TEST_F(SnapshotTest, ReplicaExportStopsAtTheWatermark) {
  std::string file = Snap("alpha.snap");
  auto info = ExportSnapshot(*a_->lib, a_->lib->local_device(), file);
  ASSERT_TRUE(info.ok());
  auto st = ImportSnapshot(*b_->lib, file, std::nullopt);
  ASSERT_TRUE(st.ok());
  std::string at_snapshot = DigestOf(*a_->lib, alpha_);
  // Beta receives later rows without the watermark advancing (a batch that
  // arrived out of order): they must not leak into its snapshot.
  auto more = MakeTree(1, 5, "late");
  ASSERT_TRUE(a_->tm->CommitChanges(loc1_, more).ok());
  std::vector<EntryRecord> delta;
  ASSERT_TRUE(a_->lib
                  ->ScanOwnerEntries(a_->lib->local_device(), info->max_seq, a_->lib->LocalDevice()->max_seq,
                                     0,
                                     [&](EntryRecord&& r) {
                                       delta.push_back(std::move(r));
                                       return true;
                                     })
                  .ok());
  auto rep = Replica::Make(*b_->lib);
  ASSERT_TRUE(rep->Apply(st->owner, info->epoch, {}, delta, std::nullopt, st->owner).ok());
  std::string relay = Snap("relay.snap");
  auto r = ExportSnapshot(*b_->lib, st->owner, relay);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->max_seq, info->max_seq);
  EXPECT_EQ(r->entries, info->entries);
  ASSERT_TRUE(ImportSnapshot(*c_->lib, relay, r->sha256).ok());
  EXPECT_EQ(DigestOf(*c_->lib, alpha_), at_snapshot);
  EXPECT_NE(DigestOf(*b_->lib, alpha_), at_snapshot);
  // An owner this library never synced has nothing to export.
  Device stranger(tmp_, "delta", a_->lib->library_id());
  auto id = b_->lib->EnsureDevice(stranger.lib->LocalDevice()->uuid, "delta");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(ExportSnapshot(*b_->lib, *id, Snap("none.snap")).status().code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(Snap("none.snap.tmp")));
}

}  // namespace
}  // namespace entrysync
