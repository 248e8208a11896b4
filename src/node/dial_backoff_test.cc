// DialBackoff: failed dials and unhealthy sessions back off with jitter;
// a healthy session resets it.
#include "node/dial_backoff.h"

#include <gtest/gtest.h>

#include <vector>

namespace entrysync {
namespace {

using namespace std::chrono_literals;

double Secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

const Clock::time_point kT0 = Clock::time_point(1000s);

TEST(DialBackoffTest, FailedDialsDoubleFromTwoSecondsUpToAMinute) {
  DialBackoff b;
  EXPECT_TRUE(b.Due(kT0));
  std::vector<double> delays;
  Clock::time_point now = kT0;
  for (int i = 0; i < 8; ++i) {
    Clock::duration d = b.Failed(now, 0.5);  // the middle of the jitter: no change
    delays.push_back(Secs(d));
    EXPECT_FALSE(b.Due(now));
    EXPECT_FALSE(b.Due(now + d - 1ms));
    EXPECT_TRUE(b.Due(now + d));
    now += d;
  }
  EXPECT_EQ(delays, (std::vector<double>{2, 4, 8, 16, 32, 60, 60, 60}));
  EXPECT_EQ(b.failures(), 8);
}

TEST(DialBackoffTest, DelaysAreJitteredByTwentyPercent) {
  DialBackoff low, high;
  EXPECT_DOUBLE_EQ(Secs(low.Failed(kT0, 0.0)), 1.6);
  EXPECT_NEAR(Secs(high.Failed(kT0, 0.999999)), 2.4, 1e-5);
  for (int i = 0; i < 10; ++i) {
    low.Failed(kT0, 0.0);
    high.Failed(kT0, 0.999999);
  }
  EXPECT_DOUBLE_EQ(Secs(low.Failed(kT0, 0.0)), 48);
  EXPECT_NEAR(Secs(high.Failed(kT0, 0.999999)), 72, 1e-4);
}

// Issue 9: a connection that comes up then fails at once (a refused
// handshake, a peer error, a full disk here) used to reset the back-off,
// and the daemon redialed twice a second forever.
TEST(DialBackoffTest, SessionsThatFailAtOnceBackOffToo) {
  DialBackoff b;
  Clock::time_point now = kT0;
  std::vector<double> delays;
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(b.Due(now));
    b.Connected(now);
    now += 300ms;  // up, then an error
    auto d = b.Ended(now, /*moved_rows=*/false, 0.5);
    ASSERT_TRUE(d);
    delays.push_back(Secs(*d));
    now += *d;
  }
  EXPECT_EQ(delays, (std::vector<double>{2, 4, 8, 16, 32, 60, 60}));
}

TEST(DialBackoffTest, AHealthySessionResetsIt) {
  DialBackoff b;
  Clock::time_point now = kT0;
  b.Failed(now, 0.5);
  b.Failed(now, 0.5);
  EXPECT_EQ(b.failures(), 2);
  // Up for 30 s: healthy, whatever it did.
  now += 10s;
  b.Connected(now);
  now += 30s;
  EXPECT_FALSE(b.Ended(now, /*moved_rows=*/false, 0.5));
  EXPECT_EQ(b.failures(), 0);
  EXPECT_TRUE(b.Due(now));
  // Moved rows: healthy however short.
  b.Failed(now, 0.5);
  b.Connected(now + 2s);
  EXPECT_FALSE(b.Ended(now + 3s, /*moved_rows=*/true, 0.5));
  EXPECT_EQ(b.failures(), 0);
  // Up 29 s without moving a row: not yet.
  b.Connected(now);
  auto d = b.Ended(now + 29s, /*moved_rows=*/false, 0.5);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, 2s);
}

TEST(DialBackoffTest, ASupersededSessionChangesNothing) {
  DialBackoff b;
  b.Failed(kT0, 0.5);
  b.Connected(kT0 + 2s);
  EXPECT_EQ(b.Uptime(kT0 + 3s), 1s);
  b.Superseded();
  EXPECT_EQ(b.Uptime(kT0 + 3s), Clock::duration::zero());
  EXPECT_EQ(b.failures(), 1);
  EXPECT_EQ(Secs(b.Failed(kT0 + 5s, 0.5)), 4);
}

}  // namespace
}  // namespace entrysync
