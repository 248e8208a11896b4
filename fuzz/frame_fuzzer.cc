// libFuzzer harness for the frame decoder and every message parser.
//
// Input: byte 0 chooses the feeding chunk size; the rest is a byte stream
// from a hostile peer. Properties checked: no crash/UB/leak; every decoded
// frame re-encodes to a frame that decodes to the same type and payload;
// StateBatch/StateChange contents go through the same openers the sync layer
// uses.
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/hash.h"
#include "proto/batch.h"
#include "proto/convert.h"
#include "proto/frame.h"

namespace es = entrysync;

namespace {

void Check(bool cond) {
  if (!cond) std::abort();
}

template <class M>
void ParseAs(const es::Frame& frame) {
  auto m = es::ParseMessage<M>(frame);
  if (!m.ok()) return;
  if constexpr (std::is_same_v<M, es::wire::StateBatch>) {
    es::BatchLimits limits;
    limits.max_uncompressed_bytes = 1 << 20;
    limits.max_records = 10000;
    (void)es::OpenEntryBatch(*m, limits);
    (void)es::OpenLocationBatch(*m, limits);
  }
  if constexpr (std::is_same_v<M, es::wire::StateChange>) {
    if (m->has_entry()) {
      auto e = es::EntryFromWire(m->entry());
      if (e.ok()) {
        es::wire::Entry back;
        es::EntryToWire(*e, &back);
        auto again = es::EntryFromWire(back);
        Check(again.ok() && *again == *e);
      }
    }
    if (m->has_location()) (void)es::LocationFromWire(m->location());
  }
  if constexpr (std::is_same_v<M, es::wire::Hello>) {
    (void)es::UuidFromWire(m->device_uuid(), "device uuid");
    (void)es::DeviceIdFromWire(m->device_id(), "device id");
  }
}

void ParseByType(const es::Frame& f) {
  using T = es::MessageType;
  switch (f.type) {
    case T::kHello:
      return ParseAs<es::wire::Hello>(f);
    case T::kStateChange:
      return ParseAs<es::wire::StateChange>(f);
    case T::kStateBatch:
      return ParseAs<es::wire::StateBatch>(f);
    case T::kStateRequest:
      return ParseAs<es::wire::StateRequest>(f);
    case T::kCredit:
      return ParseAs<es::wire::Credit>(f);
    case T::kBulkIndexComplete:
      return ParseAs<es::wire::BulkIndexComplete>(f);
    case T::kCurrent:
      return ParseAs<es::wire::Current>(f);
    case T::kPing:
      return ParseAs<es::wire::Ping>(f);
    case T::kPong:
      return ParseAs<es::wire::Pong>(f);
    case T::kError:
      return ParseAs<es::wire::Error>(f);
    case T::kSnapshotOffer:
      return ParseAs<es::wire::SnapshotOffer>(f);
    case T::kSnapshotRequest:
      return ParseAs<es::wire::SnapshotRequest>(f);
    case T::kSnapshotChunk:
      return ParseAs<es::wire::SnapshotChunk>(f);
  }
  std::abort();  // the decoder let an unknown type through
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in string fields is expected here; keep the log quiet.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  es::FrameDecoder decoder(64 << 10);
  bool failed = false;
  while (!in.empty() && !failed) {
    const size_t n = std::min(chunk, in.size());
    decoder.Feed(in.substr(0, n));
    in.remove_prefix(n);
    while (true) {
      auto next = decoder.Next();
      if (!next.ok()) {
        failed = true;
        Check(!next.status().message().empty());
        Check(decoder.Next().status().message() == next.status().message());  // sticky
        break;
      }
      if (!next->has_value()) break;
      const es::Frame& f = **next;
      Check(f.payload.size() + 5 <= (64 << 10));
      ParseByType(f);
      // Re-encoding the raw payload must decode to the same frame.
      es::FrameDecoder again;
      std::string bytes(4, '\0');
      const uint32_t len = static_cast<uint32_t>(f.payload.size() + 5);
      for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>(len >> (24 - 8 * i));
      std::string body(1, static_cast<char>(f.type));
      body += f.payload;
      bytes += body;
      const uint32_t crc = es::Crc32(body.data(), body.size());
      for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>(crc >> (24 - 8 * i)));
      again.Feed(bytes);
      auto r = again.Next();
      Check(r.ok() && r->has_value() && (*r)->type == f.type && (*r)->payload == f.payload);
    }
  }
  (void)decoder.Finish();
  return 0;
}
