// Byte-level helpers shared by the batch codec: LEB128 varints, zigzag, and a
// bounds-checked reader. Internal to es_proto.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace entrysync::proto {

inline uint64_t ZigZag(uint64_t delta) {  // delta is an int64 bit pattern
  return (delta << 1) ^ (0 - (delta >> 63));
}
inline uint64_t UnZigZag(uint64_t v) { return (v >> 1) ^ (0 - (v & 1)); }

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline void PutBytes(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

// Reads from a byte range; every method returns false (and leaves the reader
// in an unspecified position) when the input is too short or malformed.
class Reader {
 public:
  Reader() = default;
  explicit Reader(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }

  bool Byte(uint8_t* v) {
    if (p_ == end_) return false;
    *v = static_cast<uint8_t>(*p_++);
    return true;
  }

  // Canonical-enough LEB128: at most 10 bytes, the 10th must be 0 or 1.
  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const uint8_t b = static_cast<uint8_t>(*p_++);
      if (shift == 63 && b > 1) return false;
      result |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }

  bool Bytes(size_t n, std::string_view* out) {
    if (n > remaining()) return false;
    *out = std::string_view(p_, n);
    p_ += n;
    return true;
  }

  // A varint length followed by that many bytes.
  bool LengthPrefixed(std::string_view* out) {
    uint64_t n;
    return Varint(&n) && n <= remaining() && Bytes(static_cast<size_t>(n), out);
  }

 private:
  const char* p_ = nullptr;
  const char* end_ = nullptr;
};

}  // namespace entrysync::proto
