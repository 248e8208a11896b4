// Writes seed inputs for the fuzzers: fuzz_seeds <frame_fuzzer|batch_fuzzer> DIR
// Seeds are valid inputs (real frames, batches, compressed payloads) so the
// fuzzers start past the checksums and reach the decoders.
#include <cstdio>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "proto/batch.h"
#include "proto/batch_codec.h"
#include "proto/compress.h"
#include "proto/convert.h"
#include "proto/frame.h"
#include "proto/testdata.h"

namespace es = entrysync;

namespace {

void Write(const std::string& dir, int i, const std::string& bytes) {
  std::ofstream(dir + "/seed-" + std::to_string(i), std::ios::binary) << bytes;
}

std::string WithSize(char mode, const es::Compressed& c, size_t raw) {
  std::string s(1, mode);
  s.push_back(static_cast<char>(raw >> 16));
  s.push_back(static_cast<char>(raw >> 8));
  s.push_back(static_cast<char>(raw));
  return s + c.bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_seeds <frame_fuzzer|batch_fuzzer> DIR\n");
    return 2;
  }
  const std::string which = argv[1], dir = argv[2];
  const auto tree = es::testdata::GenerateTree(40, 7);
  std::vector<es::LocationRecord> locs(2);
  locs[0].uuid = es::NewUuidV7();
  locs[0].root_path = "/home/ann";
  locs[0].name = "home";
  locs[0].seq = es::Seq(1);
  locs[1] = locs[0];
  locs[1].deleted = true;
  locs[1].seq = es::Seq(2);
  es::BatchHeader h;
  h.owner = es::NewUuidV7();
  h.epoch = es::Epoch(12345);
  std::vector<std::string> seeds;

  if (which == "frame_fuzzer") {
    std::string stream;
    es::wire::Hello hello;
    hello.set_protocol_version(1);
    hello.set_device_uuid(es::UuidToWire(h.owner));
    hello.set_device_id(std::string(32, 'd'));
    hello.add_codecs(es::wire::CODEC_ZSTD);
    stream += es::EncodeFrame(hello);
    for (es::Codec c : {es::Codec::kZstd, es::Codec::kGzip, es::Codec::kNone}) {
      h.codec = c;
      stream += es::EncodeFrame(*es::BuildEntryBatch(h, std::span(tree).first(10)));
    }
    stream += es::EncodeFrame(*es::BuildLocationBatch(h, locs));
    es::wire::StateChange change;
    es::EntryToWire(tree[3], change.mutable_entry());
    stream += es::EncodeFrame(change);
    es::wire::BulkIndexComplete bulk;
    bulk.set_owner(es::UuidToWire(h.owner));
    bulk.set_entry_count(1000000);
    stream += es::EncodeFrame(bulk);
    es::wire::Ping ping;
    ping.set_nonce(7);
    stream += es::EncodeFrame(ping);
    seeds.push_back('\x00' + stream);
    seeds.push_back('\x07' + stream.substr(0, stream.size() / 2));
    seeds.push_back('\x3f' + es::EncodeFrame(change));
  } else if (which == "batch_fuzzer") {
    const std::string entries = es::EncodeEntries(tree);
    seeds.push_back('\x00' + entries);
    seeds.push_back('\x01' + es::EncodeLocations(locs));
    seeds.push_back(WithSize('\x02', es::CompressPayload(es::Codec::kZstd, entries), entries.size()));
    seeds.push_back(WithSize('\x03', es::CompressPayload(es::Codec::kGzip, entries), entries.size()));
    seeds.push_back(WithSize('\x04', {es::Codec::kNone, "abc"}, 3));
    seeds.push_back('\x05' + entries.substr(0, 300));
    h.codec = es::Codec::kZstd;
    seeds.push_back('\x06' + es::BuildEntryBatch(h, std::span(tree).first(12))->SerializeAsString());
    h.codec = es::Codec::kNone;
    seeds.push_back('\x06' + es::BuildEntryBatch(h, std::span(tree).first(5))->SerializeAsString());
  } else {
    std::fprintf(stderr, "unknown fuzzer %s\n", which.c_str());
    return 2;
  }
  for (size_t i = 0; i < seeds.size(); ++i) Write(dir, static_cast<int>(i), seeds[i]);
  return 0;
}
