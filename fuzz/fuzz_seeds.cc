// Writes seed inputs for a fuzzer: fuzz_seeds HARNESS DIR, HARNESS one of
// frame_fuzzer, message_fuzzer, batch_fuzzer, snapshot_fuzzer,
// session_fuzzer (`fuzz_seeds --list` prints them).
// Seeds are valid inputs (real frames of every message type, batches,
// compressed payloads, snapshot files, whole session exchanges with the
// identities of fuzz_common.h) so the fuzzers start past the checksums and
// the handshake and reach the decoders and handlers.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/hash.h"
#include "fuzz_common.h"
#include "proto/batch.h"
#include "proto/batch_codec.h"
#include "proto/compress.h"
#include "proto/convert.h"
#include "proto/frame.h"
#include "proto/testdata.h"
#include "snapshot/snapshot.h"

namespace es = entrysync;
namespace fs = std::filesystem;

namespace {

using Seeds = std::vector<std::string>;

void Die(const std::string& why) {
  std::fprintf(stderr, "fuzz_seeds: %s\n", why.c_str());
  std::exit(1);
}

std::string WithSize(char mode, const es::Compressed& c, size_t raw) {
  std::string s(1, mode);
  s.push_back(static_cast<char>(raw >> 16));
  s.push_back(static_cast<char>(raw >> 8));
  s.push_back(static_cast<char>(raw));
  return s + c.bytes;
}

std::string Sha256Of(const std::string& bytes) {
  es::Sha256 h;
  h.Update(bytes);
  auto d = h.Finish();
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

// Alpha's index as the fuzz harnesses know it (fuzz::MakeDeviceLibrary):
// its rows, and its snapshot file with 512-byte pages (small for a fuzzer).
struct Alpha {
  std::vector<es::EntryRecord> entries;
  std::vector<es::LocationRecord> locations;
  std::string snapshot;
};

Alpha MakeAlpha() {
  const std::string dir = es::fuzz::ScratchRoot() + "/entrysync-fuzz-seeds-" + std::to_string(::getpid());
  Alpha a;
  {
    auto lib = es::fuzz::MakeDeviceLibrary(dir + "/alpha", "alpha", es::fuzz::AlphaUuid(),
                                           es::fuzz::AlphaId(), es::fuzz::AlphaEpoch(), 3);
    if (!lib.ok()) Die(lib.status().message());
    es::Library& l = **lib;
    es::Status s =
        l.ScanOwnerEntries(l.local_device(), es::Seq(0), es::Seq(1000), 0, [&](es::EntryRecord&& e) {
          a.entries.push_back(std::move(e));
          return true;
        });
    if (!s.ok()) Die(s.message());
    auto locs = l.ListLocations(l.local_device());
    if (!locs.ok()) Die(locs.status().message());
    for (const auto& loc : *locs) a.locations.push_back(loc.record);
    auto snapshot = es::fuzz::SmallSnapshot(l, dir + "/alpha.snapshot");
    if (!snapshot.ok()) Die(snapshot.status().message());
    a.snapshot = *snapshot;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return a;
}

// One realistic message of every kind, with its frame type.
std::vector<std::pair<es::MessageType, std::string>> Messages(const Alpha& a) {
  using T = es::MessageType;
  const std::string alpha = es::UuidToWire(es::fuzz::AlphaUuid());
  const std::string beta = es::UuidToWire(es::fuzz::BetaUuid());
  const uint64_t epoch = es::fuzz::AlphaEpoch().value();
  std::vector<std::pair<T, std::string>> out;
  auto add = [&](T t, const google::protobuf::Message& m) { out.emplace_back(t, m.SerializeAsString()); };

  es::wire::Hello hello;
  hello.set_protocol_version(1);
  hello.set_library_id(es::UuidToWire(es::fuzz::LibraryId()));
  hello.set_device_id(es::DeviceIdToWire(es::fuzz::AlphaId()));
  hello.set_device_uuid(alpha);
  hello.set_device_name("alpha");
  hello.add_codecs(es::wire::CODEC_ZSTD);
  hello.add_codecs(es::wire::CODEC_GZIP);
  hello.set_max_batch_records(1000);
  hello.set_max_frame_bytes(8 << 20);
  auto* w = hello.add_watermarks();
  w->set_owner(beta);
  w->set_owner_name("beta");
  w->set_epoch(es::fuzz::BetaEpoch().value());
  w->set_seq(2);
  auto* o = hello.add_owners();
  o->set_owner(alpha);
  o->set_name("alpha");
  o->set_epoch(epoch);
  o->set_max_seq(3);
  o->set_entry_count(3);
  add(T::kHello, hello);

  es::wire::StateChange change;
  change.set_owner(alpha);
  change.set_epoch(epoch);
  es::EntryToWire(a.entries.back(), change.mutable_entry());
  add(T::kStateChange, change);
  es::wire::StateChange loc_change;
  loc_change.set_owner(alpha);
  es::LocationToWire(a.locations[0], loc_change.mutable_location());
  add(T::kStateChange, loc_change);

  es::BatchHeader h;
  h.owner = es::fuzz::AlphaUuid();
  h.epoch = es::fuzz::AlphaEpoch();
  h.transfer_id = 1;
  h.codec = es::Codec::kNone;
  add(T::kStateBatch, *es::BuildLocationBatch(h, a.locations));
  add(T::kStateBatch, *es::BuildEntryBatch(h, a.entries));
  const auto tree = es::testdata::GenerateTree(40, 7);
  h.codec = es::Codec::kZstd;
  add(T::kStateBatch, *es::BuildEntryBatch(h, std::span(tree).first(20)));
  h.codec = es::Codec::kGzip;
  add(T::kStateBatch, *es::BuildEntryBatch(h, std::span(tree).first(20)));

  es::wire::StateRequest req;
  req.set_request_id(7);
  req.set_owner(beta);
  req.set_max_batches(4);
  req.set_strategy(es::wire::STRATEGY_BATCH);
  add(T::kStateRequest, req);
  req.set_folder_path("/data");
  add(T::kStateRequest, req);

  es::wire::Credit credit;
  credit.set_transfer_id(7);
  credit.set_batches(2);
  credit.mutable_ack()->set_owner(beta);
  credit.mutable_ack()->set_epoch(es::fuzz::BetaEpoch().value());
  credit.mutable_ack()->set_seq(3);
  add(T::kCredit, credit);

  es::wire::BulkIndexComplete bulk;
  bulk.set_owner(alpha);
  bulk.set_location(es::UuidToWire(a.locations[0].uuid));
  bulk.set_entry_count(1000000);
  bulk.set_max_seq(5);
  bulk.set_epoch(epoch);
  bulk.set_time_ms(1700000000000);
  add(T::kBulkIndexComplete, bulk);

  es::wire::Current current;
  current.set_owner(alpha);
  current.set_epoch(epoch);
  current.set_seq(3);
  current.set_transfer_id(1);
  add(T::kCurrent, current);

  es::wire::Ping ping;
  ping.set_nonce(7);
  add(T::kPing, ping);
  es::wire::Pong pong;
  pong.set_nonce(7);
  add(T::kPong, pong);

  es::wire::Error error;
  error.set_code(es::wire::ERROR_NOT_FOUND);
  error.set_message("no such owner");
  error.set_request_id(1);
  add(T::kError, error);

  es::wire::SnapshotOffer offer;
  offer.set_owner(alpha);
  offer.set_epoch(epoch);
  offer.set_max_seq(3);
  offer.set_size(a.snapshot.size());
  offer.set_sha256(Sha256Of(a.snapshot));
  offer.set_transfer_id(1);
  offer.set_entry_count(3);
  add(T::kSnapshotOffer, offer);

  es::wire::SnapshotRequest sreq;
  sreq.set_owner(beta);
  sreq.set_sha256(std::string(32, 'Z'));  // session_fuzzer: the digest beta offered
  sreq.set_transfer_id(9);
  sreq.set_max_chunks(2);
  add(T::kSnapshotRequest, sreq);

  es::wire::SnapshotChunk chunk;
  chunk.set_owner(alpha);
  chunk.set_transfer_id(1);
  const es::Compressed z = es::CompressPayload(es::Codec::kZstd, a.snapshot);
  chunk.set_codec(es::CodecToWire(z.codec));
  chunk.set_raw_size(static_cast<uint32_t>(a.snapshot.size()));
  chunk.set_data(z.bytes);
  chunk.set_last(true);
  add(T::kSnapshotChunk, chunk);

  // Types this file does not know yet (appended to frame.h later): an
  // empty message of each, so every type has a seed.
  std::map<T, bool> seen;
  for (const auto& [t, payload] : out) seen[t] = true;
  for (T t : es::fuzz::KnownMessageTypes())
    if (!seen.count(t)) out.emplace_back(t, std::string());
  return out;
}

std::string Frame(es::MessageType t, const std::string& payload) {
  return es::fuzz::FrameOf(static_cast<uint8_t>(t), payload);
}

Seeds FrameSeeds(const Alpha& a) {
  const auto msgs = Messages(a);
  std::string stream;
  for (const auto& [t, payload] : msgs) stream += Frame(t, payload);
  Seeds s = {'\x00' + stream, '\x07' + stream.substr(0, stream.size() / 2), '\x3f' + stream};
  for (const auto& [t, payload] : msgs) s.push_back('\x05' + Frame(t, payload));
  return s;
}

Seeds MessageSeeds(const Alpha& a) {
  Seeds s;
  for (const auto& [t, payload] : Messages(a)) s.push_back(static_cast<char>(t) + payload);
  return s;
}

Seeds BatchSeeds(const Alpha& a) {
  const auto tree = es::testdata::GenerateTree(40, 7);
  const std::string entries = es::EncodeEntries(tree);
  const std::string locations = es::EncodeLocations(a.locations);
  const std::string owner = es::UuidToWire(es::fuzz::AlphaUuid());
  es::BatchHeader h;
  h.owner = es::fuzz::AlphaUuid();
  h.epoch = es::Epoch(12345);
  Seeds s;
  s.push_back('\x00' + entries);
  s.push_back('\x01' + locations);
  s.push_back(WithSize('\x02', es::CompressPayload(es::Codec::kZstd, entries), entries.size()));
  s.push_back(WithSize('\x03', es::CompressPayload(es::Codec::kGzip, entries), entries.size()));
  s.push_back(WithSize('\x04', {es::Codec::kNone, "abc"}, 3));
  s.push_back('\x05' + entries.substr(0, 300));
  h.codec = es::Codec::kZstd;
  s.push_back('\x06' + es::BuildEntryBatch(h, std::span(tree).first(12))->SerializeAsString());
  h.codec = es::Codec::kNone;
  s.push_back('\x06' + es::BuildEntryBatch(h, std::span(tree).first(5))->SerializeAsString());
  s.push_back(std::string("\x07\x00", 2) + owner + entries);
  s.push_back(std::string("\x07\x00", 2) + owner + es::EncodeEntries(a.entries));
  s.push_back(std::string("\x07\x00", 2) + owner + locations);
  return s;
}

Seeds SnapshotSeeds(const Alpha& a) {
  // Flags: bit 0 repairs the header, bit 1 imports with the file's digest,
  // bit 2 makes the file by running SQL on a valid snapshot.
  Seeds s = {'\x00' + a.snapshot, '\x01' + a.snapshot, '\x02' + a.snapshot, '\x03' + a.snapshot};
  const std::string beta_location =
      es::HexEncode(es::fuzz::DeviceLocationUuid(es::fuzz::BetaUuid()).bytes.data(), 16);
  const std::string beta_entry =
      es::HexEncode(es::fuzz::DeviceEntryUuid(es::fuzz::BetaUuid(), 1).bytes.data(), 16);
  const std::vector<std::string> edits = {
      "",
      "UPDATE meta SET value = 7 WHERE key = 'entries';",
      "UPDATE meta SET value = x'00' WHERE key = 'owner_uuid';",
      "UPDATE meta SET value = 'x' WHERE key = 'epoch'; INSERT INTO meta VALUES('unknown', 1);",
      "DELETE FROM meta WHERE key = 'created_ms'; UPDATE meta SET value = -1 WHERE key = 'max_seq';",
      "DELETE FROM location; UPDATE meta SET value = 0 WHERE key = 'locations';",
      "INSERT INTO entry SELECT seq + 100, randomblob(16), location, parent, name, extension, kind, size, "
      "inode,"
      " created_ns, modified_ns, accessed_ns, content_hash, deleted FROM entry;"
      " UPDATE meta SET value = 6 WHERE key = 'entries'; UPDATE meta SET value = 200 WHERE key = 'max_seq';",
      "UPDATE entry SET kind = 7, deleted = 3, parent = x'01', content_hash = x'';",
      "UPDATE entry SET uuid = (SELECT uuid FROM entry LIMIT 1);",
      "UPDATE entry SET location = 99;",
      "UPDATE location SET uuid = x'" + beta_location + "';",
      "UPDATE entry SET uuid = x'" + beta_entry + "' WHERE seq = 3;",
      "UPDATE meta SET value = x'" + es::HexEncode(es::fuzz::BetaUuid().bytes.data(), 16) +
          "' WHERE key = 'owner_uuid';",
      "CREATE TABLE rows AS SELECT * FROM entry; DROP TABLE entry; CREATE VIEW entry AS SELECT * FROM rows;",
      "CREATE INDEX by_uuid ON entry(uuid); CREATE TRIGGER t AFTER INSERT ON meta BEGIN SELECT 1; END;",
      "PRAGMA application_id = 0; PRAGMA user_version = 2;",
  };
  for (const std::string& sql : edits) {
    s.push_back('\x04' + sql);
    s.push_back('\x06' + sql);
  }
  return s;
}

// A session_fuzzer record: ctl, u16 length, payload.
std::string Rec(uint8_t ctl, const std::string& payload) {
  std::string r(1, static_cast<char>(ctl));
  r.push_back(static_cast<char>(payload.size() >> 8));
  r.push_back(static_cast<char>(payload.size()));
  return r + payload;
}
std::string Rec(uint8_t ctl, es::MessageType t, const google::protobuf::Message& m) {
  return Rec(static_cast<uint8_t>(ctl | static_cast<uint8_t>(t)), m.SerializeAsString());
}

Seeds SessionSeeds(const Alpha& a) {
  using T = es::MessageType;
  constexpr uint8_t kRun = 0x80;  // the loop runs before the frame
  const std::string alpha = es::UuidToWire(es::fuzz::AlphaUuid());
  const std::string beta = es::UuidToWire(es::fuzz::BetaUuid());
  const uint64_t epoch = es::fuzz::AlphaEpoch().value();
  const std::string hello = Rec(0, "");  // alpha's valid Hello as it is
  Seeds s;

  // Beta pulls alpha's 3 rows (its request id 1) as batches, then alpha
  // pulls beta's rows as batches under credit, then says it is done.
  {
    es::BatchHeader h;
    h.owner = es::fuzz::AlphaUuid();
    h.epoch = es::fuzz::AlphaEpoch();
    h.transfer_id = 1;
    h.codec = es::Codec::kZstd;
    auto locs = *es::BuildLocationBatch(h, a.locations);
    locs.set_from_seq(0);
    auto rows = *es::BuildEntryBatch(h, a.entries);
    rows.set_from_seq(0);
    es::wire::Current cur;
    cur.set_owner(alpha);
    cur.set_epoch(epoch);
    cur.set_seq(3);
    cur.set_transfer_id(1);
    es::wire::StateRequest req;
    req.set_request_id(7);
    req.set_owner(beta);
    req.set_max_batches(1);
    req.set_strategy(es::wire::STRATEGY_BATCH);
    es::wire::Credit credit;
    credit.set_transfer_id(7);
    credit.set_batches(4);
    credit.mutable_ack()->set_owner(beta);
    credit.mutable_ack()->set_epoch(es::fuzz::BetaEpoch().value());
    credit.mutable_ack()->set_seq(3);
    es::wire::Current done;
    s.push_back(hello + Rec(kRun, T::kStateBatch, locs) + Rec(0, T::kStateBatch, rows) +
                Rec(0, T::kCurrent, cur) + Rec(kRun, T::kStateRequest, req) + Rec(kRun, T::kCredit, credit) +
                Rec(kRun, T::kCurrent, done));
    // The same rows as StateChanges, then a notice of more and chatter.
    std::string changes = hello;
    for (const auto& e : a.entries) {
      es::wire::StateChange c;
      c.set_owner(alpha);
      c.set_epoch(epoch);
      es::EntryToWire(e, c.mutable_entry());
      changes += Rec(kRun, T::kStateChange, c);
    }
    es::wire::BulkIndexComplete bulk;
    bulk.set_owner(alpha);
    bulk.set_entry_count(2);
    bulk.set_max_seq(5);
    bulk.set_epoch(epoch);
    es::wire::Ping ping;
    ping.set_nonce(1);
    es::wire::Error err;
    err.set_code(es::wire::ERROR_INTERNAL);
    err.set_message("cannot serve");
    err.set_request_id(2);
    s.push_back(changes + Rec(0, T::kCurrent, cur) + Rec(kRun, T::kBulkIndexComplete, bulk) +
                Rec(0, T::kPing, ping) + Rec(kRun, T::kError, err));
    // Alpha asks beta for a folder, then for its rows as StateChanges.
    req.set_folder_path("/data");
    req.set_request_id(3);
    es::wire::StateRequest plain;
    plain.set_request_id(4);
    plain.set_owner(beta);
    s.push_back(hello + Rec(kRun, T::kStateRequest, req) + Rec(kRun, T::kStateRequest, plain));
  }

  // After that pull, alpha pushes rows that reuse the uuids of beta's own
  // location and entry (a peer must never take over this device's rows).
  {
    es::BatchHeader h;
    h.owner = es::fuzz::AlphaUuid();
    h.epoch = es::fuzz::AlphaEpoch();
    h.transfer_id = 1;
    h.codec = es::Codec::kNone;
    auto locs = *es::BuildLocationBatch(h, a.locations);
    locs.set_from_seq(0);
    auto rows = *es::BuildEntryBatch(h, a.entries);
    rows.set_from_seq(0);
    es::wire::Current cur;
    cur.set_owner(alpha);
    cur.set_epoch(epoch);
    cur.set_seq(3);
    cur.set_transfer_id(1);
    es::EntryRecord stolen = a.entries.back();
    stolen.uuid = es::fuzz::DeviceEntryUuid(es::fuzz::BetaUuid(), 1);
    stolen.seq = es::Seq(9);
    es::wire::StateChange change;
    change.set_owner(alpha);
    change.set_epoch(epoch);
    es::EntryToWire(stolen, change.mutable_entry());
    es::LocationRecord taken = a.locations[0];
    taken.uuid = es::fuzz::DeviceLocationUuid(es::fuzz::BetaUuid());
    taken.seq = es::Seq(10);
    h.transfer_id = 0;  // a live push of locations
    auto push = *es::BuildLocationBatch(h, std::span(&taken, 1));
    const std::string pulled =
        hello + Rec(kRun, T::kStateBatch, locs) + Rec(0, T::kStateBatch, rows) + Rec(0, T::kCurrent, cur);
    s.push_back(pulled + Rec(kRun, T::kStateChange, change));
    s.push_back(pulled + Rec(kRun, T::kStateBatch, push));
  }

  // Beta is offered alpha's snapshot, asks for it, gets it in two chunks
  // (raw, then zstd) and imports it.
  {
    es::wire::SnapshotOffer offer;
    offer.set_owner(alpha);
    offer.set_epoch(epoch);
    offer.set_max_seq(3);
    offer.set_size(a.snapshot.size());
    offer.set_sha256(Sha256Of(a.snapshot));
    offer.set_transfer_id(1);
    offer.set_entry_count(3);
    const size_t half = a.snapshot.size() / 2;
    es::wire::SnapshotChunk first;
    first.set_owner(alpha);
    first.set_transfer_id(1);
    first.set_data(a.snapshot.substr(0, half));
    es::wire::SnapshotChunk second = first;
    second.set_offset(half);
    const es::Compressed z = es::CompressPayload(es::Codec::kZstd, a.snapshot.substr(half));
    second.set_codec(es::CodecToWire(z.codec));
    second.set_raw_size(static_cast<uint32_t>(a.snapshot.size() - half));
    second.set_data(z.bytes);
    second.set_last(true);
    s.push_back(hello + Rec(kRun, T::kSnapshotOffer, offer) + Rec(kRun, T::kSnapshotChunk, first) +
                Rec(0, T::kSnapshotChunk, second) + Rec(kRun, T::kCurrent, es::wire::Current()));
  }

  // Alpha forces a snapshot of beta's index, then asks for its bytes.
  {
    es::wire::StateRequest req;
    req.set_request_id(9);
    req.set_owner(beta);
    req.set_max_batches(2);
    req.set_strategy(es::wire::STRATEGY_SNAPSHOT);
    es::wire::SnapshotRequest sreq;
    sreq.set_owner(beta);
    sreq.set_sha256(std::string(32, 'Z'));  // session_fuzzer: the digest beta offered
    sreq.set_transfer_id(9);
    sreq.set_max_chunks(2);
    es::wire::Credit more;
    more.set_transfer_id(9);
    more.set_batches(8);
    s.push_back(hello + Rec(kRun, T::kStateRequest, req) + Rec(kRun, T::kSnapshotRequest, sreq) +
                Rec(kRun, T::kCredit, more));
  }

  // Hello variants: what alpha holds of beta, small frames, gzip only; and
  // a refused one (another protocol version).
  {
    es::wire::Hello ext;
    auto* w = ext.add_watermarks();
    w->set_owner(beta);
    w->set_epoch(es::fuzz::BetaEpoch().value());
    w->set_seq(1);
    ext.set_max_frame_bytes(64 << 10);
    ext.set_max_batch_records(1);
    s.push_back(Rec(0, ext.SerializeAsString()) + Rec(kRun, T::kCurrent, es::wire::Current()));
    es::wire::Hello v2;
    v2.set_protocol_version(2);
    s.push_back(Rec(0, v2.SerializeAsString()));
  }
  return s;
}

const std::map<std::string, std::function<Seeds(const Alpha&)>>& Harnesses() {
  static const std::map<std::string, std::function<Seeds(const Alpha&)>> m = {
      {"frame_fuzzer", FrameSeeds},       {"message_fuzzer", MessageSeeds}, {"batch_fuzzer", BatchSeeds},
      {"snapshot_fuzzer", SnapshotSeeds}, {"session_fuzzer", SessionSeeds},
  };
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--list") {
    for (const auto& [name, fn] : Harnesses()) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (argc != 3 || !Harnesses().count(argv[1])) {
    std::fprintf(stderr, "usage: fuzz_seeds HARNESS DIR (fuzz_seeds --list names them)\n");
    return 2;
  }
  const Seeds seeds = Harnesses().at(argv[1])(MakeAlpha());
  for (size_t i = 0; i < seeds.size(); ++i)
    std::ofstream(std::string(argv[2]) + "/seed-" + std::to_string(i), std::ios::binary) << seeds[i];
  return 0;
}
