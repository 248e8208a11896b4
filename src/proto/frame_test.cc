#include "proto/frame.h"

#include <gtest/gtest.h>

#include "base/hash.h"
#include "proto/convert.h"

namespace entrysync {
namespace {

wire::Hello SampleHello() {
  wire::Hello h;
  h.set_protocol_version(1);
  h.set_library_id(UuidToWire(NewUuidV4()));
  h.set_device_id(std::string(32, '\x07'));
  h.set_device_uuid(UuidToWire(NewUuidV7()));
  h.set_device_name("laptop");
  h.add_codecs(wire::CODEC_ZSTD);
  h.add_codecs(wire::CODEC_GZIP);
  h.set_max_batch_records(1000);
  auto* w = h.add_watermarks();
  w->set_owner(UuidToWire(NewUuidV7()));
  w->set_owner_name("desktop");
  w->set_epoch(0x1234567890ABCDEFull);
  w->set_seq(42);
  auto* o = h.add_owners();
  o->set_owner(h.device_uuid());
  o->set_name("laptop");
  o->set_epoch(99);
  o->set_max_seq(1000000);
  return h;
}

std::vector<Frame> DecodeAll(FrameDecoder* d) {
  std::vector<Frame> frames;
  while (true) {
    auto next = d->Next();
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok() || !next->has_value()) break;
    frames.push_back(std::move(**next));
  }
  return frames;
}

TEST(FrameTest, RoundTrip) {
  const wire::Hello hello = SampleHello();
  const std::string bytes = EncodeFrame(hello);
  ASSERT_EQ(bytes.size(), hello.ByteSizeLong() + kFrameOverhead);
  EXPECT_EQ(static_cast<uint8_t>(bytes[4]), 1);

  FrameDecoder d;
  d.Feed(bytes);
  auto frames = DecodeAll(&d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, MessageType::kHello);
  auto parsed = ParseMessage<wire::Hello>(frames[0]);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->SerializeAsString(), hello.SerializeAsString());
  EXPECT_TRUE(d.Finish().ok());
}

TEST(FrameTest, ByteByByteAndManyFrames) {
  std::string stream;
  for (int i = 0; i < 50; ++i) {
    wire::Ping p;
    p.set_nonce(i);
    stream += EncodeFrame(p);
    stream += EncodeFrame(SampleHello());
  }
  stream += EncodeFrame(wire::Pong());  // empty payload
  FrameDecoder d;
  std::vector<Frame> frames;
  for (char c : stream) {
    d.Feed(std::string_view(&c, 1));
    auto more = DecodeAll(&d);
    for (auto& f : more) frames.push_back(std::move(f));
  }
  ASSERT_EQ(frames.size(), 101u);
  for (int i = 0; i < 50; ++i) {
    auto p = ParseMessage<wire::Ping>(frames[2 * i]);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->nonce(), static_cast<uint64_t>(i));
  }
  EXPECT_EQ(frames.back().type, MessageType::kPong);
  EXPECT_TRUE(frames.back().payload.empty());
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_TRUE(d.Finish().ok());
}

TEST(FrameTest, OversizedFrameIsStickyProtocolError) {
  FrameDecoder d;
  const std::string header = {'\x00', '\x98', '\x96', '\x7f'};  // 9999999
  d.Feed(header);
  auto r = d.Next();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kProtocol);
  EXPECT_EQ(r.status().message(), "frame of 9999999 bytes exceeds limit 8388608");
  d.Feed(EncodeFrame(wire::Ping()));  // ignored: sticky
  auto again = d.Next();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), r.status().message());
  EXPECT_FALSE(d.Finish().ok());
}

TEST(FrameTest, ConfigurableLimit) {
  wire::SnapshotChunk c;
  c.set_data(std::string(2000, 'x'));
  const std::string bytes = EncodeFrame(c);
  FrameDecoder small(1000);
  small.Feed(bytes);
  EXPECT_FALSE(small.Next().ok());
  FrameDecoder big(bytes.size() - 4);  // the limit is inclusive
  big.Feed(bytes);
  auto r = big.Next();
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
}

TEST(FrameTest, TooShortFrame) {
  FrameDecoder d;
  d.Feed(std::string("\x00\x00\x00\x03\x08\x00\x00", 7));
  auto r = d.Next();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kProtocol);
  EXPECT_NE(r.status().message().find("shorter than the minimum"), std::string::npos);
}

TEST(FrameTest, Truncated) {
  const std::string bytes = EncodeFrame(SampleHello());
  FrameDecoder d;
  d.Feed(bytes.substr(0, bytes.size() - 3));
  auto r = d.Next();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  Status s = d.Finish();
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.message().rfind("truncated", 0), 0u) << s.message();
  EXPECT_FALSE(d.Next().ok());  // sticky

  FrameDecoder d2;
  d2.Feed(bytes.substr(0, 2));
  EXPECT_EQ(d2.Finish().code(), Code::kCorruption);
}

TEST(FrameTest, BadChecksum) {
  std::string bytes = EncodeFrame(SampleHello());
  bytes[10] ^= 0x01;  // a payload byte
  FrameDecoder d;
  d.Feed(bytes);
  auto r = d.Next();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_EQ(r.status().message().rfind("frame checksum mismatch", 0), 0u);

  std::string crc_flip = EncodeFrame(SampleHello());
  crc_flip.back() ^= 0x80;
  FrameDecoder d2;
  d2.Feed(crc_flip);
  EXPECT_EQ(d2.Next().status().code(), Code::kCorruption);
}

TEST(FrameTest, UnknownType) {
  std::string body = "\x4d";  // 77
  const uint32_t crc = Crc32(body.data(), body.size());
  std::string bytes = {'\x00', '\x00', '\x00', '\x05'};
  bytes += body;
  for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<char>(crc >> s));
  FrameDecoder d;
  d.Feed(bytes);
  auto r = d.Next();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kProtocol);
  EXPECT_EQ(r.status().message(), "unknown message type 77");
  // Type 0 is not a message either.
  FrameDecoder d0;
  d0.Feed(std::string("\x00\x00\x00\x05\x00", 5));
  EXPECT_FALSE(d0.Next().ok());
}

TEST(FrameTest, UndecodablePayloadAndWrongType) {
  Frame f;
  f.type = MessageType::kHello;
  f.payload = "\xff\xff\xff\xff\xff";  // invalid tag/varint
  auto r = ParseMessage<wire::Hello>(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("undecodable Hello payload"), std::string::npos);

  f.type = MessageType::kPing;
  f.payload.clear();
  auto wrong = ParseMessage<wire::Hello>(f);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kProtocol);
  EXPECT_EQ(wrong.status().message(), "expected Hello frame, got Ping");
}

TEST(FrameTest, BulkIndexCompleteIsSmall) {
  wire::BulkIndexComplete b;
  b.set_owner(UuidToWire(NewUuidV7()));
  b.set_location(UuidToWire(NewUuidV7()));
  b.set_entry_count(1000000);
  b.set_max_seq(INT64_C(123456789012));
  b.set_epoch(0xFFFFFFFFFFFFFFFFull);
  b.set_time_ms(INT64_C(1718000000000));
  const std::string bytes = EncodeFrame(b);
  std::printf("BulkIndexComplete frame: %zu bytes\n", bytes.size());
  EXPECT_LT(bytes.size(), 100u);
}

TEST(FrameTest, EveryTypeRoundTrips) {
  std::string stream;
  stream += EncodeFrame(wire::Hello());
  stream += EncodeFrame(wire::StateChange());
  stream += EncodeFrame(wire::StateBatch());
  stream += EncodeFrame(wire::StateRequest());
  stream += EncodeFrame(wire::Credit());
  stream += EncodeFrame(wire::BulkIndexComplete());
  stream += EncodeFrame(wire::Current());
  stream += EncodeFrame(wire::Ping());
  stream += EncodeFrame(wire::Pong());
  stream += EncodeFrame(wire::Error());
  stream += EncodeFrame(wire::SnapshotOffer());
  stream += EncodeFrame(wire::SnapshotRequest());
  stream += EncodeFrame(wire::SnapshotChunk());
  FrameDecoder d;
  d.Feed(stream);
  auto frames = DecodeAll(&d);
  ASSERT_EQ(frames.size(), 13u);
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(frames[i].type), i + 1);
    EXPECT_NE(MessageTypeName(frames[i].type).rfind("type ", 0), 0u);
  }
}

TEST(ConvertTest, EntryRoundTripAndBadUuid) {
  EntryRecord e;
  e.uuid = NewUuidV7();
  e.location = NewUuidV7();
  e.name = std::string("we\xff\x00ird\n", 8);
  e.extension = "";
  e.kind = EntryKind::kSymlink;
  e.size = 7;
  e.created_ns = -5;
  e.modified_ns = INT64_MIN;
  e.accessed_ns = INT64_MAX;
  e.seq = Seq(9);
  e.deleted = true;
  wire::StateChange change;
  EntryToWire(e, change.mutable_entry());
  Frame f{MessageType::kStateChange, change.SerializeAsString()};
  auto parsed = ParseMessage<wire::StateChange>(f);
  ASSERT_TRUE(parsed.ok());
  auto back = EntryFromWire(parsed->entry());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, e);

  wire::Entry bad = parsed->entry();
  bad.set_uuid("short");
  EXPECT_EQ(EntryFromWire(bad).status().code(), Code::kProtocol);
  EXPECT_EQ(EntryFromWire(bad).status().message(), "entry uuid: uuid of 5 bytes");
  bad = parsed->entry();
  bad.set_kind(static_cast<wire::EntryKind>(9));
  EXPECT_FALSE(EntryFromWire(bad).ok());
}

TEST(ConvertTest, ErrorMapping) {
  wire::Error e = ErrorToWire(Corruption("frame checksum mismatch"), 5);
  EXPECT_EQ(e.code(), wire::ERROR_CORRUPTION);
  EXPECT_EQ(e.request_id(), 5u);
  Status s = ErrorFromWire(e, "laptop");
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.message(), "peer laptop: frame checksum mismatch");
  e.set_code(wire::ERROR_WRONG_LIBRARY);
  EXPECT_EQ(ErrorFromWire(e, "x").code(), Code::kPermissionDenied);
  e.set_code(static_cast<wire::ErrorCode>(1000));
  EXPECT_FALSE(ErrorFromWire(e, "x").ok());
}

}  // namespace
}  // namespace entrysync
