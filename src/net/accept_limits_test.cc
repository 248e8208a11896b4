#include "net/accept_limits.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace entrysync::net {
namespace {

using namespace std::chrono_literals;
using TimePoint = RefusalReports::TimePoint;

TEST(AcceptLimitsTest, ShortagesBackOffAndOneConnectionsErrorsDoNot) {
  for (int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM, EBADF, EINVAL})
    EXPECT_FALSE(IsPerConnectionAcceptError(std::error_code(e, std::system_category()))) << e;
  for (int e : {ECONNABORTED, ECONNRESET, EPROTO, EPERM, ENETUNREACH, EHOSTUNREACH, EINTR, EAGAIN})
    EXPECT_TRUE(IsPerConnectionAcceptError(std::error_code(e, std::system_category()))) << e;
}

TEST(AcceptLimitsTest, BackoffDoublesUpToItsMaximumAndResets) {
  AcceptBackoff b(100ms, 1000ms);
  EXPECT_EQ(b.Next(), 100ms);
  EXPECT_EQ(b.Next(), 200ms);
  EXPECT_EQ(b.Next(), 400ms);
  EXPECT_EQ(b.Next(), 800ms);
  EXPECT_EQ(b.Next(), 1000ms);
  EXPECT_EQ(b.Next(), 1000ms);
  b.Reset();
  EXPECT_EQ(b.Next(), 100ms);
  // A zero start still pauses.
  AcceptBackoff z(0ms, 0ms);
  EXPECT_EQ(z.Next(), 1ms);
  EXPECT_EQ(z.Next(), 1ms);
}

TEST(AcceptLimitsTest, ReportsAFewPerIntervalThenOneSummary) {
  RefusalReports r(3, 10s);
  const TimePoint t0 = TimePoint() + 1000s;
  int reported = 0;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(r.TakeSummary(t0 + std::chrono::milliseconds(i), 256));
    if (r.Admit(i % 2 ? RefusalKind::kOverLimit : RefusalKind::kTimeout, t0 + std::chrono::milliseconds(i)))
      ++reported;
  }
  EXPECT_EQ(reported, 3);
  EXPECT_TRUE(r.holding());
  EXPECT_EQ(r.interval_end(), t0 + 10s);
  EXPECT_FALSE(r.TakeSummary(t0 + 9s, 256));  // the interval still runs
  auto s = r.TakeSummary(t0 + 10s, 256);
  ASSERT_TRUE(s);
  EXPECT_EQ(*s,  // 0, 1, 2 were reported in full
            "and 997 more in the last 10s: 499 closed to make room (over 256 unauthenticated connections), "
            "498 timed out or hung up in the handshake");
  EXPECT_FALSE(r.holding());
  EXPECT_FALSE(r.TakeSummary(t0 + 20s, 256));  // said once
  // A new interval starts with the next refusal: a few in full again.
  EXPECT_TRUE(r.Admit(RefusalKind::kNotPaired, t0 + 30s));
  EXPECT_EQ(r.interval_end(), t0 + 40s);
}

TEST(AcceptLimitsTest, SummaryNamesTheLastAcceptError) {
  RefusalReports r(0, 500ms);
  const TimePoint t0 = TimePoint() + 1000s;
  r.NoteAcceptError("Too many open files");
  EXPECT_FALSE(r.Admit(RefusalKind::kAcceptError, t0));
  EXPECT_FALSE(r.Admit(RefusalKind::kAcceptError, t0 + 100ms));
  EXPECT_FALSE(r.Admit(RefusalKind::kBroken, t0 + 200ms));
  auto s = r.TakeSummary(t0 + 500ms, 64);
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, "and 3 more in the last 500ms: 1 broken or not TLS, 2 accept errors (Too many open files)");
}

}  // namespace
}  // namespace entrysync::net
