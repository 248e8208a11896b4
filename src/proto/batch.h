// Building and opening StateBatch messages: the two calls the sync layer
// makes per batch. Build = columnar encode + CRC-32 + compress; Open =
// limits + decompress + CRC-32 + decode + header cross-checks.
//
// Thread-safe: all functions are reentrant.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "entrysync/record.h"
#include "entrysync/status.h"
#include "entrysync/types.h"
#include "proto/compress.h"
#include "proto/entrysync.pb.h"

namespace entrysync {

// The header fields of a StateBatch that the caller chooses; the rest
// (model, seqs, count, codec, sizes, checksum, payload) is computed.
struct BatchHeader {
  Uuid owner;
  Epoch epoch;
  uint64_t transfer_id = 0;
  uint32_t batch_index = 0;
  uint32_t total_batches = 0;  // 0 = unknown
  uint64_t total_records = 0;  // 0 = unknown
  Codec codec = Codec::kZstd;  // requested; kNone is used when it does not pay
  CompressOptions compress;
};

// Limits a receiver applies when opening a batch from a peer.
struct BatchLimits {
  size_t max_uncompressed_bytes = 64 << 20;
  uint32_t max_records = 100000;
};

// Builds a StateBatch holding `records`. first_seq/last_seq are the lowest and
// highest record seq (0/0 when empty).
// Fails with InvalidArgument when there are more than UINT32_MAX records or
// the encoding exceeds 4 GiB (callers batch ~1000 records, far below).
Result<wire::StateBatch> BuildEntryBatch(const BatchHeader& header, std::span<const EntryRecord> records);
Result<wire::StateBatch> BuildLocationBatch(const BatchHeader& header,
                                            std::span<const LocationRecord> records);

// Opens a StateBatch received from a peer.
// Errors (messages are prefixed "batch N of owner X: "):
//   Protocol   wrong model, bad owner uuid, unknown codec, record_count or
//              uncompressed_size over `limits`
//   Corruption decompression failure, "checksum mismatch", undecodable
//              records, or record_count / first_seq / last_seq that do not
//              match the decoded records.
Result<std::vector<EntryRecord>> OpenEntryBatch(const wire::StateBatch& batch,
                                                const BatchLimits& limits = {});
Result<std::vector<LocationRecord>> OpenLocationBatch(const wire::StateBatch& batch,
                                                      const BatchLimits& limits = {});

}  // namespace entrysync
