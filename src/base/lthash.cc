#include "base/lthash.h"

#include <openssl/evp.h>

#include <bit>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace entrysync {

static_assert(std::endian::native == std::endian::little, "lanes are stored little-endian as in memory");

namespace {

constexpr std::string_view kDomain = "entrysync-lthash16-v1";

// The algorithms are fetched once: OpenSSL 3's implicit fetch (EVP_sha256()
// in each init) takes a lock and a name lookup per call, which cost more
// than the hashing itself.
struct CipherCtx {
  CipherCtx()
      : ctx(EVP_CIPHER_CTX_new()),
        md(EVP_MD_CTX_new()),
        sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr)),
        chacha20(EVP_CIPHER_fetch(nullptr, "ChaCha20", nullptr)) {
    if (!ctx || !md || !sha256 || !chacha20 ||
        EVP_EncryptInit_ex2(ctx, chacha20, nullptr, nullptr, nullptr) != 1)
      throw std::bad_alloc();
  }
  ~CipherCtx() {
    EVP_CIPHER_CTX_free(ctx);
    EVP_MD_CTX_free(md);
    EVP_MD_free(sha256);
    EVP_CIPHER_free(chacha20);
  }
  CipherCtx(const CipherCtx&) = delete;
  CipherCtx& operator=(const CipherCtx&) = delete;
  EVP_CIPHER_CTX* ctx;
  EVP_MD_CTX* md;
  EVP_MD* sha256;
  EVP_CIPHER* chacha20;
};

// One OpenSSL context pair per thread, reused for every element.
CipherCtx& ThreadCtx() {
  thread_local CipherCtx c;
  return c;
}

}  // namespace

void LtHash::Expand(std::string_view element, uint16_t* out) const {
  CipherCtx& c = ThreadCtx();
  uint8_t key[32];
  unsigned int key_len = 0;
  EVP_DigestInit_ex2(c.md, c.sha256, nullptr);
  EVP_DigestUpdate(c.md, kDomain.data(), kDomain.size());
  EVP_DigestUpdate(c.md, element.data(), element.size());
  EVP_DigestFinal_ex(c.md, key, &key_len);
  static const uint8_t kZeroIv[16] = {};  // 32-bit block counter 0, 96-bit nonce 0
  static const uint8_t kZeros[kBytes] = {};
  EVP_EncryptInit_ex2(c.ctx, nullptr, key, kZeroIv, nullptr);
  int n = 0;
  EVP_EncryptUpdate(c.ctx, reinterpret_cast<uint8_t*>(out), &n, kZeros, static_cast<int>(kBytes));
}

void LtHash::Add(std::string_view element) {
  alignas(64) uint16_t e[kLanes];
  Expand(element, e);
  for (size_t i = 0; i < kLanes; ++i) lanes_[i] = static_cast<uint16_t>(lanes_[i] + e[i]);
}

void LtHash::Remove(std::string_view element) {
  alignas(64) uint16_t e[kLanes];
  Expand(element, e);
  for (size_t i = 0; i < kLanes; ++i) lanes_[i] = static_cast<uint16_t>(lanes_[i] - e[i]);
}

LtHash& LtHash::operator+=(const LtHash& o) {
  for (size_t i = 0; i < kLanes; ++i) lanes_[i] = static_cast<uint16_t>(lanes_[i] + o.lanes_[i]);
  return *this;
}

LtHash& LtHash::operator-=(const LtHash& o) {
  for (size_t i = 0; i < kLanes; ++i) lanes_[i] = static_cast<uint16_t>(lanes_[i] - o.lanes_[i]);
  return *this;
}

bool LtHash::is_zero() const {
  for (uint16_t l : lanes_)
    if (l) return false;
  return true;
}

LtHash::Checksum LtHash::checksum() const {
  Checksum out{};
  unsigned int len = 0;
  EVP_Digest(lanes_.data(), kBytes, out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string_view LtHash::bytes() const { return {reinterpret_cast<const char*>(lanes_.data()), kBytes}; }

std::optional<LtHash> LtHash::FromBytes(std::string_view bytes) {
  if (bytes.size() != kBytes) return std::nullopt;
  LtHash h;
  std::memcpy(h.lanes_.data(), bytes.data(), kBytes);
  return h;
}

}  // namespace entrysync
