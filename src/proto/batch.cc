#include "proto/batch.h"

#include <algorithm>
#include <climits>

#include "base/hash.h"
#include "proto/batch_codec.h"
#include "proto/convert.h"

namespace entrysync {
namespace {

template <class Record>
Result<wire::StateBatch> Build(const BatchHeader& h, std::span<const Record> records, wire::Model model,
                               std::string encoded) {
  if (records.size() > UINT32_MAX || encoded.size() > UINT32_MAX) {
    return InvalidArgument("batch of " + std::to_string(records.size()) + " records (" +
                           std::to_string(encoded.size()) + " bytes) is too large");
  }
  wire::StateBatch b;
  b.set_owner(UuidToWire(h.owner));
  b.set_epoch(h.epoch.value());
  b.set_model(model);
  b.set_transfer_id(h.transfer_id);
  b.set_batch_index(h.batch_index);
  b.set_total_batches(h.total_batches);
  b.set_total_records(h.total_records);
  if (!records.empty()) {
    auto [lo, hi] = std::minmax_element(records.begin(), records.end(),
                                        [](const Record& a, const Record& c) { return a.seq < c.seq; });
    b.set_first_seq(lo->seq.value());
    b.set_last_seq(hi->seq.value());
  }
  b.set_record_count(static_cast<uint32_t>(records.size()));
  b.set_uncompressed_size(static_cast<uint32_t>(encoded.size()));
  b.set_checksum(Crc32(encoded.data(), encoded.size()));
  Compressed c = CompressPayload(h.codec, encoded, h.compress);
  b.set_codec(CodecToWire(c.codec));
  b.set_payload(std::move(c.bytes));
  return b;
}

std::string BatchName(const wire::StateBatch& b) {
  std::string owner = b.owner().size() == 16 ? Uuid::FromBytes(b.owner().data()).ToString() : "(bad uuid)";
  return "batch " + std::to_string(b.batch_index()) + " of owner " + owner;
}

// Checks the header against limits, decompresses and verifies the checksum.
Result<std::string> Unpack(const wire::StateBatch& b, wire::Model model, const BatchLimits& limits) {
  const std::string name = BatchName(b);
  if (b.owner().size() != 16) return ProtocolError(name + ": owner uuid is not 16 bytes");
  if (b.model() != model) {
    return ProtocolError(name + ": unexpected model " + std::to_string(b.model()));
  }
  if (b.record_count() > limits.max_records) {
    return ProtocolError(name + ": " + std::to_string(b.record_count()) + " records exceed limit " +
                         std::to_string(limits.max_records));
  }
  auto codec = CodecFromWire(b.codec());
  if (!codec.ok()) return codec.status().Wrap(name);
  auto raw = Decompress(*codec, b.payload(), b.uncompressed_size(), limits.max_uncompressed_bytes);
  if (!raw.ok()) return raw.status().Wrap(name);
  if (Crc32(raw->data(), raw->size()) != b.checksum()) {
    return Corruption(name + ": checksum mismatch");
  }
  return raw;
}

template <class Record>
Status CheckDecoded(const wire::StateBatch& b, const std::vector<Record>& records) {
  if (records.size() != b.record_count()) {
    return Corruption(BatchName(b) + ": holds " + std::to_string(records.size()) + " records, header says " +
                      std::to_string(b.record_count()));
  }
  int64_t lo = 0, hi = 0;
  if (!records.empty()) {
    auto [l, h] = std::minmax_element(records.begin(), records.end(),
                                      [](const Record& a, const Record& c) { return a.seq < c.seq; });
    lo = l->seq.value();
    hi = h->seq.value();
  }
  if (lo != b.first_seq() || hi != b.last_seq()) {
    return Corruption(BatchName(b) + ": seq range " + std::to_string(lo) + ".." + std::to_string(hi) +
                      " does not match header " + std::to_string(b.first_seq()) + ".." +
                      std::to_string(b.last_seq()));
  }
  return Status::Ok();
}

}  // namespace

Result<wire::StateBatch> BuildEntryBatch(const BatchHeader& header, std::span<const EntryRecord> records) {
  return Build(header, records, wire::MODEL_ENTRY, EncodeEntries(records));
}

Result<wire::StateBatch> BuildLocationBatch(const BatchHeader& header,
                                            std::span<const LocationRecord> records) {
  return Build(header, records, wire::MODEL_LOCATION, EncodeLocations(records));
}

Result<std::vector<EntryRecord>> OpenEntryBatch(const wire::StateBatch& batch, const BatchLimits& limits) {
  ES_ASSIGN_OR_RETURN(std::string raw, Unpack(batch, wire::MODEL_ENTRY, limits));
  auto records = DecodeEntries(raw);
  if (!records.ok()) return records.status().Wrap(BatchName(batch));
  ES_RETURN_IF_ERROR(CheckDecoded(batch, *records));
  return records;
}

Result<std::vector<LocationRecord>> OpenLocationBatch(const wire::StateBatch& batch,
                                                      const BatchLimits& limits) {
  ES_ASSIGN_OR_RETURN(std::string raw, Unpack(batch, wire::MODEL_LOCATION, limits));
  auto records = DecodeLocations(raw);
  if (!records.ok()) return records.status().Wrap(BatchName(batch));
  ES_RETURN_IF_ERROR(CheckDecoded(batch, *records));
  return records;
}

}  // namespace entrysync
