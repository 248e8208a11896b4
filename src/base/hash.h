// Hash functions used for checksums and digests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace entrysync {

// CRC-32 (zlib polynomial) of a buffer; chainable through `seed`.
uint32_t Crc32(const void* data, size_t n, uint32_t seed = 0);

// Streaming SHA-256 (OpenSSL). Not thread-safe; one per thread.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  std::array<uint8_t, 32> Finish();
  std::string FinishHex();

 private:
  void* ctx_;  // EVP_MD_CTX*
};

}  // namespace entrysync
