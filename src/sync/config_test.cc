#include "sync/config.h"

#include <gtest/gtest.h>

namespace entrysync {
namespace {

TEST(ChooseStrategyTest, ThresholdsOfTheSeedsTable) {
  SyncConfig c;  // change <= 100 < batch; snapshot for a new peer from 100K
  EXPECT_EQ(ChooseStrategy(c, 0, false), Strategy::kChange);
  EXPECT_EQ(ChooseStrategy(c, 100, false), Strategy::kChange);
  EXPECT_EQ(ChooseStrategy(c, 101, false), Strategy::kBatch);
  EXPECT_EQ(ChooseStrategy(c, 99'999, true), Strategy::kBatch);
  EXPECT_EQ(ChooseStrategy(c, 100'000, true), Strategy::kSnapshot);
  EXPECT_EQ(ChooseStrategy(c, 5'000'000, false), Strategy::kBatch);  // has some: deltas, not a snapshot
  EXPECT_EQ(ChooseStrategy(c, 100, true), Strategy::kChange);
}

TEST(ChooseStrategyTest, ThresholdsAreConfiguration) {
  SyncConfig c;
  c.change_threshold = 10;
  c.snapshot_threshold = 1000;
  EXPECT_EQ(ChooseStrategy(c, 11, false), Strategy::kBatch);
  EXPECT_EQ(ChooseStrategy(c, 1000, true), Strategy::kSnapshot);
}

TEST(ChooseStrategyTest, ForcedWins) {
  SyncConfig c;
  for (Strategy s : {Strategy::kChange, Strategy::kBatch, Strategy::kSnapshot}) {
    c.forced = s;
    EXPECT_EQ(ChooseStrategy(c, 1, false), s);
    EXPECT_EQ(ChooseStrategy(c, 10'000'000, true), s);
  }
  c.forced = Strategy::kBulk;  // bulk pulls page through batches
  EXPECT_EQ(ChooseStrategy(c, 10'000'000, true), Strategy::kBatch);
}

TEST(ChoosePullTest, MassiveDeltaOnTopOfHeldRowsIsFetchedInPages) {
  SyncConfig c;  // bulk from 100K missing rows, only when some are held
  EXPECT_EQ(ChoosePull(c, 99'999, true), Strategy::kAuto);
  EXPECT_EQ(ChoosePull(c, 100'000, true), Strategy::kBulk);
  EXPECT_EQ(ChoosePull(c, 1'000'000, false),
            Strategy::kAuto);  // nothing held: the server may offer a snapshot
  c.bulk_threshold = 10;
  EXPECT_EQ(ChoosePull(c, 10, true), Strategy::kBulk);
  c.forced = Strategy::kBulk;
  EXPECT_EQ(ChoosePull(c, 1, false), Strategy::kBulk);
  for (Strategy s : {Strategy::kChange, Strategy::kBatch, Strategy::kSnapshot}) {
    c.forced = s;  // forced strategies go in the request; the server follows them
    EXPECT_EQ(ChoosePull(c, 10'000'000, true), Strategy::kAuto);
  }
}

TEST(StrategyNameTest, RoundTrip) {
  for (const char* n : {"auto", "change", "batch", "bulk", "snapshot"})
    EXPECT_STREQ(StrategyName(*ParseStrategy(n)), n);
  EXPECT_FALSE(ParseStrategy("fast").has_value());
}

}  // namespace
}  // namespace entrysync
