#include "proto/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <climits>

namespace entrysync {
namespace {

bool ZstdCompress(std::string_view raw, int level, std::string* out) {
  out->resize(ZSTD_compressBound(raw.size()));
  const size_t n = ZSTD_compress(out->data(), out->size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) return false;
  out->resize(n);
  return true;
}

bool GzipCompress(std::string_view raw, int level, std::string* out) {
  if (raw.size() > UINT_MAX / 2) return false;
  z_stream s{};
  if (deflateInit2(&s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  out->resize(deflateBound(&s, raw.size()) + 32);  // + gzip header/trailer slack
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  s.avail_in = static_cast<uInt>(raw.size());
  s.next_out = reinterpret_cast<Bytef*>(out->data());
  s.avail_out = static_cast<uInt>(out->size());
  const int rc = deflate(&s, Z_FINISH);
  const size_t produced = s.total_out;
  deflateEnd(&s);
  if (rc != Z_STREAM_END) return false;
  out->resize(produced);
  return true;
}

Result<std::string> ZstdDecompress(std::string_view bytes, size_t expected) {
  std::string out(expected, '\0');
  const size_t n = ZSTD_decompress(out.data(), out.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(n)) {
    return Corruption(std::string("zstd payload: ") + ZSTD_getErrorName(n));
  }
  if (n != expected) {
    return Corruption("zstd payload: decompressed to " + std::to_string(n) + " bytes, expected " +
                      std::to_string(expected));
  }
  return out;
}

Result<std::string> GzipDecompress(std::string_view bytes, size_t expected) {
  if (bytes.size() > UINT_MAX || expected >= UINT_MAX) {
    return Corruption("gzip payload: too large");
  }
  // One spare byte tells "exactly expected" from "more than expected".
  std::string out(expected + 1, '\0');
  z_stream s{};
  if (inflateInit2(&s, 15 + 16) != Z_OK) return Internal("gzip: inflateInit2 failed");
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  s.avail_in = static_cast<uInt>(bytes.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&s, Z_FINISH);
  const size_t produced = s.total_out;
  const size_t left_in = s.avail_in;
  const char* msg = s.msg;
  inflateEnd(&s);
  if (rc != Z_STREAM_END) {
    if (produced > expected) {
      return Corruption("gzip payload: decompresses to more than " + std::to_string(expected) + " bytes");
    }
    return Corruption(std::string("gzip payload: ") + (msg != nullptr      ? msg
                                                       : rc == Z_BUF_ERROR ? "truncated stream"
                                                                           : "inflate failed"));
  }
  if (produced != expected) {
    return Corruption("gzip payload: decompressed to " + std::to_string(produced) + " bytes, expected " +
                      std::to_string(expected));
  }
  if (left_in != 0) {
    return Corruption("gzip payload: " + std::to_string(left_in) + " trailing bytes");
  }
  out.resize(expected);
  return out;
}

}  // namespace

const char* CodecName(Codec codec) {
  switch (codec) {
    case Codec::kNone:
      return "none";
    case Codec::kZstd:
      return "zstd";
    case Codec::kGzip:
      return "gzip";
  }
  return "unknown";
}

Compressed CompressPayload(Codec codec, std::string_view raw, const CompressOptions& options) {
  Compressed result;
  bool ok = false;
  switch (codec) {
    case Codec::kNone:
      break;
    case Codec::kZstd:
      ok = ZstdCompress(raw, options.zstd_level, &result.bytes);
      break;
    case Codec::kGzip:
      ok = GzipCompress(raw, options.gzip_level, &result.bytes);
      break;
  }
  const size_t divisor = options.min_saving_divisor == 0 ? SIZE_MAX : options.min_saving_divisor;
  const size_t min_saving = raw.size() / divisor;
  if (ok && result.bytes.size() < raw.size() && raw.size() - result.bytes.size() >= min_saving &&
      result.bytes.size() != raw.size()) {
    result.codec = codec;
    return result;
  }
  result.codec = Codec::kNone;
  result.bytes.assign(raw.data(), raw.size());
  return result;
}

Result<std::string> Decompress(Codec codec, std::string_view bytes, size_t expected_size, size_t max_size) {
  if (expected_size > max_size) {
    return ProtocolError("uncompressed size " + std::to_string(expected_size) + " exceeds limit " +
                         std::to_string(max_size));
  }
  switch (codec) {
    case Codec::kNone:
      if (bytes.size() != expected_size) {
        return Corruption("uncompressed payload of " + std::to_string(bytes.size()) + " bytes, expected " +
                          std::to_string(expected_size));
      }
      return std::string(bytes);
    case Codec::kZstd:
      return ZstdDecompress(bytes, expected_size);
    case Codec::kGzip:
      return GzipDecompress(bytes, expected_size);
  }
  return ProtocolError("unknown codec " + std::to_string(static_cast<int>(codec)));
}

}  // namespace entrysync
