#include "entrysync/types.h"

#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "base/hash.h"
#include "base/mutex.h"
#include "entrysync/record.h"

namespace entrysync {
namespace {

void FillRandom(void* out, size_t n) {
  auto* p = static_cast<uint8_t*>(out);
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got <= 0) continue;  // EINTR; getrandom does not fail otherwise
    p += got;
    n -= static_cast<size_t>(got);
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string HexEncode(const void* data, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

bool HexDecode(std::string_view hex, void* out, size_t out_len) {
  if (hex.size() != out_len * 2) return false;
  auto* p = static_cast<uint8_t*>(out);
  for (size_t i = 0; i < out_len; ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    p[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

uint64_t RandomU64() {
  uint64_t v;
  FillRandom(&v, sizeof v);
  return v;
}

bool Uuid::is_nil() const {
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

std::string Uuid::ToString() const {
  std::string h = HexEncode(bytes.data(), bytes.size());
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
         h.substr(20);
}

std::optional<Uuid> Uuid::Parse(std::string_view text) {
  std::string hex;
  hex.reserve(32);
  for (char c : text)
    if (c != '-') hex.push_back(c);
  Uuid u;
  if (!HexDecode(hex, u.bytes.data(), u.bytes.size())) return std::nullopt;
  return u;
}

Uuid Uuid::FromBytes(const void* data) {
  Uuid u;
  std::memcpy(u.bytes.data(), data, 16);
  return u;
}

Uuid NewUuidV7() {
  // Layout (RFC 9562): 48-bit unix_ts_ms | ver(4)=7 | rand_a(12) |
  // var(2)=0b10 | rand_b(62). rand_a and rand_b together form a 74-bit
  // counter that starts at a random value (top bit clear) in each new
  // millisecond and is incremented otherwise, so uuids are strictly
  // increasing within the process even when the clock stalls or goes back.
  static Mutex mu;
  static uint64_t last_ms GUARDED_BY(mu) = 0;
  static uint64_t ctr_hi GUARDED_BY(mu) = 0;  // 12 bits
  static uint64_t ctr_lo GUARDED_BY(mu) = 0;  // 62 bits
  MutexLock lock(mu);
  uint64_t now_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
  if (now_ms > last_ms) {
    last_ms = now_ms;
    uint64_t r = RandomU64();
    ctr_hi = (r >> 53) & 0x3FF;  // 10 random bits: leaves room to count up
    ctr_lo = RandomU64() & ((1ULL << 62) - 1);
  } else {
    ctr_lo = (ctr_lo + 1) & ((1ULL << 62) - 1);
    if (ctr_lo == 0) {
      ctr_hi = (ctr_hi + 1) & 0xFFF;
      if (ctr_hi == 0) ++last_ms;  // counter exhausted: borrow the next ms
    }
  }
  Uuid u;
  auto& b = u.bytes;
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(last_ms >> (40 - 8 * i));
  b[6] = static_cast<uint8_t>(0x70 | (ctr_hi >> 8));
  b[7] = static_cast<uint8_t>(ctr_hi);
  b[8] = static_cast<uint8_t>(0x80 | (ctr_lo >> 56));
  for (int i = 9; i < 16; ++i) b[i] = static_cast<uint8_t>(ctr_lo >> (8 * (15 - i)));
  return u;
}

Uuid NewUuidV4() {
  Uuid u;
  FillRandom(u.bytes.data(), 16);
  u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0F) | 0x40);
  u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3F) | 0x80);
  return u;
}

Uuid OwnerUuidOf(const DeviceId& id) {
  Sha256 h;
  h.Update("entrysync-owner-v1");
  h.Update(id.bytes.data(), id.bytes.size());
  auto d = h.Finish();
  Uuid u;
  std::copy_n(d.begin(), 16, u.bytes.begin());
  u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0F) | 0x80);  // version 8: custom
  u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3F) | 0x80);  // RFC 9562 variant
  return u;
}

bool DeviceId::is_zero() const {
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

std::string DeviceId::ToString() const { return HexEncode(bytes.data(), bytes.size()); }

std::string DeviceId::ToShortString() const { return ToString().substr(0, 16) + "\u2026"; }

std::optional<DeviceId> DeviceId::Parse(std::string_view hex) {
  DeviceId d;
  if (!HexDecode(hex, d.bytes.data(), d.bytes.size())) return std::nullopt;
  return d;
}

const char* EntryKindName(EntryKind kind) {
  switch (kind) {
    case EntryKind::kFile:
      return "file";
    case EntryKind::kDir:
      return "dir";
    case EntryKind::kSymlink:
      return "symlink";
  }
  return "unknown";
}

}  // namespace entrysync
