// A downloaded snapshot through the library's writer: imported only when it
// is what the peer offered, its files removed once it is imported or
// refused; what a kill after an import leaves is removed at the next start.
// Real SQLite files.
#include "sync/snapshot_download.h"

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/event_bus.h"
#include "base/test_util.h"
#include "snapshot/snapshot.h"
#include "store/transaction_manager.h"
#include "sync/snapshot_cache.h"

namespace entrysync {
namespace {

namespace fs = std::filesystem;

class SnapshotDownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = Library::Create(tmp_.Sub("alpha"), "alpha", std::nullopt);
    ASSERT_TRUE(a.ok()) << a.status().message();
    alpha_ = std::move(*a);
    auto b = Library::Create(tmp_.Sub("beta"), "beta", alpha_->library_id());
    ASSERT_TRUE(b.ok()) << b.status().message();
    beta_ = std::move(*b);
    EventBus bus;
    TransactionManager tm(*alpha_, bus);
    auto loc = tm.AddLocation("/home/alpha", "home");
    ASSERT_TRUE(loc.ok());
    std::vector<EntryRecord> rows(50);
    for (size_t i = 0; i < rows.size(); ++i) {
      rows[i].uuid = NewUuidV7();
      rows[i].name = "f" + std::to_string(i);
    }
    ASSERT_TRUE(tm.CommitBulkEntries(*loc, rows).ok());
    owner_ = alpha_->LocalDevice()->uuid;
    snapshots_ = tmp_.Sub("beta/snapshots");
    fs::create_directories(snapshots_);
    part_ = snapshots_ + "/" + owner_.ToString() + ".part";
    offer_ = snapshots_ + "/" + owner_.ToString() + ".offer";
    auto info = ExportSnapshot(*alpha_, alpha_->local_device(), part_);
    ASSERT_TRUE(info.ok()) << info.status().message();
    info_ = *info;
    ASSERT_TRUE(WriteSmallFileAtomically(offer_, OfferLine(info_.epoch, info_.max_seq)).ok());
  }

  std::string OfferLine(Epoch epoch, Seq max_seq) const {
    return info_.sha256 + " " + std::to_string(info_.size_bytes) + " " + std::to_string(epoch.value()) + " " +
           std::to_string(max_seq.value()) + "\n";
  }

  // Imports part_ through a writer, as the puller does, with `offered`.
  Result<WriteOutcome> Import(SnapshotOffered offered) {
    asio::io_context io;
    LibraryWriter w(io.get_executor());
    EXPECT_TRUE(w.Start(beta_->dir(), false, nullptr).ok());
    std::optional<Result<WriteOutcome>> got;
    w.ImportSnapshotFile(
        SnapshotImportJob{owner_, part_, offer_, info_.sha256, DeviceRowId(0), offered, std::nullopt},
        [&](Result<WriteOutcome> r) { got = std::move(r); });
    auto work = asio::make_work_guard(io);
    while (!got) io.run_one();
    w.Stop();
    return std::move(*got);
  }

  std::optional<WatermarkInfo> BetaHolds() {
    auto dev = beta_->FindDeviceByUuid(owner_);
    if (!dev.ok()) return std::nullopt;
    return *beta_->GetWatermark(dev->id);
  }

  testing::TempDir tmp_;
  std::unique_ptr<Library> alpha_, beta_;
  Uuid owner_;
  SnapshotInfo info_;
  std::string snapshots_, part_, offer_;
};

TEST_F(SnapshotDownloadTest, AFileThatIsNotWhatWasOfferedIsRefusedAndRemoved) {
  uint64_t applied = *beta_->RowsAppliedTotal();
  auto r = Import(SnapshotOffered{owner_, info_.epoch, Seq(info_.max_seq.value() + 5), "alpha-peer"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << r.status().message();
  EXPECT_NE(r.status().message().find("alpha-peer offered"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  EXPECT_FALSE(ImportMayRetry(r.status()));
  EXPECT_FALSE(fs::exists(part_));
  EXPECT_FALSE(fs::exists(offer_));
  EXPECT_FALSE(BetaHolds());
  EXPECT_EQ(*beta_->RowsAppliedTotal(), applied);
}

TEST_F(SnapshotDownloadTest, AnOfferedFileIsImportedThenItsFilesGo) {
  auto r = Import(SnapshotOffered{owner_, info_.epoch, info_.max_seq, "alpha-peer"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->written, info_.entries + info_.locations);
  ASSERT_TRUE(r->advanced);
  EXPECT_EQ(r->advanced->seq, info_.max_seq);
  EXPECT_FALSE(fs::exists(part_));
  EXPECT_FALSE(fs::exists(offer_));
}

TEST_F(SnapshotDownloadTest, TransientFailuresAreTold) {
  EXPECT_TRUE(ImportMayRetry(IOError("import snapshot x: sqlite: database or disk is full")));
  EXPECT_TRUE(ImportMayRetry(IOError("sqlite: database is locked")));
  EXPECT_TRUE(ImportMayRetry(IOError("sqlite: disk I/O error")));
  EXPECT_TRUE(ImportMayRetry(IOError("cannot write x.part: No space left on device")));
  EXPECT_FALSE(ImportMayRetry(IOError("sqlite: UNIQUE constraint failed: entry.uuid")));
  EXPECT_FALSE(ImportMayRetry(Corruption("snapshot x: SHA-256 mismatch")));
  EXPECT_FALSE(ImportMayRetry(PermissionDenied("snapshot x belongs to library y")));
}

// A kill between the import's commit and the removal of its files: the
// next start removes them, and only them.
TEST_F(SnapshotDownloadTest, AStartRemovesWhatAFinishedImportLeft) {
  ASSERT_TRUE(ImportSnapshot(*beta_, part_, info_.sha256).ok());  // committed; files still there
  // Another owner's download under way (not covered), one of an older
  // format, a .part without its offer, a temporary offer.
  Uuid other = NewUuidV7(), old = NewUuidV7(), orphan = NewUuidV7();
  auto touch = [&](const Uuid& u, const std::string& ext, const std::string& text) {
    std::ofstream(snapshots_ + "/" + u.ToString() + ext) << text;
  };
  touch(other, ".part", "x");
  touch(other, ".offer", OfferLine(Epoch(3), Seq(10)));
  touch(old, ".part", "x");
  touch(old, ".offer", info_.sha256 + " 10\n");
  touch(orphan, ".part", "x");
  touch(orphan, ".offer.tmp", "x");
  std::ofstream(snapshots_ + "/serve-keep.db") << "x";  // not a download: left alone

  RemoveFinishedDownloads(*beta_, beta_->dir());
  std::set<std::string> left;
  for (const auto& f : fs::directory_iterator(snapshots_)) left.insert(f.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{other.ToString() + ".part", other.ToString() + ".offer",
                                         "serve-keep.db"}));

  // An offer of the owner above what the library holds stays.
  ASSERT_TRUE(WriteSmallFileAtomically(offer_, OfferLine(info_.epoch, Seq(info_.max_seq.value() + 1))).ok());
  RemoveFinishedDownloads(*beta_, beta_->dir());
  EXPECT_TRUE(fs::exists(offer_));
}

}  // namespace
}  // namespace entrysync
