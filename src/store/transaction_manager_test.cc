#include "store/transaction_manager.h"

#include <gtest/gtest.h>

#include "base/test_util.h"

namespace entrysync {
namespace {

using testing::TempDir;

struct Recorder {
  explicit Recorder(EventBus& bus) {
    bus.Subscribe([this](const Event& e) {
      if (std::holds_alternative<BulkIndexComplete>(e))
        bulk.push_back(std::get<BulkIndexComplete>(e));
      else
        changes.push_back(std::get<StateChange>(e));
    });
  }
  std::vector<BulkIndexComplete> bulk;
  std::vector<StateChange> changes;
};

class TransactionManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lib = Library::Create(dir_.path(), "me", std::nullopt);
    ASSERT_TRUE(lib.ok());
    lib_ = std::move(*lib);
    tm_ = std::make_unique<TransactionManager>(*lib_, bus_);
    auto loc = tm_->AddLocation("/data", "data");
    ASSERT_TRUE(loc.ok()) << loc.status().message();
    loc_ = *loc;
  }
  std::vector<EntryRecord> Make(int n) {
    std::vector<EntryRecord> v(n);
    for (int i = 0; i < n; ++i) {
      v[i].uuid = NewUuidV7();
      v[i].name = "f" + std::to_string(i);
    }
    return v;
  }
  TempDir dir_;
  std::unique_ptr<Library> lib_;
  EventBus bus_;
  std::unique_ptr<TransactionManager> tm_;
  LocationInfo loc_;
};

TEST_F(TransactionManagerTest, BulkCommitEmitsExactlyOneEvent) {
  Recorder rec(bus_);
  auto rows = Make(5000);
  auto ev = tm_->CommitBulkEntries(loc_, rows);
  ASSERT_TRUE(ev.ok()) << ev.status().message();
  ASSERT_EQ(rec.bulk.size(), 1u);
  EXPECT_TRUE(rec.changes.empty());
  EXPECT_EQ(rec.bulk[0].entry_count, 5000u);
  EXPECT_EQ(rec.bulk[0].location, loc_.record.uuid);
  EXPECT_EQ(rec.bulk[0].owner, lib_->LocalDevice()->uuid);
  // The location took seq 1; entries take 2..5001 in order.
  EXPECT_EQ(rec.bulk[0].max_seq, Seq(5001));
  EXPECT_EQ(rows.front().seq, Seq(2));
  EXPECT_EQ(rows.back().seq, Seq(5001));
  EXPECT_EQ(*lib_->CountEntries(lib_->local_device(), false), 5000u);
}

TEST_F(TransactionManagerTest, SmallCommitEmitsOneStateChangePerRow) {
  Recorder rec(bus_);
  auto rows = Make(3);
  auto seq = tm_->CommitChanges(loc_, rows);
  ASSERT_TRUE(seq.ok());
  EXPECT_TRUE(rec.bulk.empty());
  ASSERT_EQ(rec.changes.size(), 3u);
  EXPECT_EQ(rec.changes[2].record.seq, *seq);
}

TEST_F(TransactionManagerTest, SeqIsMonotonicAcrossCommitsIncludingDeletes) {
  auto rows = Make(10);
  ASSERT_TRUE(tm_->CommitBulkEntries(loc_, rows).ok());
  Seq before = rows.back().seq;
  // Tombstone one row and modify another: both take new seqs, the row stays.
  std::vector<EntryRecord> change{rows[3], rows[4]};
  change[0].deleted = true;
  change[1].size = 99;
  auto last = tm_->CommitChanges(loc_, change);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(change[0].seq, before.next());
  EXPECT_EQ(*last, before.next().next());
  auto dead = lib_->FindEntry(rows[3].uuid);
  ASSERT_TRUE(dead.ok() && dead->has_value());
  EXPECT_TRUE((*dead)->deleted);
  EXPECT_EQ(*lib_->CountEntries(lib_->local_device(), false), 9u);
  EXPECT_EQ(*lib_->CountEntries(lib_->local_device(), true), 10u);
  // Changes after `before` are exactly the two rows, tombstone included.
  std::vector<EntryRecord> seen;
  ASSERT_TRUE(lib_->ScanOwnerEntries(lib_->local_device(), before, Seq(1 << 30), 0,
                                     [&](EntryRecord&& e) {
                                       seen.push_back(e);
                                       return true;
                                     })
                  .ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0].deleted);
  EXPECT_EQ(lib_->LocalDevice()->max_seq, *last);
}

TEST_F(TransactionManagerTest, FailedCommitStoresNothingAndPublishesNothing) {
  Recorder rec(bus_);
  auto rows = Make(3);
  rows[2].uuid = rows[0].uuid;  // duplicate uuid is an upsert, so force a real error instead:
  LocationInfo bogus = loc_;
  bogus.record.uuid = NewUuidV7();  // unknown location
  auto r = tm_->CommitBulkEntries(bogus, rows);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(rec.bulk.empty());
  EXPECT_EQ(*lib_->CountEntries(lib_->local_device(), true), 0u);
  EXPECT_EQ(lib_->LocalDevice()->max_seq, Seq(1));
}

}  // namespace
}  // namespace entrysync
