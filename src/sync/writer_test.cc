// LibraryWriter: jobs in order on its own thread, advances announced, the
// epoch rules of an apply, a deterministic stop. Real SQLite files.
#include "sync/writer.h"

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <thread>

#include "base/test_util.h"

namespace entrysync {
namespace {

using Rule = ApplyJob::OnOtherEpoch;

class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = Library::Create(dir_.path(), "here", std::nullopt);
    ASSERT_TRUE(l.ok()) << l.status().message();
    lib_ = std::move(*l);
    peer_ = NewUuidV7();
    location_.uuid = NewUuidV7();
    location_.root_path = "/data";
    location_.name = "data";
    location_.seq = Seq(1);
  }

  // `n` entries of the peer's location with seqs first..first+n-1.
  std::vector<EntryRecord> Rows(int64_t first, int n) {
    std::vector<EntryRecord> rows(n);
    for (int i = 0; i < n; ++i) {
      rows[i].uuid = NewUuidV7();
      rows[i].parent = Uuid::Nil();
      rows[i].location = location_.uuid;
      rows[i].name = "f" + std::to_string(first + i);
      rows[i].seq = Seq(first + i);
    }
    return rows;
  }

  ApplyJob Job(Epoch epoch, Rule rule, int64_t from, std::vector<EntryRecord> rows, std::optional<Seq> to) {
    ApplyJob j;
    j.owner = peer_;
    j.owner_name = "peer";
    j.epoch = epoch;
    j.on_other_epoch = rule;
    j.from = Seq(from);
    j.entries = std::move(rows);
    j.advance_to = to;
    return j;
  }

  // Runs the loop (this thread) until `n` completions ran: each run_one
  // waits for the next handler.
  void RunUntilDone(size_t n) {
    auto work = asio::make_work_guard(io_);
    while (results_.size() < n) io_.run_one();
  }
  LibraryWriter::Done Record() {
    return [this](Result<WriteOutcome> r) {
      EXPECT_EQ(std::this_thread::get_id(), loop_thread_) << "completions run on the loop";
      results_.push_back(std::move(r));
    };
  }

  testing::TempDir dir_;
  std::unique_ptr<Library> lib_;  // the test's own reading connection
  Uuid peer_;
  LocationRecord location_;
  asio::io_context io_;
  const std::thread::id loop_thread_ = std::this_thread::get_id();
  std::vector<Result<WriteOutcome>> results_;
  std::vector<OwnerPosition> advances_;
};

TEST_F(WriterTest, RunsJobsInOrderOnItsThreadAndAnnouncesEachAdvance) {
  LibraryWriter w(io_.get_executor());
  ASSERT_TRUE(w.Start(dir_.path(), false, [&](const OwnerPosition& p) { advances_.push_back(p); }).ok());
  std::thread::id job_thread;
  w.Post(
      WriteTarget::Owner(peer_),
      [&](Library&) -> Result<WriteOutcome> {
        job_thread = std::this_thread::get_id();
        return WriteOutcome{};
      },
      Record());
  ApplyJob first = Job(Epoch(7), Rule::kResetFromZero, 0, Rows(2, 999), Seq(1000));
  first.locations.push_back(location_);
  w.ApplyRows(std::move(first), Record());
  w.ApplyRows(Job(Epoch(7), Rule::kFail, 1000, Rows(1001, 1000), Seq(2000)), Record());
  w.ApplyRows(Job(Epoch(7), Rule::kFail, 2000, Rows(2001, 1000), Seq(3000)), Record());
  RunUntilDone(4);
  EXPECT_NE(job_thread, loop_thread_);
  for (const auto& r : results_) ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(results_[1]->written, 1000u);  // the location and 999 entries
  EXPECT_EQ(results_[3]->written, 1000u);
  ASSERT_EQ(advances_.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(advances_[i].owner, peer_);
    EXPECT_EQ(advances_[i].epoch, Epoch(7));
    EXPECT_EQ(advances_[i].seq, Seq(1000 * (i + 1)));
  }
  // The reading connection sees what a completed job committed.
  auto dev = lib_->FindDeviceByUuid(peer_);
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(dev->name, "peer");
  EXPECT_EQ(*lib_->CountEntries(dev->id, true), 2999u);
  EXPECT_EQ((*lib_->GetWatermark(dev->id))->seq, Seq(3000));
  w.Stop();
}

TEST_F(WriterTest, AppliesTheEpochRules) {
  LibraryWriter w(io_.get_executor());
  ASSERT_TRUE(w.Start(dir_.path(), false, [&](const OwnerPosition& p) { advances_.push_back(p); }).ok());
  ApplyJob first = Job(Epoch(1), Rule::kResetFromZero, 0, Rows(2, 9), Seq(10));
  first.locations.push_back(location_);
  w.ApplyRows(std::move(first), Record());
  // Epoch 2 while the replica holds epoch 1:
  w.ApplyRows(Job(Epoch(2), Rule::kSkip, 0, Rows(1, 1), std::nullopt), Record());  // a stale push
  w.ApplyRows(Job(Epoch(2), Rule::kFail, 0, Rows(1, 1), Seq(1)), Record());
  w.ApplyRows(Job(Epoch(2), Rule::kResetFromZero, 5, {}, Seq(6)), Record());
  w.ApplyRows(Job(Epoch(2), Rule::kResetFromZero, 0, {}, Seq(0)), Record());
  RunUntilDone(5);
  ASSERT_TRUE(results_[0].ok()) << results_[0].status().message();
  ASSERT_TRUE(results_[1].ok());
  EXPECT_EQ(results_[1]->written, 0u);
  EXPECT_EQ(results_[1]->skipped, 1u);
  EXPECT_FALSE(results_[1]->advanced);
  ASSERT_FALSE(results_[2].ok());
  EXPECT_EQ(results_[2].status().code(), Code::kProtocol);
  EXPECT_NE(results_[2].status().message().find("owner " + peer_.ToString().substr(0, 8)), std::string::npos)
      << results_[2].status().message();
  ASSERT_FALSE(results_[3].ok());
  EXPECT_NE(results_[3].status().message().find("must start from seq 0"), std::string::npos);
  // The reset: the old epoch's rows are gone, the watermark is (2, 0).
  ASSERT_TRUE(results_[4].ok()) << results_[4].status().message();
  ASSERT_EQ(advances_.size(), 2u);
  EXPECT_EQ(advances_[1].epoch, Epoch(2));
  EXPECT_EQ(advances_[1].seq, Seq(0));
  auto dev = lib_->FindDeviceByUuid(peer_);
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(*lib_->CountEntries(dev->id, true), 0u);
  w.Stop();
}

// Inline on the loop (the simulation's seam): jobs posted before Stop never
// run, their completions hear Aborted, and no advance is announced.
TEST_F(WriterTest, StopDropsTheJobsNotStarted) {
  LibraryWriter w(io_.get_executor(), io_.get_executor());
  ASSERT_TRUE(w.Start(dir_.path(), false, [&](const OwnerPosition& p) { advances_.push_back(p); }).ok());
  int ran = 0;
  for (int i = 0; i < 3; ++i)
    w.Post(
        WriteTarget::LibraryTables(),
        [&](Library&) -> Result<WriteOutcome> {
          ++ran;
          return WriteOutcome{};
        },
        Record());
  w.Stop();
  w.ApplyRows(Job(Epoch(1), Rule::kResetFromZero, 0, Rows(1, 1), Seq(1)), Record());
  RunUntilDone(4);
  EXPECT_EQ(ran, 0);
  for (const auto& r : results_) EXPECT_EQ(r.status().code(), Code::kAborted);
  // The one posted after Stop completes first: it never reached the queue.
  EXPECT_NE(results_[0].status().message().find("owner " + peer_.ToString().substr(0, 8)), std::string::npos);
  EXPECT_NE(results_[1].status().message().find("the library's tables"), std::string::npos)
      << results_[1].status().message();
  EXPECT_TRUE(advances_.empty());
}

// With its own thread: a writer destroyed with jobs queued finishes or drops
// each of them; every completion still runs on the loop, exactly once.
TEST_F(WriterTest, DestroyedWithJobsQueuedCompletesEachOnce) {
  constexpr size_t kJobs = 50;
  {
    LibraryWriter w(io_.get_executor());
    ASSERT_TRUE(w.Start(dir_.path(), false, [&](const OwnerPosition& p) { advances_.push_back(p); }).ok());
    ApplyJob first = Job(Epoch(1), Rule::kResetFromZero, 0, Rows(2, 9), Seq(10));
    first.locations.push_back(location_);
    w.ApplyRows(std::move(first), Record());
    for (size_t i = 1; i < kJobs; ++i)
      w.ApplyRows(Job(Epoch(1), Rule::kFail, 10 * i, Rows(10 * i + 1, 10), Seq(10 * (i + 1))), Record());
  }
  RunUntilDone(kJobs);
  size_t ok = 0;
  for (const auto& r : results_) {
    if (r.ok()) {
      ++ok;
      continue;
    }
    EXPECT_EQ(r.status().code(), Code::kAborted) << r.status().message();
  }
  EXPECT_TRUE(advances_.empty()) << "no advance is announced once stopped";
  // What ran committed in order: the watermark is the last job that ran.
  auto dev = lib_->FindDeviceByUuid(peer_);
  if (ok > 0) {
    ASSERT_TRUE(dev.ok());
    EXPECT_EQ((*lib_->GetWatermark(dev->id))->seq, Seq(static_cast<int64_t>(10 * ok)));
  }
}

// A session's jobs in one chain: after one fails (here a batch of an epoch
// the replica does not hold; on a full disk, a batch that does not fit), the
// ones queued behind it write nothing, so its Current cannot move the
// watermark past the rows that were never written.
TEST_F(WriterTest, AfterAFailedWriteTheSessionsQueuedJobsWriteNothing) {
  LibraryWriter w(io_.get_executor());
  ASSERT_TRUE(w.Start(dir_.path(), false, [&](const OwnerPosition& p) { advances_.push_back(p); }).ok());
  auto chain = std::make_shared<std::atomic<bool>>(false);
  auto chained = [&](ApplyJob j) {
    j.chain_failed = chain;
    return j;
  };
  ApplyJob first = Job(Epoch(1), Rule::kResetFromZero, 0, Rows(2, 9), Seq(10));
  first.locations.push_back(location_);
  w.ApplyRows(chained(std::move(first)), Record());
  w.ApplyRows(chained(Job(Epoch(9), Rule::kFail, 10, Rows(11, 10), Seq(20))), Record());  // fails
  w.ApplyRows(chained(Job(Epoch(1), Rule::kFail, 20, Rows(21, 10), Seq(30))), Record());
  w.ApplyRows(chained(Job(Epoch(1), Rule::kFail, 10, {}, Seq(30))), Record());  // its Current
  w.ApplyRows(Job(Epoch(1), Rule::kFail, 10, Rows(11, 1), Seq(11)), Record());  // another chain
  RunUntilDone(5);
  ASSERT_TRUE(results_[0].ok()) << results_[0].status().message();
  EXPECT_EQ(results_[1].status().code(), Code::kProtocol);
  EXPECT_EQ(results_[2].status().code(), Code::kAborted) << results_[2].status().message();
  EXPECT_EQ(results_[3].status().code(), Code::kAborted) << results_[3].status().message();
  ASSERT_TRUE(results_[4].ok()) << results_[4].status().message();
  auto dev = lib_->FindDeviceByUuid(peer_);
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ((*lib_->GetWatermark(dev->id))->seq, Seq(11));
  EXPECT_EQ(*lib_->CountEntries(dev->id, true), 10u);
  w.Stop();
}

}  // namespace
}  // namespace entrysync
