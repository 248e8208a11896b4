#include "store/library.h"

#include <gtest/gtest.h>

#include "base/event_bus.h"
#include "base/test_util.h"
#include "store/replica.h"
#include "store/transaction_manager.h"

namespace entrysync {
namespace {

using testing::TempDir;

EntryRecord MakeEntry(const Uuid& parent, const std::string& name) {
  EntryRecord e;
  e.uuid = NewUuidV7();
  e.parent = parent;
  e.name = name;
  e.kind = EntryKind::kFile;
  e.size = 42;
  e.inode = 7;
  e.modified_ns = 1'700'000'000'000'000'000;
  return e;
}

TEST(LibraryTest, CreateThenOpen) {
  TempDir dir;
  Uuid lib_id;
  {
    auto lib = Library::Create(dir.path(), "laptop", std::nullopt);
    ASSERT_TRUE(lib.ok()) << lib.status().message();
    lib_id = (*lib)->library_id();
    EXPECT_EQ((*lib)->schema_version(), Library::kSchemaVersion);
  }
  auto lib = Library::Open(dir.path());
  ASSERT_TRUE(lib.ok()) << lib.status().message();
  EXPECT_EQ((*lib)->library_id(), lib_id);
  auto local = (*lib)->LocalDevice();
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->name, "laptop");
  EXPECT_TRUE(local->is_local);
  EXPECT_NE(local->epoch.value(), 0u);
}

TEST(LibraryTest, CreateTwiceFailsAndKeepsLibrary) {
  TempDir dir;
  ASSERT_TRUE(Library::Create(dir.path(), "a", std::nullopt).ok());
  auto again = Library::Create(dir.path(), "b", std::nullopt);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  auto lib = Library::Open(dir.path());
  ASSERT_TRUE(lib.ok());
  EXPECT_EQ((*lib)->LocalDevice()->name, "a");
}

TEST(LibraryTest, JoinKeepsLibraryId) {
  TempDir a, b;
  auto la = Library::Create(a.path(), "a", std::nullopt);
  ASSERT_TRUE(la.ok());
  auto lb = Library::Create(b.path(), "b", (*la)->library_id());
  ASSERT_TRUE(lb.ok());
  EXPECT_EQ((*la)->library_id(), (*lb)->library_id());
  EXPECT_NE((*la)->LocalDevice()->uuid, (*lb)->LocalDevice()->uuid);
}

TEST(LibraryTest, OpenMissingIsNotFound) {
  TempDir dir;
  auto lib = Library::Open(dir.Sub("nothing"));
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.status().code(), Code::kNotFound);
}

TEST(LibraryTest, ReadingConnectionSeesCommitsAndRefusesWrites) {
  TempDir dir;
  auto writer = Library::Create(dir.path(), "a", std::nullopt);
  ASSERT_TRUE(writer.ok());
  auto reader = Library::OpenForReading(dir.path());
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  EXPECT_EQ((*reader)->library_id(), (*writer)->library_id());
  // A commit of the writer is visible to the reader's next statement.
  ASSERT_TRUE((*writer)->SetEpoch((*writer)->local_device(), Epoch(77)).ok());
  auto me = (*reader)->LocalDevice();
  ASSERT_TRUE(me.ok());
  EXPECT_EQ(me->epoch, Epoch(77));
  Status w = (*reader)->SetEpoch((*reader)->local_device(), Epoch(78));
  EXPECT_FALSE(w.ok());
  EXPECT_EQ((*writer)->LocalDevice()->epoch, Epoch(77));
}

TEST(LibraryTest, ReadingConnectionDoesNotMigrate) {
  TempDir dir;
  {
    auto lib = Library::Create(dir.path(), "a", std::nullopt);
    ASSERT_TRUE(lib.ok());
    ASSERT_TRUE((*lib)->db().Exec("PRAGMA user_version = 1").ok());
  }
  auto lib = Library::OpenForReading(dir.path());
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.status().code(), Code::kInvalidArgument) << lib.status().message();
  EXPECT_EQ(Library::OpenForReading(dir.Sub("nothing")).status().code(), Code::kNotFound);
}

TEST(LibraryTest, NewerSchemaIsRefused) {
  TempDir dir;
  {
    auto lib = Library::Create(dir.path(), "a", std::nullopt);
    ASSERT_TRUE(lib.ok());
    ASSERT_TRUE((*lib)->db().Exec("PRAGMA user_version = 999").ok());
  }
  auto lib = Library::Open(dir.path());
  ASSERT_FALSE(lib.ok());
  EXPECT_NE(lib.status().message().find("newer"), std::string::npos);
}

TEST(LibraryTest, MigratesFromVersionZero) {
  // A library whose schema was never applied (user_version 0, empty file)
  // is brought to the current version by Open.
  TempDir dir;
  {
    auto db = store::Db::Open(dir.Sub("library.db"), true);
    ASSERT_TRUE(db.ok());
  }
  auto lib = Library::Open(dir.path());
  // Migration succeeds, but there is no metadata: reported as corruption.
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.status().code(), Code::kCorruption);
  auto db = store::Db::Open(dir.Sub("library.db"), false);
  ASSERT_TRUE(db.ok());
  auto st = db->Prepare("PRAGMA user_version");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(*st->Step());
  EXPECT_EQ(st->Int(0), Library::kSchemaVersion);
}

// An owner first known through a relay keeps its row (and its rows) when
// it is paired later: the pairing lands on the row its key derives.
TEST(LibraryTest, PairingAnOwnerKnownThroughARelayKeepsItsRow) {
  TempDir dir;
  auto lib = Library::Create(dir.path(), "a", std::nullopt);
  ASSERT_TRUE(lib.ok());
  DeviceId id;
  id.bytes[5] = 9;
  auto relayed = (*lib)->EnsureDevice(OwnerUuidOf(id), "c");
  ASSERT_TRUE(relayed.ok());
  auto paired = (*lib)->AddPeer("c", id, "");
  ASSERT_TRUE(paired.ok());
  EXPECT_EQ(*paired, *relayed);
}

TEST(LibraryTest, PeersArePairedAndUnpaired) {
  TempDir dir;
  auto lib = Library::Create(dir.path(), "a", std::nullopt);
  ASSERT_TRUE(lib.ok());
  DeviceId id;
  id.bytes[0] = 1;
  auto row = (*lib)->AddPeer("desk", id, "127.0.0.1:7000");
  ASSERT_TRUE(row.ok()) << row.status().message();
  auto d = (*lib)->FindDeviceById(id);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->trusted);
  EXPECT_EQ(d->addr, "127.0.0.1:7000");
  // The peer's owner uuid is its key's, from the moment it is paired.
  EXPECT_EQ(d->uuid, OwnerUuidOf(id));
  EXPECT_EQ((*lib)->FindDeviceByUuid(OwnerUuidOf(id))->id, *row);
  ASSERT_TRUE((*lib)->RemovePeer("desk").ok());
  EXPECT_FALSE((*lib)->FindDeviceById(id)->trusted);
  EXPECT_TRUE((*lib)->FindDeviceById(id)->revoked);
  // Pairing again is the user's choice: it lifts the revocation.
  ASSERT_TRUE((*lib)->AddPeer("desk", id, "").ok());
  EXPECT_FALSE((*lib)->FindDeviceById(id)->revoked);
  EXPECT_EQ((*lib)->FindDeviceById(id)->addr, "127.0.0.1:7000");
  EXPECT_EQ((*lib)->RemovePeer("nobody").code(), Code::kNotFound);
  EXPECT_EQ((*lib)->RemovePeer("a").code(), Code::kInvalidArgument);
}

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lib = Library::Create(dir_.path(), "me", std::nullopt);
    ASSERT_TRUE(lib.ok());
    lib_ = std::move(*lib);
    auto owner = lib_->EnsureDevice(NewUuidV4(), "other");
    ASSERT_TRUE(owner.ok());
    owner_ = *owner;
    loc_ = LocationRecord{NewUuidV7(), "/data", "data", Seq(1), false};
  }
  TempDir dir_;
  std::unique_ptr<Library> lib_;
  DeviceRowId owner_;
  LocationRecord loc_;
};

TEST_F(ReplicaTest, AppliesWithWatermarkAndSkipsReplays) {
  auto rep = Replica::Make(*lib_);
  ASSERT_TRUE(rep.ok());
  std::vector<EntryRecord> rows;
  for (int i = 0; i < 10; ++i) {
    rows.push_back(MakeEntry(Uuid::Nil(), "f" + std::to_string(i)));
    rows.back().location = loc_.uuid;
    rows.back().seq = Seq(2 + i);
  }
  std::vector<LocationRecord> locs{loc_};
  auto s = rep->Apply(owner_, Epoch(5), locs, rows, Seq(11), owner_);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->written, 11u);
  auto again = rep->Apply(owner_, Epoch(5), locs, rows, Seq(11), owner_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->written, 0u);
  EXPECT_EQ(again->skipped, 11u);
  auto wm = lib_->GetWatermark(owner_);
  ASSERT_TRUE(wm.ok() && wm->has_value());
  EXPECT_EQ((*wm)->seq, Seq(11));
  EXPECT_EQ(*lib_->RowsAppliedTotal(), 11u);  // the replay wrote nothing
  // An older version of a row never overwrites a newer one.
  EntryRecord old = rows[0];
  old.name = "stale";
  old.seq = Seq(1);
  ASSERT_TRUE(rep->Apply(owner_, Epoch(5), {}, std::span(&old, 1), std::nullopt, owner_).ok());
  EXPECT_EQ((*lib_->FindEntry(rows[0].uuid))->name, "f0");
}

TEST_F(ReplicaTest, WrongEpochChangesNothingAndResetDropsRows) {
  auto rep = Replica::Make(*lib_);
  ASSERT_TRUE(rep.ok());
  EntryRecord e = MakeEntry(Uuid::Nil(), "x");
  e.location = loc_.uuid;
  e.seq = Seq(2);
  std::vector<LocationRecord> locs{loc_};
  ASSERT_TRUE(rep->Apply(owner_, Epoch(5), locs, std::span(&e, 1), Seq(2), owner_).ok());
  EntryRecord e2 = MakeEntry(Uuid::Nil(), "y");
  e2.location = loc_.uuid;
  e2.seq = Seq(3);
  auto bad = rep->Apply(owner_, Epoch(6), {}, std::span(&e2, 1), Seq(3), owner_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(*lib_->CountEntries(owner_, true), 1u);
  ASSERT_TRUE(rep->ResetOwner(owner_, Epoch(6)).ok());
  EXPECT_EQ(*lib_->CountEntries(owner_, true), 0u);
  EXPECT_EQ((*lib_->GetWatermark(owner_))->epoch, Epoch(6));
  EXPECT_EQ((*lib_->GetWatermark(owner_))->seq, Seq(0));
}

TEST_F(ReplicaTest, UnknownLocationIsRefusedAtomically) {
  auto rep = Replica::Make(*lib_);
  ASSERT_TRUE(rep.ok());
  std::vector<EntryRecord> rows(2, MakeEntry(Uuid::Nil(), "a"));
  rows[0].location = loc_.uuid;
  rows[1].uuid = NewUuidV7();
  rows[1].location = NewUuidV7();  // unknown
  std::vector<LocationRecord> locs{loc_};
  auto r = rep->Apply(owner_, Epoch(1), locs, rows, Seq(3), owner_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(*lib_->CountEntries(owner_, true), 0u);
  EXPECT_FALSE(lib_->GetWatermark(owner_)->has_value());
}

// A peer's rows that reuse the uuids of this device's own location and
// entry (found by fuzz/session_fuzzer.cc): the upserts used to move those
// rows to the peer's owner. A row belongs to one owner for good: the own
// rows stay as they were, and an entry of the peer in the location of
// another owner is refused, atomically.
TEST_F(ReplicaTest, RowsOfAnotherOwnerAreNeverTakenOver) {
  EventBus bus;
  TransactionManager tm(*lib_, bus);
  auto mine = tm.AddLocation("/home/me", "home");
  ASSERT_TRUE(mine.ok()) << mine.status().message();
  std::vector<EntryRecord> own{MakeEntry(Uuid::Nil(), "home")};
  own[0].location = mine->record.uuid;
  ASSERT_TRUE(tm.CommitBulkEntries(*mine, own).ok());
  const Seq own_seq = own[0].seq;

  auto rep = Replica::Make(*lib_);
  ASSERT_TRUE(rep.ok());
  LocationRecord taken = loc_;
  taken.uuid = mine->record.uuid;  // this device's location
  taken.root_path = "/peer";
  taken.seq = Seq(100);
  EntryRecord stolen = MakeEntry(Uuid::Nil(), "stolen");
  stolen.uuid = own[0].uuid;  // this device's entry
  stolen.location = loc_.uuid;
  stolen.seq = Seq(101);
  std::vector<LocationRecord> locs{loc_, taken};
  auto applied = rep->Apply(owner_, Epoch(5), locs, std::span(&stolen, 1), Seq(101), owner_);
  ASSERT_TRUE(applied.ok()) << applied.status().message();
  EXPECT_EQ(applied->written, 1u);  // loc_ only
  EXPECT_EQ(applied->skipped, 2u);
  auto entry = lib_->FindEntry(own[0].uuid);
  ASSERT_TRUE(entry.ok() && entry->has_value());
  EXPECT_EQ((*entry)->name, "home");
  EXPECT_EQ((*entry)->seq, own_seq);
  EXPECT_EQ(*lib_->CountEntries(lib_->local_device(), true), 1u);
  EXPECT_EQ(*lib_->CountEntries(owner_, true), 0u);
  auto where = lib_->FindLocationByUuid(mine->record.uuid);
  ASSERT_TRUE(where.ok()) << where.status().message();
  EXPECT_EQ(where->owner, lib_->local_device());
  EXPECT_EQ(where->record.root_path, "/home/me");

  EntryRecord astray = MakeEntry(Uuid::Nil(), "astray");
  astray.location = mine->record.uuid;  // a location of this device, not the peer's
  astray.seq = Seq(102);
  auto refused = rep->Apply(owner_, Epoch(5), {}, std::span(&astray, 1), Seq(102), owner_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(lib_->FindEntry(astray.uuid)->has_value());
  EXPECT_EQ((*lib_->GetWatermark(owner_))->seq, Seq(101));
}

}  // namespace
}  // namespace entrysync
