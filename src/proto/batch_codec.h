// Columnar encoding of record batches (the uncompressed StateBatch payload).
//
// Records are stored column by column, each column delta- or
// dictionary-coded against the rows before it, so a general-purpose
// compressor (zstd level 1) shrinks a realistic folder tree to well under
// 30 bytes per entry. The byte layout is specified in docs/wire-format.md
// ("Columnar batch layout"); this header is its only implementation.
//
// Thread-safe: all functions are reentrant.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "entrysync/record.h"
#include "entrysync/status.h"

namespace entrysync {

// Encodes `records` (any order; walk order with seq increasing compresses
// best). Never fails; an empty span encodes to a valid empty batch.
// REQUIRES: records.size() < 2^32.
std::string EncodeEntries(std::span<const EntryRecord> records);

// Decodes bytes produced by EncodeEntries. The round trip is exact for every
// field. On any malformed input returns Corruption "entry batch: <what>";
// never reads out of bounds and never allocates more than a small multiple
// of encoded.size().
Result<std::vector<EntryRecord>> DecodeEntries(std::string_view encoded);

// Same contracts for locations.
std::string EncodeLocations(std::span<const LocationRecord> records);
Result<std::vector<LocationRecord>> DecodeLocations(std::string_view encoded);

}  // namespace entrysync
