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
  EXPECT_EQ(from_api.change_threshold, c.change_threshold);
  EXPECT_EQ(from_api.snapshot_threshold, c.snapshot_threshold);
  EXPECT_EQ(from_api.bulk_threshold, c.bulk_threshold);
  for (auto s :
       {Strategy::kAuto, Strategy::kChange, Strategy::kBatch, Strategy::kBulk, Strategy::kSnapshot}) {
    EXPECT_EQ(ToStrategy(ToSyncStrategy(s)), s);
    EXPECT_STREQ(SyncStrategyName(ToSyncStrategy(s)), StrategyName(s));
  }
}

}  // namespace
}  // namespace entrysync
