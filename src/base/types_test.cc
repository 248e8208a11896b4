#include "entrysync/types.h"

#include <gtest/gtest.h>

#include <set>

#include "base/hash.h"
#include "entrysync/status.h"

namespace entrysync {
namespace {

TEST(UuidTest, V7IsStrictlyIncreasingAndVersioned) {
  Uuid prev = NewUuidV7();
  for (int i = 0; i < 100000; ++i) {
    Uuid u = NewUuidV7();
    ASSERT_LT(prev, u);
    ASSERT_EQ(u.bytes[6] >> 4, 7);
    ASSERT_EQ(u.bytes[8] >> 6, 2);
    prev = u;
  }
}

TEST(UuidTest, TextRoundTrip) {
  Uuid u = NewUuidV4();
  EXPECT_EQ(u.bytes[6] >> 4, 4);
  std::string s = u.ToString();
  EXPECT_EQ(s.size(), 36u);
  auto back = Uuid::Parse(s);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, u);
  EXPECT_FALSE(Uuid::Parse("zz").has_value());
  EXPECT_TRUE(Uuid::Nil().is_nil());
}

TEST(DeviceIdTest, HexRoundTrip) {
  DeviceId d;
  d.bytes[0] = 0xab;
  d.bytes[31] = 0x01;
  auto back = DeviceId::Parse(d.ToString());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, d);
  EXPECT_FALSE(DeviceId::Parse("abc").has_value());
}

TEST(DeviceIdTest, ShortString) {
  DeviceId d;
  d.bytes[0] = 0xab;
  EXPECT_EQ(d.ToShortString(), "ab00000000000000\u2026");
}

TEST(StrongIntTest, Ordering) {
  Seq a(1), b(2);
  EXPECT_LT(a, b);
  EXPECT_EQ(a.next(), b);
}

TEST(HashTest, KnownValues) {
  EXPECT_EQ(Crc32("123456789", 9), 0xCBF43926u);
  Sha256 h;
  h.Update("abc");
  EXPECT_EQ(h.FinishHex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ES_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(StatusTest, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd");
  EXPECT_EQ(r.status().Wrap("quarter 6").message(), "quarter 6: odd");
}

}  // namespace
}  // namespace entrysync
