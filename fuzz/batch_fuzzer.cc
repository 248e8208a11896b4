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
//   7  Wraps the bytes (columnar records) in a StateBatch whose header is
//      right: CRC-32, sizes, codec none, and the record count and seq
//      range the records decode to (unless flag bit 0 asks for the ones in
//      the input). Mode 6 rarely gets past the checksum; this reaches the
//      decoders and the header cross-checks through the openers the sync
//      layer calls. Property: a batch whose header matches its records
//      opens, to exactly those records.
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/hash.h"
#include "fuzz_common.h"
#include "proto/batch.h"
#include "proto/batch_codec.h"
#include "proto/compress.h"
#include "proto/varint.h"

namespace es = entrysync;
using es::fuzz::Check;
using es::fuzz::Source;

namespace {

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
  Check(back.ok() && *back == v, "records built from the input round-trip");
}

// Mode 7: `in` = flags byte, then 16 owner bytes, then columnar records.
void WrappedBatch(std::string_view in) {
  Source src(in);
  const uint8_t flags = src.U8();
  const std::string owner(src.Bytes(16));
  const std::string_view records = src.Rest();
  es::wire::StateBatch b;
  b.set_owner(owner);
  b.set_codec(es::wire::CODEC_NONE);
  b.set_payload(std::string(records));
  b.set_uncompressed_size(static_cast<uint32_t>(records.size()));
  b.set_checksum(es::Crc32(records.data(), records.size()));
  const bool locations = !records.empty() && records[0] == 'L';
  b.set_model(locations ? es::wire::MODEL_LOCATION : es::wire::MODEL_ENTRY);
  std::optional<size_t> count;
  int64_t lo = 0, hi = 0;
  auto range = [&](const auto& rows) {
    count = rows.size();
    for (size_t i = 0; i < rows.size(); ++i) {
      lo = i == 0 ? rows[i].seq.value() : std::min(lo, rows[i].seq.value());
      hi = i == 0 ? rows[i].seq.value() : std::max(hi, rows[i].seq.value());
    }
  };
  auto entries = es::DecodeEntries(records);
  auto locs = es::DecodeLocations(records);
  if (entries.ok()) range(*entries);
  if (locs.ok()) range(*locs);
  const bool header_from_input = flags & 1;
  if (header_from_input || !count) {
    b.set_record_count(static_cast<uint32_t>(src.U64()));
    b.set_first_seq(static_cast<int64_t>(src.U64()));
    b.set_last_seq(static_cast<int64_t>(src.U64()));
  } else {
    b.set_record_count(static_cast<uint32_t>(*count));
    b.set_first_seq(lo);
    b.set_last_seq(hi);
  }
  es::BatchLimits limits;
  limits.max_uncompressed_bytes = 1 << 20;
  auto opened_entries = es::OpenEntryBatch(b, limits);
  auto opened_locations = es::OpenLocationBatch(b, limits);
  const bool matches = count && owner.size() == 16 && !header_from_input && *count <= limits.max_records;
  if (matches && entries.ok() && !locations)
    Check(opened_entries.ok() && *opened_entries == *entries, "a well-formed entry batch opens");
  if (matches && locs.ok() && locations)
    Check(opened_locations.ok() && *opened_locations == *locs, "a well-formed location batch opens");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 8;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (mode) {
    case 0: {
      auto r = es::DecodeEntries(in);
      if (r.ok()) {
        auto again = es::DecodeEntries(es::EncodeEntries(*r));
        Check(again.ok() && *again == *r, "decoded entries re-encode to themselves");
      }
      break;
    }
    case 1: {
      auto r = es::DecodeLocations(in);
      if (r.ok()) {
        auto again = es::DecodeLocations(es::EncodeLocations(*r));
        Check(again.ok() && *again == *r, "decoded locations re-encode to themselves");
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
      if (r.ok()) Check(r->size() == expected, "decompression yields the expected size");
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
    case 7:
      WrappedBatch(in);
      break;
  }
  return 0;
}
