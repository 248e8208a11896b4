// Strong identifier types shared by every layer.
//
// Seq, Epoch, EntryId and friends are distinct types so they cannot be
// swapped by mistake; Uuid and DeviceId are fixed-size byte arrays with hex
// text forms.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "entrysync/export.h"

namespace entrysync {

template <class Tag, class Rep>
class StrongInt {
 public:
  using rep = Rep;
  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : v_(v) {}
  constexpr Rep value() const { return v_; }
  constexpr auto operator<=>(const StrongInt&) const = default;
  constexpr StrongInt next() const { return StrongInt(v_ + 1); }

 private:
  Rep v_{};
};

// Position in one owner's sequence of changes. 0 means "nothing yet"; the
// first change an owner makes takes seq 1.
using Seq = StrongInt<struct SeqTag, int64_t>;
// Random 64-bit id of one owner's index; a new epoch means "resend all".
using Epoch = StrongInt<struct EpochTag, uint64_t>;
// Local rowid of an entry in one library (never on the wire).
using EntryId = StrongInt<struct EntryIdTag, int64_t>;
// Local rowid of a device row in one library (never on the wire).
using DeviceRowId = StrongInt<struct DeviceRowIdTag, int64_t>;
// Local rowid of a location row in one library (never on the wire).
using LocationRowId = StrongInt<struct LocationRowIdTag, int64_t>;

// A 16-byte uuid. Entries use time-ordered v7 uuids (see NewUuidV7) so the
// unique index on entry.uuid grows at its end.
struct ENTRYSYNC_EXPORT Uuid {
  std::array<uint8_t, 16> bytes{};

  static Uuid Nil() { return Uuid{}; }
  bool is_nil() const;
  // 32 lowercase hex digits with dashes: 8-4-4-4-12.
  std::string ToString() const;
  // Accepts the dashed form or 32 bare hex digits.
  static std::optional<Uuid> Parse(std::string_view text);
  static Uuid FromBytes(const void* data);  // REQUIRES: 16 readable bytes
  auto operator<=>(const Uuid&) const = default;
};

// A new UUIDv7, strictly greater than every uuid this process generated
// before (RFC 9562 method 3: a monotonic counter within a millisecond).
// Thread-safe.
ENTRYSYNC_EXPORT Uuid NewUuidV7();
// A new random UUIDv4 (library ids).
ENTRYSYNC_EXPORT Uuid NewUuidV4();

// A device's identity: the SHA-256 of its public key (DER SubjectPublicKeyInfo).
struct ENTRYSYNC_EXPORT DeviceId {
  std::array<uint8_t, 32> bytes{};

  bool is_zero() const;
  std::string ToString() const;  // 64 lowercase hex digits
  // The first 16 hex digits and an ellipsis, for messages where all 64
  // would drown the rest.
  std::string ToShortString() const;
  static std::optional<DeviceId> Parse(std::string_view hex);
  auto operator<=>(const DeviceId&) const = default;
};

// The owner uuid of the device whose key has id `id`: the first 16 bytes of
// SHA-256("entrysync-owner-v1" || id) as a version 8 uuid (RFC 9562). An
// owner is its key: the uuid under which a device's rows are owned is
// derived from its key, so no peer can claim another device's rows or
// pairing without that device's private key.
ENTRYSYNC_EXPORT Uuid OwnerUuidOf(const DeviceId& id);

ENTRYSYNC_EXPORT std::string HexEncode(const void* data, size_t n);
// Decodes exactly out_len bytes from 2*out_len hex digits.
ENTRYSYNC_EXPORT bool HexDecode(std::string_view hex, void* out, size_t out_len);

// A random 64-bit value from the OS CSPRNG.
ENTRYSYNC_EXPORT uint64_t RandomU64();

}  // namespace entrysync

template <>
struct std::hash<entrysync::Uuid> {
  size_t operator()(const entrysync::Uuid& u) const noexcept {
    uint64_t a, b;
    __builtin_memcpy(&a, u.bytes.data(), 8);
    __builtin_memcpy(&b, u.bytes.data() + 8, 8);
    return static_cast<size_t>(a * 0x9E3779B97F4A7C15ULL ^ b);
  }
};
