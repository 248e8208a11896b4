#include "sync/reader.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <set>
#include <thread>

#include "base/test_util.h"

namespace entrysync {
namespace {

std::string ThreadName() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

class ReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lib = Library::Create(dir_.path(), "alpha", std::nullopt);
    ASSERT_TRUE(lib.ok()) << lib.status().message();
    lib_ = std::move(*lib);
  }
  // Runs the loop's handlers as they come until `pred` holds (at most 10 s).
  bool PollUntil(const std::function<bool()>& pred) {
    auto work = asio::make_work_guard(io_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred() && std::chrono::steady_clock::now() < deadline) io_.run_one_until(deadline);
    return pred();
  }
  testing::TempDir dir_;
  std::unique_ptr<Library> lib_;
  asio::io_context io_;
};

struct Seen {
  std::string job_thread;
  std::thread::id job_id;
  std::string local_name;
};

TEST_F(ReaderTest, JobsRunOnTheLaneThreadsAndCompleteOnTheLoop) {
  auto reader = Reader::Start(dir_.path(), io_.get_executor(), /*threads=*/true);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  auto alive = std::make_shared<int>(0);
  std::vector<Seen> got;
  std::vector<std::thread::id> done_on;
  for (Reader::Lane lane : {Reader::Lane::kServe, Reader::Lane::kExport})
    (*reader)->Run<Seen>(
        lane, alive,
        [](Library& lib) {
          return Seen{ThreadName(), std::this_thread::get_id(), lib.LocalDevice()->name};
        },
        [&](Seen s) {
          got.push_back(s);
          done_on.push_back(std::this_thread::get_id());
        });
  ASSERT_TRUE(PollUntil([&] { return got.size() == 2; }));
  // The two lanes run on two threads: either may complete first.
  std::set<std::string> threads{got[0].job_thread, got[1].job_thread};
  EXPECT_EQ(threads, (std::set<std::string>{"es-read", "es-export"}));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NE(got[i].job_id, std::this_thread::get_id());
    EXPECT_EQ(done_on[i], std::this_thread::get_id());  // the loop: the thread polling it
    EXPECT_EQ(got[i].local_name, "alpha");
  }
}

TEST_F(ReaderTest, ServeLaneSeesCommitsAndRefusesWrites) {
  auto reader = Reader::Start(dir_.path(), io_.get_executor(), /*threads=*/true);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  ASSERT_TRUE(lib_->SetEpoch(lib_->local_device(), Epoch(5)).ok());
  auto alive = std::make_shared<int>(0);
  std::optional<std::pair<Epoch, Status>> got;
  (*reader)->Run<std::pair<Epoch, Status>>(
      Reader::Lane::kServe, alive,
      [](Library& lib) {
        Epoch seen = lib.LocalDevice()->epoch;
        return std::make_pair(seen, lib.SetEpoch(lib.local_device(), Epoch(6)));
      },
      [&](std::pair<Epoch, Status> r) { got = r; });
  ASSERT_TRUE(PollUntil([&] { return got.has_value(); }));
  EXPECT_EQ(got->first, Epoch(5));
  EXPECT_FALSE(got->second.ok());
  EXPECT_EQ(lib_->LocalDevice()->epoch, Epoch(5));
}

TEST_F(ReaderTest, CompletionIsDroppedOnceItsAskerIsGone) {
  auto reader = Reader::Start(dir_.path(), io_.get_executor(), /*threads=*/true);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  auto alive = std::make_shared<int>(0);
  std::atomic<bool> ran{false};
  bool done = false;
  (*reader)->Run<int>(
      Reader::Lane::kServe, alive,
      [&](Library&) {
        ran = true;
        return 1;
      },
      [&](int) { done = true; });
  alive.reset();  // the session ends while its read runs
  // A second job's completion tells that the first one's was posted.
  auto other = std::make_shared<int>(0);
  bool second = false;
  (*reader)->Run<int>(
      Reader::Lane::kServe, other, [](Library&) { return 2; }, [&](int) { second = true; });
  ASSERT_TRUE(PollUntil([&] { return second; }));
  EXPECT_TRUE(ran.load());
  EXPECT_FALSE(done);
}

TEST_F(ReaderTest, WithoutThreadsJobsRunOnTheLoopInTheOrderPosted) {
  auto reader = Reader::Start(dir_.path(), io_.get_executor(), /*threads=*/false);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  auto alive = std::make_shared<int>(0);
  std::vector<int> order;
  std::vector<std::thread::id> ran_on;
  for (int i = 0; i < 3; ++i)
    (*reader)->Run<int>(
        i == 1 ? Reader::Lane::kExport : Reader::Lane::kServe, alive,
        [&, i](Library&) {
          ran_on.push_back(std::this_thread::get_id());
          return i;
        },
        [&](int v) { order.push_back(v); });
  EXPECT_TRUE(order.empty());  // nothing runs inline
  io_.poll();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  for (auto id : ran_on) EXPECT_EQ(id, std::this_thread::get_id());
}

TEST_F(ReaderTest, JobsQueuedOnTheLoopAfterTheReaderIsGoneAreDropped) {
  auto reader = Reader::Start(dir_.path(), io_.get_executor(), /*threads=*/false);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  bool ran = false;
  (*reader)->Post(Reader::Lane::kServe, [&](Library&) { ran = true; });
  reader->reset();
  io_.poll();
  EXPECT_FALSE(ran);
}

TEST_F(ReaderTest, MissingLibraryFailsToStart) {
  auto reader = Reader::Start(dir_.Sub("nothing"), io_.get_executor(), /*threads=*/true);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace entrysync
