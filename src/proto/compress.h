// Payload compression for StateBatch (and anything else that wants it).
//
// Thread-safe: every function is reentrant (no shared state).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "entrysync/status.h"

namespace entrysync {

// Values match wire::Codec.
enum class Codec : uint8_t { kNone = 0, kZstd = 1, kGzip = 2 };

const char* CodecName(Codec codec);  // "none", "zstd", "gzip"

struct CompressOptions {
  int zstd_level = 1;  // 1 (fast) .. 19
  int gzip_level = 6;  // 1 .. 9 (zlib levels)
  // Compression must save at least raw/min_saving_divisor bytes, otherwise
  // the payload is sent uncompressed (1/32 ~ 3%).
  size_t min_saving_divisor = 32;
};

struct Compressed {
  Codec codec = Codec::kNone;  // the codec actually used
  std::string bytes;
};

// Compresses `raw` with `codec`. Falls back to kNone (bytes = raw) when
// compression does not pay (see CompressOptions) or fails. Never fails.
Compressed CompressPayload(Codec codec, std::string_view raw, const CompressOptions& options = {});

// Decompresses `bytes` that were produced by `codec` from exactly
// `expected_size` bytes.
// Errors (nothing is allocated beyond expected_size):
//   Protocol "uncompressed size 99999999 exceeds limit 67108864"
//   Corruption "zstd payload: ..." / "gzip payload: ..." when the stream is
//     malformed, produces a different size than expected_size, or has
//     trailing bytes.
Result<std::string> Decompress(Codec codec, std::string_view bytes, size_t expected_size, size_t max_size);

}  // namespace entrysync
