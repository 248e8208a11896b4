#include "proto/batch.h"

#include <gtest/gtest.h>

#include "proto/convert.h"
#include "proto/frame.h"
#include "proto/testdata.h"

namespace entrysync {
namespace {

BatchHeader Header(Codec codec) {
  BatchHeader h;
  h.owner = NewUuidV7();
  h.epoch = Epoch(0xDEADBEEFCAFEF00Dull);
  h.transfer_id = 77;
  h.batch_index = 3;
  h.total_batches = 10;
  h.total_records = 10000;
  h.codec = codec;
  return h;
}

TEST(BatchTest, BuildAndOpenThroughAFrame) {
  const auto tree = testdata::GenerateTree(1000);
  for (Codec codec : {Codec::kZstd, Codec::kGzip, Codec::kNone}) {
    auto batch = BuildEntryBatch(Header(codec), tree);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    EXPECT_EQ(batch->codec(), CodecToWire(codec));
    EXPECT_EQ(batch->record_count(), 1000u);
    EXPECT_EQ(batch->first_seq(), 1);
    EXPECT_EQ(batch->last_seq(), 1000);
    EXPECT_EQ(batch->model(), wire::MODEL_ENTRY);

    FrameDecoder d;
    d.Feed(EncodeFrame(*batch));
    auto frame = d.Next();
    ASSERT_TRUE(frame.ok() && frame->has_value());
    auto parsed = ParseMessage<wire::StateBatch>(**frame);
    ASSERT_TRUE(parsed.ok());
    auto records = OpenEntryBatch(*parsed);
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    EXPECT_EQ(*records, tree);
    std::printf("%s: 1000 entries in a %zu-byte frame\n", CodecName(codec), EncodeFrame(*batch).size());
  }
}

TEST(BatchTest, EmptyBatch) {
  auto batch = BuildEntryBatch(Header(Codec::kZstd), {});
  ASSERT_TRUE(batch.ok());
  auto records = OpenEntryBatch(*batch);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_TRUE(records->empty());
}

TEST(BatchTest, LocationsRoundTrip) {
  std::vector<LocationRecord> locs(2);
  locs[0].uuid = NewUuidV7();
  locs[0].root_path = "/home/ann";
  locs[0].name = "home";
  locs[0].seq = Seq(4);
  locs[1].uuid = NewUuidV7();
  locs[1].seq = Seq(2);
  auto batch = BuildLocationBatch(Header(Codec::kZstd), locs);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->first_seq(), 2);
  EXPECT_EQ(batch->last_seq(), 4);
  auto back = OpenLocationBatch(*batch);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, locs);
  // The wrong opener refuses it.
  EXPECT_EQ(OpenEntryBatch(*batch).status().code(), Code::kProtocol);
}

TEST(BatchTest, TamperedPayloadIsChecksumMismatch) {
  const auto tree = testdata::GenerateTree(500);
  // Uncompressed so a flipped byte still decompresses and only the CRC fails.
  auto batch = BuildEntryBatch(Header(Codec::kNone), tree);
  ASSERT_TRUE(batch.ok());
  std::string payload = batch->payload();
  payload[payload.size() / 2] ^= 0x10;
  batch->set_payload(payload);
  auto r = OpenEntryBatch(*batch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  const std::string want =
      "batch 3 of owner " + Uuid::FromBytes(batch->owner().data()).ToString() + ": checksum mismatch";
  EXPECT_EQ(r.status().message(), want);

  // Compressed payload tampered: decompression or checksum fails.
  auto z = BuildEntryBatch(Header(Codec::kZstd), tree);
  ASSERT_TRUE(z.ok());
  std::string zp = z->payload();
  zp[zp.size() / 2] ^= 0x10;
  z->set_payload(zp);
  EXPECT_EQ(OpenEntryBatch(*z).status().code(), Code::kCorruption);
}

TEST(BatchTest, HeaderLiesAreCaught) {
  const auto tree = testdata::GenerateTree(100);
  auto good = BuildEntryBatch(Header(Codec::kZstd), tree);
  ASSERT_TRUE(good.ok());

  auto b = *good;
  b.set_record_count(99);
  EXPECT_EQ(OpenEntryBatch(b).status().code(), Code::kCorruption);
  b = *good;
  b.set_last_seq(101);
  EXPECT_EQ(OpenEntryBatch(b).status().code(), Code::kCorruption);
  b = *good;
  b.set_uncompressed_size(b.uncompressed_size() + 1);
  EXPECT_EQ(OpenEntryBatch(b).status().code(), Code::kCorruption);
  b = *good;
  b.set_codec(static_cast<wire::Codec>(5));
  EXPECT_EQ(OpenEntryBatch(b).status().code(), Code::kProtocol);
  b = *good;
  b.set_owner("abc");
  EXPECT_EQ(OpenEntryBatch(b).status().code(), Code::kProtocol);

  BatchLimits tight;
  tight.max_uncompressed_bytes = 100;
  EXPECT_EQ(OpenEntryBatch(*good, tight).status().code(), Code::kProtocol);
  tight = BatchLimits();
  tight.max_records = 50;
  EXPECT_EQ(OpenEntryBatch(*good, tight).status().code(), Code::kProtocol);
}

}  // namespace
}  // namespace entrysync
