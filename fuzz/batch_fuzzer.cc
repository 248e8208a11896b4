// libFuzzer harness for the columnar batch codec and the decompressors.
//
// Byte 0 selects a mode, the rest is the input:
//   0  DecodeEntries(garbage); whatever decodes must survive
//      encode -> decode unchanged.
//   1  DecodeLocations(garbage), same property.
//   2  Decompress(zstd), 3 Decompress(gzip), 4 Decompress(none) with an
//      expected size taken from the input, limit 1 MiB.
//   5  Builds EntryRecords from the bytes and checks the round trip is exact
//      (encoder side: odd names, times, uuids, parents).
//   6  Opens a StateBatch parsed from the bytes.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proto/batch.h"
#include "proto/batch_codec.h"
#include "proto/compress.h"
#include "proto/varint.h"

namespace es = entrysync;

namespace {

void Check(bool cond) {
  if (!cond) std::abort();
}

// Pulls typed values out of the fuzz input (zeros when exhausted).
class Source {
 public:
  explicit Source(std::string_view s) : s_(s) {}
  bool empty() const { return s_.empty(); }
  uint8_t U8() {
    if (s_.empty()) return 0;
    uint8_t v = static_cast<uint8_t>(s_[0]);
    s_.remove_prefix(1);
    return v;
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | U8();
    return v;
  }
  std::string Str(size_t max) {
    size_t n = std::min<size_t>(U8() % (max + 1), s_.size());
    std::string out(s_.substr(0, n));
    s_.remove_prefix(n);
    return out;
  }

 private:
  std::string_view s_;
};

void EntryRoundTrip(std::string_view in) {
  Source src(in);
  std::vector<es::EntryRecord> v;
  while (!src.empty() && v.size() < 200) {
    es::EntryRecord e;
    const uint8_t shape = src.U8();
    if (shape & 1) {
      e.uuid = v.empty() ? es::Uuid() : v.back().uuid;
      e.uuid.bytes[15] = static_cast<uint8_t>(e.uuid.bytes[15] + src.U8());
    } else {
      for (auto& b : e.uuid.bytes) b = src.U8();
    }
    if ((shape & 6) == 2 && !v.empty()) e.parent = v[src.U8() % v.size()].uuid;
    if ((shape & 6) == 4)
      for (auto& b : e.parent.bytes) b = src.U8();
    if ((shape & 6) == 6 && !v.empty()) e.parent = v.back().parent;
    e.location = (shape & 8) && !v.empty() ? v.back().location : es::Uuid();
    e.name = src.Str(24);
    if (shape & 16) {
      e.extension = e.name.substr(src.U8() % (e.name.size() + 1));
    } else {
      e.extension = src.Str(4);
    }
    e.kind = static_cast<es::EntryKind>(src.U8() % 3);
    e.size = src.U64();
    e.inode = src.U64();
    e.modified_ns = static_cast<int64_t>(src.U64());
    e.created_ns = (shape & 32) ? e.modified_ns : static_cast<int64_t>(src.U64());
    e.accessed_ns = static_cast<int64_t>(src.U64());
    e.content_hash = (shape & 64) ? src.Str(40) : "";
    e.seq = es::Seq(static_cast<int64_t>(src.U64()));
    e.deleted = shape & 128;
    v.push_back(std::move(e));
  }
  auto back = es::DecodeEntries(es::EncodeEntries(v));
  Check(back.ok() && *back == v);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 7;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (mode) {
    case 0: {
      auto r = es::DecodeEntries(in);
      if (r.ok()) {
        auto again = es::DecodeEntries(es::EncodeEntries(*r));
        Check(again.ok() && *again == *r);
      }
      break;
    }
    case 1: {
      auto r = es::DecodeLocations(in);
      if (r.ok()) {
        auto again = es::DecodeLocations(es::EncodeLocations(*r));
        Check(again.ok() && *again == *r);
      }
      break;
    }
    case 2:
    case 3:
    case 4: {
      if (in.size() < 3) break;
      const size_t expected = (static_cast<uint8_t>(in[0]) << 16 | static_cast<uint8_t>(in[1]) << 8 |
                               static_cast<uint8_t>(in[2]));
      const es::Codec codec = mode == 2 ? es::Codec::kZstd : mode == 3 ? es::Codec::kGzip : es::Codec::kNone;
      auto r = es::Decompress(codec, in.substr(3), expected, 1 << 20);
      if (r.ok()) Check(r->size() == expected);
      break;
    }
    case 5:
      EntryRoundTrip(in);
      break;
    case 6: {
      es::wire::StateBatch b;
      if (!b.ParseFromArray(in.data(), static_cast<int>(in.size()))) break;
      es::BatchLimits limits;
      limits.max_uncompressed_bytes = 1 << 20;
      (void)es::OpenEntryBatch(b, limits);
      (void)es::OpenLocationBatch(b, limits);
      break;
    }
  }
  return 0;
}
