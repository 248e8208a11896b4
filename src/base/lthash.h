// LtHash16: a homomorphic multiset hash (Lewi, Kim, Maykov, Weis, "Securing
// Update Propagation with Homomorphic Hashing", 2019; the parameters of
// folly's LtHash<16, 1024>).
//
// The hash of a multiset is the lane-wise sum, modulo 2^16, of the 1024
// 16-bit lanes of each element's expansion. Adding an element adds its
// expansion, removing one subtracts it, so a set's hash is kept up to date
// in O(1) per change and never recomputed by a scan; the order of changes
// does not matter. Security rests on the lattice problem the paper reduces
// to (finding a short combination of element hashes that sums to zero);
// the paper gives this parameter set more than 200 bits of security against
// collisions. A plain sum of SHA-256 values would not do: Wagner's
// generalized birthday attack finds colliding multisets in ~2^(2*sqrt(256)).
//
// An element's expansion is 2048 pseudorandom bytes: the ChaCha20 keystream
// (zero nonce) under the key SHA-256("entrysync-lthash16-v1" || element),
// the construction Bitcoin Core's MuHash3072 uses to map an element to a
// 3072-bit number. The element hash is modelled as a random oracle, as in
// the paper.
//
// Not thread-safe; a value type (2 KiB).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace entrysync {

class LtHash {
 public:
  static constexpr size_t kLanes = 1024;
  static constexpr size_t kBytes = kLanes * 2;
  using Checksum = std::array<uint8_t, 32>;

  LtHash() { lanes_.fill(0); }

  // Adds / removes one element (any bytes).
  void Add(std::string_view element);
  void Remove(std::string_view element);
  // Adds / subtracts another state (a delta kept apart and merged later).
  LtHash& operator+=(const LtHash& o);
  LtHash& operator-=(const LtHash& o);
  bool operator==(const LtHash& o) const = default;
  bool is_zero() const;

  // SHA-256 of the state's 2048 bytes (lanes little-endian): what a
  // checkpoint signs and two replicas compare.
  Checksum checksum() const;

  // The state as 2048 bytes (lanes little-endian), and back. FromBytes
  // returns nothing unless `bytes` is exactly kBytes long.
  std::string_view bytes() const;
  static std::optional<LtHash> FromBytes(std::string_view bytes);

 private:
  void Expand(std::string_view element, uint16_t* out) const;
  alignas(64) std::array<uint16_t, kLanes> lanes_;
};

}  // namespace entrysync
