#include "proto/batch_codec.h"

#include <gtest/gtest.h>

#include <climits>
#include <random>

#include "proto/compress.h"
#include "proto/testdata.h"

namespace entrysync {
namespace {

void ExpectEntriesRoundTrip(const std::vector<EntryRecord>& records) {
  const std::string encoded = EncodeEntries(records);
  auto decoded = DecodeEntries(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    ASSERT_EQ((*decoded)[i], records[i]) << "row " << i;
  }
}

std::vector<EntryRecord> OddEntries() {
  std::vector<EntryRecord> v;
  EntryRecord e;
  v.push_back(e);  // all defaults: nil uuids, empty name
  e.uuid = NewUuidV4();
  e.parent = e.uuid;  // its own parent
  e.location = NewUuidV4();
  e.name = "\xF0\x9F\x93\xB7 Fotos \xC3\xA9t\xC3\xA9.JPG";
  e.extension = "jpg";  // does not match the name's case: not stripped
  e.kind = EntryKind::kDir;
  e.size = UINT64_MAX;
  e.inode = UINT64_MAX;
  e.created_ns = INT64_MIN;
  e.modified_ns = INT64_MAX;
  e.accessed_ns = 0;
  e.seq = Seq(INT64_MAX);
  e.deleted = true;
  e.content_hash = std::string(32, '\xAB');
  v.push_back(e);
  e.name = std::string("line\nbreak\0nul.tar.gz", 21);
  e.extension = "gz";
  e.modified_ns = INT64_MIN;
  e.created_ns = INT64_MAX;
  e.accessed_ns = -1;
  e.seq = Seq(-7);
  e.content_hash = "x";
  e.parent = v[1].uuid;
  v.push_back(e);
  e.name = ".gz";  // the whole name is ".extension"
  e.parent = Uuid::Nil();
  e.content_hash.clear();
  v.push_back(e);
  e.name = "gz";  // ends with the extension but has no dot
  v.push_back(e);
  e.name = "a.";
  e.extension = "";
  v.push_back(e);
  e.name = std::string(100000, 'n');
  e.extension = std::string(300, 'e');
  e.kind = EntryKind::kSymlink;
  e.modified_ns = -1;
  e.created_ns = -999999999;
  e.accessed_ns = -1000000000;
  v.push_back(e);
  e.name = "";
  e.extension = "x";
  e.uuid = Uuid::Nil();
  e.parent = Uuid::Nil();
  e.location = Uuid::Nil();
  v.push_back(e);
  return v;
}

TEST(BatchCodecTest, EmptyBatch) {
  ExpectEntriesRoundTrip({});
  auto loc = DecodeLocations(EncodeLocations({}));
  ASSERT_TRUE(loc.ok());
  EXPECT_TRUE(loc->empty());
}

TEST(BatchCodecTest, OddEntriesRoundTrip) { ExpectEntriesRoundTrip(OddEntries()); }

TEST(BatchCodecTest, RealisticTreeRoundTrip) {
  testdata::TreeOptions o;
  o.count = 10000;
  o.hash_fraction = 0.2;
  auto tree = testdata::GenerateTree(o);
  ASSERT_EQ(tree.size(), 10000u);
  ExpectEntriesRoundTrip(tree);
  // Shuffled order and mixed locations still round-trip.
  std::mt19937 rng(7);
  std::shuffle(tree.begin(), tree.end(), rng);
  for (size_t i = 0; i < tree.size(); i += 3) tree[i].location = NewUuidV7();
  ExpectEntriesRoundTrip(tree);
}

TEST(BatchCodecTest, RandomRecordsRoundTrip) {
  std::mt19937_64 rng(1);
  std::vector<EntryRecord> v;
  for (int i = 0; i < 2000; ++i) {
    EntryRecord e;
    for (auto& b : e.uuid.bytes) b = static_cast<uint8_t>(rng());
    if (rng() % 3) {
      for (auto& b : e.parent.bytes) b = static_cast<uint8_t>(rng());
    }
    if (rng() % 2 && !v.empty()) e.parent = v[rng() % v.size()].uuid;
    e.location = v.empty() || rng() % 5 == 0 ? NewUuidV4() : v.back().location;
    const size_t len = rng() % 20;
    for (size_t k = 0; k < len; ++k) e.name.push_back(static_cast<char>(rng()));
    if (rng() % 2) {
      e.extension = e.name.substr(e.name.size() / 2);
    }
    e.kind = static_cast<EntryKind>(rng() % 3);
    e.size = rng();
    e.inode = rng();
    e.created_ns = static_cast<int64_t>(rng());
    e.modified_ns = static_cast<int64_t>(rng());
    e.accessed_ns = static_cast<int64_t>(rng());
    if (rng() % 2) e.content_hash = std::string(rng() % 40 + 1, static_cast<char>(rng()));
    e.seq = Seq(static_cast<int64_t>(rng()));
    e.deleted = rng() % 2;
    v.push_back(e);
  }
  ExpectEntriesRoundTrip(v);
}

TEST(BatchCodecTest, LocationsRoundTrip) {
  std::vector<LocationRecord> v(3);
  v[0].uuid = NewUuidV7();
  v[0].root_path = "/home/ann/Photos";
  v[0].name = "Photos";
  v[0].seq = Seq(5);
  v[1].uuid = NewUuidV7();
  v[1].root_path = std::string("/weird\n\0path", 12);
  v[1].seq = Seq(INT64_MIN);
  v[1].deleted = true;
  auto decoded = DecodeLocations(EncodeLocations(v));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, v);
}

TEST(BatchCodecTest, RejectsGarbage) {
  EXPECT_EQ(DecodeEntries("").status().code(), Code::kCorruption);
  EXPECT_EQ(DecodeEntries("E").status().code(), Code::kCorruption);
  EXPECT_EQ(DecodeEntries("L\x01").status().code(), Code::kCorruption);
  EXPECT_EQ(DecodeEntries(std::string("E\x02\x00", 3)).status().code(), Code::kCorruption);
  // A huge row count with no data must not allocate.
  EXPECT_EQ(DecodeEntries("E\x01\xff\xff\xff\xff\xff\xff\xff\xff\x7f").status().code(), Code::kCorruption);
  EXPECT_FALSE(DecodeLocations(EncodeEntries({})).ok());
  EXPECT_FALSE(DecodeEntries(EncodeLocations({})).ok());
}

TEST(BatchCodecTest, EveryTruncationAndBitFlipFailsCleanly) {
  std::vector<EntryRecord> v = testdata::GenerateTree(60);
  auto odd = OddEntries();
  odd.pop_back();
  odd[6].name = "long-ish name";
  v.insert(v.end(), odd.begin(), odd.end());
  const std::string good = EncodeEntries(v);
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeEntries(std::string_view(good).substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(DecodeEntries(good + "x").ok());
  // Bit flips may decode to different records but must not crash.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= static_cast<char>(1 << (i % 8));
    (void)DecodeEntries(bad);
  }
}

// Bytes per entry for a realistic tree, compressed with zstd level 1.
double BytesPerEntry(const std::vector<EntryRecord>& tree, size_t batch, size_t* raw_total) {
  size_t total = 0;
  *raw_total = 0;
  for (size_t i = 0; i < tree.size(); i += batch) {
    const size_t n = std::min(batch, tree.size() - i);
    const std::string raw = EncodeEntries(std::span(tree).subspan(i, n));
    *raw_total += raw.size();
    total += CompressPayload(Codec::kZstd, raw).bytes.size();
  }
  return static_cast<double>(total) / static_cast<double>(tree.size());
}

TEST(BatchCodecTest, RealisticBytesPerEntryWithZstd) {
  const auto tree = testdata::GenerateTree(10000);
  size_t raw = 0;
  const double one_batch = BytesPerEntry(tree, 10000, &raw);
  std::printf("10000 entries, one batch: %.2f bytes/entry zstd-1 (%.2f raw columnar)\n", one_batch,
              static_cast<double>(raw) / 10000);
  EXPECT_LE(one_batch, 30.0);
  const double thousands = BytesPerEntry(tree, 1000, &raw);
  std::printf("10000 entries, batches of 1000: %.2f bytes/entry zstd-1 (%.2f raw columnar)\n", thousands,
              static_cast<double>(raw) / 10000);
  EXPECT_LE(thousands, 30.0);

  // For comparison: row-wise protobuf-ish size is what StateChange costs.
  size_t names = 0;
  for (const auto& e : tree) names += e.name.size();
  std::printf("average name length: %.1f bytes\n", static_cast<double>(names) / tree.size());
}

}  // namespace
}  // namespace entrysync
