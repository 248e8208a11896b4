// TokenBucket arithmetic, and RateLimiter's waiters on a manual clock.
#include "sync/rate_limiter.h"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace entrysync {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucketTest, DefaultBurstIs64KiBOrAQuarterSecond) {
  EXPECT_EQ(TokenBucket::DefaultBurst(10'000), 64u << 10);
  EXPECT_EQ(TokenBucket::DefaultBurst(262'144), 64u << 10);
  EXPECT_EQ(TokenBucket::DefaultBurst(10'000'000), 2'500'000u);
}

TEST(TokenBucketTest, StartsFullAndAUnitMayGoIntoDebt) {
  TokenBucket b(1000, 500);
  EXPECT_DOUBLE_EQ(b.Level(100), 500);
  EXPECT_TRUE(b.Ready(100));
  b.Take(2000, 100);  // larger than the burst: it goes, and is paid for after
  EXPECT_DOUBLE_EQ(b.Level(100), -1500);
  EXPECT_FALSE(b.Ready(100));
  EXPECT_DOUBLE_EQ(b.ReadyAt(100), 101.5);
  EXPECT_FALSE(b.Ready(101.4));
  EXPECT_TRUE(b.Ready(101.5));
  EXPECT_DOUBLE_EQ(b.ReadyAt(102), 102);
}

// The bug a lifetime average had: idle time is not banked beyond the burst.
TEST(TokenBucketTest, IdlingFillsNoFurtherThanTheBurst) {
  TokenBucket b(10'000, 64 << 10);
  b.Take(64 << 10, 1000);
  EXPECT_DOUBLE_EQ(b.Level(1000), 0);
  EXPECT_DOUBLE_EQ(b.Level(1060), 64 << 10);  // a minute idle: one burst, not 600 KB
  // 210 KB right after: the first 64 KiB go at once, the rest at the rate.
  double now = 1060;
  uint64_t sent = 0;
  while (sent < 210'000) {
    now = b.ReadyAt(now);
    b.Take(10'000, now);
    sent += 10'000;
  }
  // The last unit went when the bytes before it, beyond the burst, were paid for.
  EXPECT_NEAR(now - 1060, (200'000.0 - (64 << 10)) / 10'000, 1e-9);
}

TEST(TokenBucketTest, LongRunRateHoldsWhateverTheUnits) {
  TokenBucket b(50'000, 64 << 10);
  double now = 0.5;
  uint64_t sent = 0;
  const uint64_t sizes[] = {1'000, 70'000, 3'000, 200'000, 12'345};
  for (int i = 0; i < 200; ++i) {
    now = b.ReadyAt(now);
    b.Take(sizes[i % 5], now);
    sent += sizes[i % 5];
  }
  // Everything but the burst and the last unit was paid for at the rate.
  EXPECT_NEAR(now - 0.5, (sent - sizes[199 % 5] - (64 << 10)) / 50'000.0, 1e-6);
}

class RateLimiterTest : public ::testing::Test {
 protected:
  // Runs what is due, then moves the clock to the next timer, until `pred`
  // holds or `limit` passed. Returns the simulated time it took.
  std::optional<Clock::duration> RunUntil(const std::function<bool()>& pred, Clock::duration limit) {
    const Clock::time_point start = clock_.now();
    for (;;) {
      clock_.ForgetWake();
      io_.restart();
      while (io_.poll_one() > 0)
        if (pred()) return clock_.now() - start;
      if (pred()) return clock_.now() - start;
      Clock::time_point wake = clock_.next_wake();
      if (wake == Clock::time_point::max() || wake - start > limit) return std::nullopt;
      if (wake > clock_.now()) clock_.Advance(wake - clock_.now());
    }
  }

  ManualClock clock_;
  asio::io_context io_;
  std::shared_ptr<void> alive_ = std::make_shared<char>();
};

TEST_F(RateLimiterTest, AWaiterRunsOnceTheDebtIsPaid) {
  auto l = std::make_shared<RateLimiter>(io_.get_executor(), 10'000, 1000);
  EXPECT_TRUE(l->Ready());
  l->Take(21'000);  // 20,000 bytes of debt: 2 s
  EXPECT_FALSE(l->Ready());
  bool ran = false;
  l->Wait(alive_, [&] { ran = true; });
  EXPECT_FALSE(ran) << "never before Wait returns";
  auto took = RunUntil([&] { return ran; }, 1min);
  ASSERT_TRUE(took);
  EXPECT_EQ(*took, 2s);
  EXPECT_TRUE(l->Ready());
}

TEST_F(RateLimiterTest, WaitersTakeTurnsInOrder) {
  auto l = std::make_shared<RateLimiter>(io_.get_executor(), 1000, 1000);
  l->Take(1000);
  std::vector<std::string> sent;
  // Each sender sends 1000 bytes per turn, three turns each.
  std::function<void(std::string, int)> send = [&](std::string who, int left) {
    if (!l->Ready()) {
      l->Wait(alive_, [&, who, left] { send(who, left); });
      return;
    }
    sent.push_back(who);
    l->Take(1000);
    if (left > 1) l->Wait(alive_, [&, who, left] { send(who, left - 1); });
  };
  send("a", 3);
  send("b", 3);
  auto took = RunUntil([&] { return sent.size() == 6; }, 1min);
  ASSERT_TRUE(took);
  // First come, first served: a went at once (the burst) and was first to
  // wait again; after that, one each.
  EXPECT_EQ(sent, (std::vector<std::string>{"a", "a", "b", "a", "b", "b"}));
  EXPECT_EQ(*took, 5s);  // 1000 B/s: the first went at once out of the burst
}

TEST_F(RateLimiterTest, AGoneWaiterDoesNotRunNorDoesAnyAfterStop) {
  auto l = std::make_shared<RateLimiter>(io_.get_executor(), 1000, 1000);
  l->Take(2000);
  bool gone_ran = false, stopped_ran = false;
  {
    std::shared_ptr<void> gone = std::make_shared<char>();
    l->Wait(gone, [&] { gone_ran = true; });
  }
  EXPECT_FALSE(RunUntil([&] { return gone_ran; }, 10s));
  l->Take(2000);
  l->Wait(alive_, [&] { stopped_ran = true; });
  l->Stop();
  EXPECT_FALSE(RunUntil([&] { return stopped_ran; }, 10s));
}

// A device's limiter chained to a node-wide total: each passes what both
// allow; the total is shared with another device.
TEST_F(RateLimiterTest, ATotalIsSharedByEveryDevice) {
  SyncConfig config;
  config.fetch_rate_limit = 0;  // no limit per device
  config.total_fetch_rate_limit = 100'000;
  config.upload_rate_limit = 50'000;
  RateLimits limits(io_.get_executor(), config);
  Uuid a = NewUuidV7(), b = NewUuidV7();
  PeerLimiters la = limits.For(a), lb = limits.For(b);
  ASSERT_TRUE(la.download && lb.download && la.upload && lb.upload);
  EXPECT_EQ(limits.For(a).download, la.download) << "one limiter per device";
  EXPECT_NE(la.upload, lb.upload);
  EXPECT_EQ(la.download->rate(), 0u);
  EXPECT_EQ(la.upload->rate(), 50'000u);
  la.download->Take(200'000 + (64 << 10));  // 2 s of the total
  EXPECT_FALSE(lb.download->Ready());
  EXPECT_TRUE(lb.upload->Ready()) << "directions are separate";
  bool ran = false;
  lb.download->Wait(alive_, [&] { ran = true; });
  auto took = RunUntil([&] { return ran; }, 1min);
  ASSERT_TRUE(took);
  EXPECT_EQ(*took, 2s);
  // Nothing limited: no limiter at all.
  RateLimits none(io_.get_executor(), SyncConfig{});
  EXPECT_FALSE(none.For(a).download);
  EXPECT_FALSE(none.For(a).upload);
}

}  // namespace
}  // namespace entrysync
