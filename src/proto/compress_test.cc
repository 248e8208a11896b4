#include "proto/compress.h"

#include <gtest/gtest.h>

#include <random>

namespace entrysync {
namespace {

std::string Compressible(size_t n) {
  std::string s;
  while (s.size() < n) s += "IMG_2041.jpg report-final (3).docx src/foo/bar_test.cc ";
  s.resize(n);
  return s;
}

std::string Random(size_t n) {
  std::mt19937_64 rng(3);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class CodecTest : public ::testing::TestWithParam<Codec> {};

TEST_P(CodecTest, RoundTrip) {
  const std::string raw = Compressible(100000);
  Compressed c = CompressPayload(GetParam(), raw);
  EXPECT_EQ(c.codec, GetParam());
  EXPECT_LT(c.bytes.size(), raw.size() / 10);
  auto back = Decompress(c.codec, c.bytes, raw.size(), 1 << 20);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, raw);
}

TEST_P(CodecTest, DoesNotPayFallsBackToNone) {
  const std::string raw = Random(4096);
  Compressed c = CompressPayload(GetParam(), raw);
  EXPECT_EQ(c.codec, Codec::kNone);
  EXPECT_EQ(c.bytes, raw);
  Compressed empty = CompressPayload(GetParam(), "");
  EXPECT_EQ(empty.codec, Codec::kNone);
  auto back = Decompress(empty.codec, empty.bytes, 0, 10);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->empty());
}

TEST_P(CodecTest, RefusesBombsAndMismatches) {
  const std::string raw = Compressible(1 << 20);
  Compressed c = CompressPayload(GetParam(), raw);
  ASSERT_EQ(c.codec, GetParam());
  // Over the limit: refused before any work.
  auto over = Decompress(c.codec, c.bytes, raw.size(), raw.size() - 1);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), Code::kProtocol);
  // Lies about the size, both ways.
  EXPECT_EQ(Decompress(c.codec, c.bytes, raw.size() - 1, 2 << 20).status().code(), Code::kCorruption);
  EXPECT_EQ(Decompress(c.codec, c.bytes, raw.size() + 1, 2 << 20).status().code(), Code::kCorruption);
  // Truncated, trailing bytes, garbage.
  EXPECT_FALSE(Decompress(c.codec, c.bytes.substr(0, c.bytes.size() - 1), raw.size(), 2 << 20).ok());
  EXPECT_FALSE(Decompress(c.codec, c.bytes + "zz", raw.size(), 2 << 20).ok());
  EXPECT_FALSE(Decompress(c.codec, Random(100), raw.size(), 2 << 20).ok());
  EXPECT_FALSE(Decompress(c.codec, "", 10, 2 << 20).ok());
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecTest, ::testing::Values(Codec::kZstd, Codec::kGzip),
                         [](const auto& info) { return std::string(CodecName(info.param)); });

TEST(CompressTest, NoneChecksSize) {
  EXPECT_TRUE(Decompress(Codec::kNone, "abc", 3, 3).ok());
  EXPECT_EQ(Decompress(Codec::kNone, "abc", 4, 10).status().code(), Code::kCorruption);
  EXPECT_EQ(Decompress(Codec::kNone, "abc", 3, 2).status().code(), Code::kProtocol);
  EXPECT_EQ(Decompress(static_cast<Codec>(9), "abc", 3, 10).status().code(), Code::kProtocol);
}

TEST(CompressTest, ZstdLevelIsConfigurable) {
  const std::string raw = Compressible(200000) + Random(1000);
  CompressOptions fast, strong;
  strong.zstd_level = 19;
  auto a = CompressPayload(Codec::kZstd, raw, fast);
  auto b = CompressPayload(Codec::kZstd, raw, strong);
  EXPECT_LE(b.bytes.size(), a.bytes.size());
  EXPECT_EQ(*Decompress(Codec::kZstd, b.bytes, raw.size(), raw.size()), raw);
}

}  // namespace
}  // namespace entrysync
