// Device identity: a key pair and a self-signed certificate on disk.
//
// A device is known to its peers by its DeviceId, the SHA-256 of the DER
// SubjectPublicKeyInfo of its public key. The certificate only carries the
// key through TLS; its subject, issuer, serial and validity mean nothing and
// are never checked. Renewing the certificate for the same key keeps the id.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>

#include "entrysync/status.h"
#include "entrysync/types.h"

namespace entrysync {

// An Ed25519 private key and its certificate. Immutable after creation;
// copies share the OpenSSL objects. Thread-safe for concurrent readers.
class Identity {
 public:
  Identity(std::shared_ptr<EVP_PKEY> key, std::shared_ptr<X509> cert, DeviceId id)
      : key_(std::move(key)), cert_(std::move(cert)), id_(id) {}

  const DeviceId& device_id() const { return id_; }
  // Borrowed pointers, valid while this Identity (or a copy) lives.
  EVP_PKEY* key() const { return key_.get(); }
  X509* cert() const { return cert_.get(); }

 private:
  std::shared_ptr<EVP_PKEY> key_;
  std::shared_ptr<X509> cert_;
  DeviceId id_;
};

// Loads `dir`/key.pem and `dir`/cert.pem. The first time (neither file
// exists) creates `dir` (mode 0700) if needed, a new Ed25519 key written to
// key.pem with mode 0600, and a self-signed certificate (CN "entrysync",
// valid for 100 years) in cert.pem. When only the key exists, a new
// certificate is issued for it (same DeviceId).
// Fails with a one-line Status naming the file: a certificate without its
// key, unreadable or malformed PEM, a certificate that does not match the
// key, or a filesystem error.
Result<Identity> LoadOrCreateIdentity(const std::string& dir);

// A new identity held in memory only (tests, tools).
Result<Identity> GenerateIdentity();

// The DeviceId of whoever holds the private key of `cert`.
// Fails when the certificate has no usable public key.
Result<DeviceId> DeviceIdOfCertificate(X509* cert);
// The DeviceId of a public (or private) key.
Result<DeviceId> DeviceIdOfKey(EVP_PKEY* key);

// The first 16 hex digits of `id` and an ellipsis, for log lines and
// errors where the full 64 digits would drown the message.
std::string ShortDeviceId(const DeviceId& id);

}  // namespace entrysync
