#include "net/identity.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "base/hash.h"
#include "net/openssl_util.h"

namespace entrysync {
namespace {

using net::TakeOpenSslError;

std::shared_ptr<EVP_PKEY> WrapKey(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }
std::shared_ptr<X509> WrapCert(X509* c) { return std::shared_ptr<X509>(c, X509_free); }

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string Errno() { return std::generic_category().message(errno); }

// Writes `data` to `path` atomically (temp file, fsync, rename) with `mode`.
Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode, const char* what) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return IOError(std::string("write ") + what + " " + tmp + ": " + Errno());
  ::fchmod(fd, mode);  // O_CREAT does not change the mode of a stale file
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = IOError(std::string("write ") + what + " " + tmp + ": " + Errno());
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    Status s = IOError(std::string("write ") + what + " " + tmp + ": " + Errno());
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = IOError(std::string("write ") + what + " " + path + ": " + Errno());
    ::unlink(tmp.c_str());
    return s;
  }
  return Status::Ok();
}

// Serializes with a PEM writer into a string.
template <class Fn>
Result<std::string> ToPem(Fn write) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return Internal("out of memory");
  if (write(bio) != 1) {
    BIO_free(bio);
    return Internal(TakeOpenSslError());
  }
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  std::string out(p, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

Result<std::shared_ptr<EVP_PKEY>> NewKey() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) return Internal("generate Ed25519 key: " + TakeOpenSslError());
  return WrapKey(key);
}

Result<std::shared_ptr<X509>> NewSelfSignedCert(EVP_PKEY* key) {
  auto cert = WrapCert(X509_new());
  if (!cert) return Internal("create certificate: out of memory");
  X509* c = cert.get();
  bool ok = X509_set_version(c, X509_VERSION_3) == 1;
  // A random positive 63-bit serial.
  ok = ok && ASN1_INTEGER_set_uint64(X509_get_serialNumber(c), RandomU64() >> 1) == 1;
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(c), -24L * 3600) != nullptr;
  ok = ok && X509_time_adj_ex(X509_getm_notAfter(c), 100 * 365, 0, nullptr) != nullptr;
  X509_NAME* name = X509_get_subject_name(c);
  ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        reinterpret_cast<const unsigned char*>("entrysync"), -1, -1, 0) == 1;
  ok = ok && X509_set_issuer_name(c, name) == 1;
  ok = ok && X509_set_pubkey(c, key) == 1;
  // Ed25519 signs without a separate digest.
  ok = ok && X509_sign(c, key, nullptr) > 0;
  if (!ok) return Internal("create certificate: " + TakeOpenSslError());
  return cert;
}

Result<std::shared_ptr<EVP_PKEY>> ReadKey(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return IOError("load key " + path + ": " + Errno());
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (key == nullptr) {
    return Corruption("load key " + path + ": " + TakeOpenSslError("not a PEM private key"));
  }
  return WrapKey(key);
}

Result<std::shared_ptr<X509>> ReadCert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return IOError("load certificate " + path + ": " + Errno());
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) {
    return Corruption("load certificate " + path + ": " + TakeOpenSslError("not a PEM certificate"));
  }
  return WrapCert(cert);
}

Status MakeDir(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("identity directory is empty");
  // mkdir -p: every missing component, the last one private.
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return IOError("create directory " + part + ": " + Errno());
    }
  }
  return Status::Ok();
}

}  // namespace

Result<DeviceId> DeviceIdOfKey(EVP_PKEY* key) {
  if (key == nullptr) return InvalidArgument("no public key");
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return InvalidArgument("encode public key: " + TakeOpenSslError());
  Sha256 h;
  h.Update(der, static_cast<size_t>(n));
  OPENSSL_free(der);
  DeviceId id;
  id.bytes = h.Finish();
  return id;
}

Result<DeviceId> DeviceIdOfCertificate(X509* cert) {
  if (cert == nullptr) return InvalidArgument("no certificate");
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) {
    return InvalidArgument("certificate has no usable public key: " + TakeOpenSslError());
  }
  return DeviceIdOfKey(key);
}

std::string ShortDeviceId(const DeviceId& id) { return id.ToString().substr(0, 16) + "\u2026"; }

Result<Identity> GenerateIdentity() {
  ES_ASSIGN_OR_RETURN(auto key, NewKey());
  ES_ASSIGN_OR_RETURN(auto cert, NewSelfSignedCert(key.get()));
  ES_ASSIGN_OR_RETURN(DeviceId id, DeviceIdOfKey(key.get()));
  return Identity(std::move(key), std::move(cert), id);
}

Result<Identity> LoadOrCreateIdentity(const std::string& dir) {
  const std::string key_path = dir + "/key.pem";
  const std::string cert_path = dir + "/cert.pem";
  const bool have_key = Exists(key_path);
  const bool have_cert = Exists(cert_path);

  std::shared_ptr<EVP_PKEY> key;
  if (have_key) {
    ES_ASSIGN_OR_RETURN(key, ReadKey(key_path));
  } else if (have_cert) {
    return NotFound("load key " + key_path + ": missing, but its certificate " + cert_path +
                    " exists; restore the key or remove both");
  } else {
    ES_RETURN_IF_ERROR(MakeDir(dir));
    ES_ASSIGN_OR_RETURN(key, NewKey());
    ES_ASSIGN_OR_RETURN(std::string pem, ToPem([&](BIO* b) {
                          return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr,
                                                          nullptr);
                        }));
    ES_RETURN_IF_ERROR(WriteFileAtomic(key_path, pem, 0600, "key"));
  }

  std::shared_ptr<X509> cert;
  if (have_cert) {
    ES_ASSIGN_OR_RETURN(cert, ReadCert(cert_path));
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
      ERR_clear_error();
      return Corruption("load certificate " + cert_path + ": does not match the key in " + key_path);
    }
  } else {
    ES_ASSIGN_OR_RETURN(cert, NewSelfSignedCert(key.get()));
    ES_ASSIGN_OR_RETURN(std::string pem, ToPem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }));
    ES_RETURN_IF_ERROR(WriteFileAtomic(cert_path, pem, 0644, "certificate"));
  }

  ES_ASSIGN_OR_RETURN(DeviceId id, DeviceIdOfKey(key.get()));
  return Identity(std::move(key), std::move(cert), id);
}

}  // namespace entrysync
