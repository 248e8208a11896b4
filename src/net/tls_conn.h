// TlsConn: one TLS 1.3 connection over a TCP socket, driven through memory
// BIOs on the io thread. Internal to net; users see it as a ByteStream
// (TlsStream) returned by TlsListener and TlsDial.
//
// Life of a connection: StartHandshake runs the TLS handshake, checks the
// peer's DeviceId with `authorize` from inside OpenSSL's certificate
// verification (a refusal aborts the handshake with a "bad certificate"
// alert), then the admission step: the server sends one byte kAdmitted, the
// client waits for it, so a client learns it was refused before it could
// send application data. Then the connection is Ready: handed out, waiting
// for Start. Close flushes, sends close_notify and half-closes TCP; the
// close handler then runs, and the socket lingers (reading and discarding)
// until the peer closes or a short timeout, so no reset destroys bytes the
// peer has not read yet.
//
// Thread safety: methods marked "io thread" run only there (checked by
// clang's analysis through the ThreadRole io_); the ByteStream methods are
// thread-safe and post onto the io thread. The object is kept
// alive by the asio operations it has pending (shared_from_this).
#pragma once

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#include <openssl/ssl.h>

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "base/byte_stream.h"
#include "base/mutex.h"
#include "net/handler_slot.h"
#include "net/identity.h"
#include "net/tls.h"

namespace entrysync::net {

// An SSL_CTX for TLS 1.3 only, presenting `identity`, requiring the peer's
// certificate and verifying it through TlsConn's callback only.
Result<std::shared_ptr<SSL_CTX>> MakeTlsContext(const Identity& identity, bool server);

// "1.2.3.4:5" or "[::1]:5".
std::string EndpointString(const asio::ip::tcp::endpoint& ep);

class TlsConn : public std::enable_shared_from_this<TlsConn> {
 public:
  enum class Role { kClient, kServer };
  using HandshakeDone = std::function<void(Status)>;

  // Wraps a connected socket. `describe` names the peer in errors.
  static Result<std::shared_ptr<TlsConn>> Create(asio::ip::tcp::socket socket, std::shared_ptr<SSL_CTX> ctx,
                                                 Role role, std::string describe, Authorize authorize,
                                                 TlsOptions options);
  ~TlsConn();
  TlsConn(const TlsConn&) = delete;
  TlsConn& operator=(const TlsConn&) = delete;

  // OpenSSL certificate verification for contexts from MakeTlsContext:
  // checks the leaf's DeviceId with the connection's `authorize`.
  static int VerifyCallbackForCtx(X509_STORE_CTX* store, void* arg);

  // Io thread. Runs the handshake and admission within
  // options.handshake_timeout; `done` runs once with OK (now Ready) or the
  // reason of the failure (the socket is then closed).
  void StartHandshake(HandshakeDone done);
  // Io thread. Fails the connection with `why` (handshake or stream).
  void Abort(Status why);

  // ByteStream, thread-safe.
  void Start(ByteStream::DataHandler on_data, ByteStream::CloseHandler on_closed,
             ByteStream::WritableHandler on_writable);
  void Write(std::string bytes);
  size_t PendingWriteBytes() const { return pending_.load(); }
  void Close();
  void AbortStream(const Status& why);
  // No handler runs after it returns (see HandlerSlot).
  void Detach() { slot_.Detach(); }
  // Valid once the handshake succeeded; constant afterwards.
  DeviceId remote_id() const { return remote_id_; }
  uint64_t bytes_sent() const { return sent_.load(std::memory_order_relaxed); }
  uint64_t bytes_received() const { return received_.load(std::memory_order_relaxed); }
  const std::string& describe() const { return describe_; }

 private:
  enum class State {
    kHandshake,  // TLS handshake running
    kAdmission,  // client: handshake done, waiting for kAdmitted
    kReady,      // established, waiting for Start; socket not read
    kOpen,       // started
    kClosing,    // Close requested: flushing queued bytes
    kLinger,     // close_notify sent (or being sent); close handler ran
    kDone,       // failed or finished; socket closed or closing
  };

  TlsConn(asio::ip::tcp::socket socket, std::shared_ptr<SSL_CTX> ctx, Role role, std::string describe,
          Authorize authorize, TlsOptions options);
  // The SSL ex_data index under which a TlsConn stores itself on its SSL,
  // for VerifyCallbackForCtx. Defined in tls_context.cc, as are
  // VerifyCallbackForCtx, VerifyPeer and TlsError.
  static int ConnIndex();
  bool VerifyPeer(X509* cert) REQUIRES(io_);

  // All below: io thread.
  void Advance() REQUIRES(io_);
  void AdvanceHandshake() REQUIRES(io_);
  void AdvanceAdmission() REQUIRES(io_);
  void ReadPlain() REQUIRES(io_);
  void EncryptMore() REQUIRES(io_);
  void DrainWbio() REQUIRES(io_);
  void FlushRaw() REQUIRES(io_);
  void OnWritten(const asio::error_code& ec, size_t n) REQUIRES(io_);
  void ArmRead() REQUIRES(io_);
  void OnRead(const asio::error_code& ec, size_t n) REQUIRES(io_);
  void DoStart() REQUIRES(io_);
  void DoWrite(std::string bytes) REQUIRES(io_);
  void DoClose() REQUIRES(io_);
  void DoAbort(const Status& why) REQUIRES(io_);
  void MaybeFinishClosing() REQUIRES(io_);
  void OnPeerClosed() REQUIRES(io_);
  void FinishHandshake(Status status) REQUIRES(io_);
  void FailStream(const Status& status) REQUIRES(io_);
  void DeliverClose(const Status& status) REQUIRES(io_);
  void DropQueued() REQUIRES(io_);
  void CloseSocket() REQUIRES(io_);
  void ArmTimer(std::chrono::milliseconds after, void (TlsConn::*fn)()) REQUIRES(io_);
  void OnHandshakeTimeout() REQUIRES(io_);
  void OnCloseTimeout() REQUIRES(io_);
  void OnLingerTimeout() REQUIRES(io_);
  Status TlsError(int ssl_error, const char* during) REQUIRES(io_);

  ThreadRole io_;  // the io thread
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  uint64_t timer_gen_ GUARDED_BY(io_) = 0;
  std::shared_ptr<SSL_CTX> ctx_;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // network bytes in; owned by ssl_
  BIO* wbio_ = nullptr;  // network bytes out; owned by ssl_
  const Role role_;
  const std::string describe_;
  Authorize authorize_;
  const TlsOptions options_;

  State state_ GUARDED_BY(io_) = State::kHandshake;
  HandshakeDone handshake_done_ GUARDED_BY(io_);
  Status refusal_ GUARDED_BY(io_);  // set when VerifyPeer refused the peer
  DeviceId remote_id_;
  bool started_ GUARDED_BY(io_) = false;
  std::optional<Status> final_ GUARDED_BY(io_);  // the close status, once known
  bool socket_closed_ GUARDED_BY(io_) = false;
  bool close_socket_when_flushed_ GUARDED_BY(io_) = false;
  bool half_close_when_flushed_ GUARDED_BY(io_) = false;

  bool reading_ GUARDED_BY(io_) = false;
  // Small while the handshake runs (a flood of unauthenticated connections
  // costs little), full size once the stream is open.
  std::unique_ptr<char[]> read_buf_ GUARDED_BY(io_);
  size_t read_buf_size_ GUARDED_BY(io_) = 0;
  std::unique_ptr<char[]> plain_buf_ GUARDED_BY(io_);  // made when the stream opens

  bool writing_ GUARDED_BY(io_) = false;
  std::string out_raw_ GUARDED_BY(io_);                  // encrypted, not yet handed to a write
  std::string in_flight_raw_ GUARDED_BY(io_);            // the write in progress
  size_t plain_in_out_raw_ GUARDED_BY(io_) = 0;          // plaintext bytes encrypted into out_raw_
  size_t plain_in_flight_ GUARDED_BY(io_) = 0;           // plaintext bytes in in_flight_raw_
  std::deque<std::string> plain_queue_ GUARDED_BY(io_);  // not yet encrypted
  size_t plain_offset_ GUARDED_BY(io_) = 0;              // encrypted prefix of front()

  HandlerSlot slot_;
  std::atomic<bool> close_requested_{false};
  std::atomic<size_t> pending_{0};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> received_{0};
};

// The ByteStream handed to users. Destroying it detaches the handlers and
// closes the connection gracefully in the background.
class TlsStream final : public ByteStream {
 public:
  explicit TlsStream(std::shared_ptr<TlsConn> conn) : conn_(std::move(conn)) {}
  ~TlsStream() override {
    conn_->Detach();
    conn_->Close();
  }
  using ByteStream::Start;
  void Start(DataHandler on_data, CloseHandler on_closed, WritableHandler on_writable) override {
    conn_->Start(std::move(on_data), std::move(on_closed), std::move(on_writable));
  }
  void Write(std::string bytes) override { conn_->Write(std::move(bytes)); }
  size_t PendingWriteBytes() const override { return conn_->PendingWriteBytes(); }
  void Close() override { conn_->Close(); }
  void Abort(const Status& why) override { conn_->AbortStream(why); }
  DeviceId RemoteId() const override { return conn_->remote_id(); }
  uint64_t BytesSent() const override { return conn_->bytes_sent(); }
  uint64_t BytesReceived() const override { return conn_->bytes_received(); }
  std::string Describe() const override { return conn_->describe(); }

 private:
  std::shared_ptr<TlsConn> conn_;
};

}  // namespace entrysync::net
