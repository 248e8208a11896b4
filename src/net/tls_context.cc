// The peer check of TLS connections: contexts that verify the peer through
// TlsConn alone, the check of its DeviceId, and OpenSSL failures told as
// one-line reasons (refusals by either side named as such).
#include <openssl/err.h>
#include <openssl/x509.h>

#include "net/openssl_util.h"
#include "net/tls_conn.h"

namespace entrysync::net {

int TlsConn::ConnIndex() {
  static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

Result<std::shared_ptr<SSL_CTX>> MakeTlsContext(const Identity& identity, bool server) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (!ctx) return Internal("create TLS context: " + TakeOpenSslError());
  SSL_CTX* c = ctx.get();
  bool ok = SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) == 1 &&
            SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) == 1 &&
            SSL_CTX_use_certificate(c, identity.cert()) == 1 &&
            SSL_CTX_use_PrivateKey(c, identity.key()) == 1 && SSL_CTX_check_private_key(c) == 1;
  if (!ok) return Internal("create TLS context: " + TakeOpenSslError());
  // Peer certificates are checked by VerifyCallback alone: self-signed is
  // the norm, trust comes from the DeviceId.
  SSL_CTX_set_verify(c, server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER,
                     nullptr);
  SSL_CTX_set_cert_verify_callback(c, &TlsConn::VerifyCallbackForCtx, nullptr);
  // No resumption: every connection proves its key again.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
  return ctx;
}

int TlsConn::VerifyCallbackForCtx(X509_STORE_CTX* store, void* /*arg*/) {
  SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* conn = ssl ? static_cast<TlsConn*>(SSL_get_ex_data(ssl, ConnIndex())) : nullptr;
  bool verified = false;
  if (conn != nullptr) {
    conn->io_.AssertHeld();  // OpenSSL calls this from SSL_do_handshake, on the io thread
    verified = conn->VerifyPeer(X509_STORE_CTX_get0_cert(store));
  }
  if (verified) {
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }
  // Sent to the peer as a "bad certificate" alert.
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

bool TlsConn::VerifyPeer(X509* cert) {
  Result<DeviceId> id = DeviceIdOfCertificate(cert);
  if (!id.ok()) {
    refusal_ = PermissionDenied("peer " + describe_ +
                                " presented an unusable certificate: " + id.status().message());
    return false;
  }
  Status s = authorize_ ? authorize_(*id) : PermissionDenied("not authorized");
  if (!s.ok()) {
    refusal_ = Status(s.code(),
                      "peer " + describe_ + " presented device " + ShortDeviceId(*id) + ": " + s.message());
    return false;
  }
  remote_id_ = *id;
  return true;
}

Status TlsConn::TlsError(int ssl_error, const char* during) {
  if (!refusal_.ok()) {
    ERR_clear_error();
    return refusal_;
  }
  if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    return Aborted("peer " + describe_ + " closed the connection during the " + during);
  }
  unsigned long e = ERR_peek_error();
  if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
    switch (ERR_GET_REASON(e)) {
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
        // The peer's check of our DeviceId failed: a server checks whether
        // we are paired, a client whether we are the device it dialed.
        ERR_clear_error();
        return PermissionDenied("peer " + describe_ +
                                (role_ == Role::kClient
                                     ? " refused this device: it is not paired there"
                                     : " refused this device: it expected another device at this "
                                       "address"));
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        ERR_clear_error();
        return PermissionDenied("peer " + describe_ + " presented no device certificate");
      default:
        break;
    }
  }
  return ProtocolError("peer " + describe_ + ": TLS error during the " + during + ": " +
                       TakeOpenSslError("unexpected failure"));
}

}  // namespace entrysync::net
