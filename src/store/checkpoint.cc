#include "store/checkpoint.h"

#include <openssl/evp.h>

#include <memory>

#include "base/hash.h"

namespace entrysync {
namespace {

constexpr std::string_view kContext = "entrysync-checkpoint-v1";

void PutBe64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

}  // namespace

std::string Checkpoint::SignedBytes(const Uuid& library) const {
  std::string m(kContext);
  m.append(reinterpret_cast<const char*>(library.bytes.data()), 16);
  m.append(reinterpret_cast<const char*>(owner.bytes.data()), 16);
  PutBe64(m, epoch.value());
  PutBe64(m, static_cast<uint64_t>(seq.value()));
  m.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return m;
}

DeviceId DeviceIdOfEd25519(const std::array<uint8_t, 32>& public_key) {
  // DER SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): a fixed
  // 12-byte prefix, then the 32 key bytes.
  static const uint8_t kSpkiPrefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                          0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
  Sha256 h;
  h.Update(kSpkiPrefix, sizeof kSpkiPrefix);
  h.Update(public_key.data(), public_key.size());
  DeviceId id;
  id.bytes = h.Finish();
  return id;
}

Result<Checkpoint> SignCheckpoint(EVP_PKEY* key, const Uuid& library, Epoch epoch, Seq seq,
                                  const LtHash::Checksum& digest) {
  Checkpoint cp;
  size_t len = cp.public_key.size();
  if (EVP_PKEY_get_raw_public_key(key, cp.public_key.data(), &len) != 1 || len != cp.public_key.size())
    return InvalidArgument("checkpoint: the device key is not an Ed25519 key");
  cp.owner = OwnerUuidOf(DeviceIdOfEd25519(cp.public_key));
  cp.epoch = epoch;
  cp.seq = seq;
  cp.digest = digest;
  std::string msg = cp.SignedBytes(library);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t sig_len = cp.signature.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), cp.signature.data(), &sig_len, reinterpret_cast<const uint8_t*>(msg.data()),
                     msg.size()) != 1 ||
      sig_len != cp.signature.size())
    return Internal("checkpoint: signing failed");
  return cp;
}

Status VerifyCheckpoint(const Checkpoint& cp, const Uuid& library) {
  if (OwnerUuidOf(DeviceIdOfEd25519(cp.public_key)) != cp.owner)
    return PermissionDenied("checkpoint of owner " + cp.owner.ToString() + " carries another device's key");
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, cp.public_key.data(), cp.public_key.size()));
  if (!key) return PermissionDenied("checkpoint of owner " + cp.owner.ToString() + ": unusable public key");
  std::string msg = cp.SignedBytes(library);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestVerify(ctx.get(), cp.signature.data(), cp.signature.size(),
                       reinterpret_cast<const uint8_t*>(msg.data()), msg.size()) != 1)
    return PermissionDenied("checkpoint of owner " + cp.owner.ToString() + " at seq " +
                            std::to_string(cp.seq.value()) + ": bad signature");
  return Status::Ok();
}

}  // namespace entrysync
