#include "api/convert.h"

#include <gtest/gtest.h>

namespace entrysync {
namespace {

// The public defaults are the ones the sync layer was tuned with.
TEST(ConvertTest, SyncOptionsDefaultsAreSyncConfigDefaults) {
  SyncConfig from_api = ToSyncConfig(SyncOptions{});
  SyncConfig c;
  EXPECT_EQ(from_api.forced, c.forced);
  EXPECT_EQ(from_api.batch_records, c.batch_records);
  EXPECT_EQ(from_api.codec, c.codec);
  EXPECT_EQ(from_api.auto_fetch, c.auto_fetch);
  EXPECT_EQ(from_api.fetch_rate_limit, c.fetch_rate_limit);
  EXPECT_EQ(from_api.upload_rate_limit, c.upload_rate_limit);
  EXPECT_EQ(from_api.total_fetch_rate_limit, c.total_fetch_rate_limit);
  EXPECT_EQ(from_api.total_upload_rate_limit, c.total_upload_rate_limit);
  EXPECT_EQ(from_api.change_threshold, c.change_threshold);
  EXPECT_EQ(from_api.snapshot_threshold, c.snapshot_threshold);
  EXPECT_EQ(from_api.bulk_threshold, c.bulk_threshold);
  for (auto s :
       {Strategy::kAuto, Strategy::kChange, Strategy::kBatch, Strategy::kBulk, Strategy::kSnapshot}) {
    EXPECT_EQ(ToStrategy(ToSyncStrategy(s)), s);
    EXPECT_STREQ(SyncStrategyName(ToSyncStrategy(s)), StrategyName(s));
  }
}

TEST(ConvertTest, RateLimitsReachTheSyncConfig) {
  SyncOptions o;
  o.rate_limit_bytes_per_second = 1;
  o.upload_rate_limit_bytes_per_second = 2;
  o.total_rate_limit_bytes_per_second = 3;
  o.total_upload_rate_limit_bytes_per_second = 4;
  SyncConfig c = ToSyncConfig(o);
  EXPECT_EQ(c.fetch_rate_limit, 1u);
  EXPECT_EQ(c.upload_rate_limit, 2u);
  EXPECT_EQ(c.total_fetch_rate_limit, 3u);
  EXPECT_EQ(c.total_upload_rate_limit, 4u);
}

}  // namespace
}  // namespace entrysync
