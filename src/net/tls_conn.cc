#include "net/tls_conn.h"

#include <openssl/err.h>

#include <asio/post.hpp>
#include <asio/write.hpp>
#include <mutex>

#include "net/openssl_util.h"

namespace entrysync::net {
namespace {

constexpr char kAdmitted = 0x01;
constexpr size_t kReadBufSize = size_t{128} * 1024;
constexpr size_t kHandshakeReadBufSize = size_t{16} * 1024;
constexpr size_t kPlainBufSize = size_t{64} * 1024;
// Plaintext is encrypted in slices of this size, and only while less than
// kRawHighWater encrypted bytes wait for the socket: memory stays bounded
// whatever the caller queues, and PendingWriteBytes stays meaningful.
constexpr size_t kEncryptSlice = size_t{64} * 1024;
constexpr size_t kRawHighWater = size_t{256} * 1024;
constexpr std::chrono::milliseconds kLinger{2000};

std::string Seconds(std::chrono::milliseconds ms) {
  auto s = std::to_string(ms.count() / 1000.0);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s + "s";
}

}  // namespace

std::string EndpointString(const asio::ip::tcp::endpoint& ep) {
  const auto addr = ep.address();
  std::string host = addr.to_string();
  if (addr.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

Result<std::shared_ptr<TlsConn>> TlsConn::Create(asio::ip::tcp::socket socket, std::shared_ptr<SSL_CTX> ctx,
                                                 Role role, std::string describe, Authorize authorize,
                                                 TlsOptions options) {
  std::shared_ptr<TlsConn> conn(new TlsConn(std::move(socket), std::move(ctx), role, std::move(describe),
                                            std::move(authorize), options));
  if (conn->ssl_ == nullptr) {
    return Internal("create TLS session for " + conn->describe_ + ": " + TakeOpenSslError());
  }
  return conn;
}

TlsConn::TlsConn(asio::ip::tcp::socket socket, std::shared_ptr<SSL_CTX> ctx, Role role, std::string describe,
                 Authorize authorize, TlsOptions options)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      ctx_(std::move(ctx)),
      role_(role),
      describe_(std::move(describe)),
      authorize_(std::move(authorize)),
      options_(options),
      read_buf_(new char[kHandshakeReadBufSize]),
      read_buf_size_(kHandshakeReadBufSize) {
  SSL* ssl = SSL_new(ctx_.get());
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (ssl == nullptr || rbio == nullptr || wbio == nullptr) {
    SSL_free(ssl);
    BIO_free(rbio);
    BIO_free(wbio);
    return;
  }
  BIO_set_mem_eof_return(rbio, -1);  // empty means "want more", not EOF
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_ex_data(ssl, ConnIndex(), this);
  if (role_ == Role::kServer) {
    SSL_set_accept_state(ssl);
  } else {
    SSL_set_connect_state(ssl);
  }
  ssl_ = ssl;
  rbio_ = rbio;
  wbio_ = wbio;
}

TlsConn::~TlsConn() { SSL_free(ssl_); }

// ---- handshake -------------------------------------------------------------

void TlsConn::StartHandshake(HandshakeDone done) {
  io_.AssertHeld();
  handshake_done_ = std::move(done);
  state_ = State::kHandshake;
  ArmTimer(options_.handshake_timeout, &TlsConn::OnHandshakeTimeout);
  Advance();
}

void TlsConn::OnHandshakeTimeout() {
  if (state_ != State::kHandshake && state_ != State::kAdmission) return;
  FinishHandshake(Aborted("peer " + describe_ + ": TLS handshake not done within " +
                          Seconds(options_.handshake_timeout)));
}

void TlsConn::AdvanceHandshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    if (remote_id_.is_zero()) {  // VerifyPeer did not run: cannot happen
      FinishHandshake(PermissionDenied("peer " + describe_ + " presented no device certificate"));
      return;
    }
    if (role_ == Role::kServer) {
      ERR_clear_error();
      if (SSL_write(ssl_, &kAdmitted, 1) != 1) {
        FinishHandshake(TlsError(SSL_ERROR_SSL, "admission"));
        return;
      }
      DrainWbio();
      FinishHandshake(Status::Ok());
    } else {
      state_ = State::kAdmission;
      AdvanceAdmission();
    }
    return;
  }
  int err = SSL_get_error(ssl_, r);
  if (err == SSL_ERROR_WANT_READ) {
    FlushRaw();
    ArmRead();
    return;
  }
  FinishHandshake(TlsError(err, "handshake"));
}

void TlsConn::AdvanceAdmission() {
  char byte = 0;
  ERR_clear_error();
  int r = SSL_read(ssl_, &byte, 1);
  if (r == 1) {
    if (byte == kAdmitted) {
      FinishHandshake(Status::Ok());
    } else {
      FinishHandshake(ProtocolError("peer " + describe_ + " sent no admission after the TLS handshake"));
    }
    return;
  }
  int err = SSL_get_error(ssl_, r);
  if (err == SSL_ERROR_WANT_READ) {
    FlushRaw();
    ArmRead();
    return;
  }
  FinishHandshake(TlsError(err, "admission"));
}

void TlsConn::FinishHandshake(Status status) {
  if (state_ != State::kHandshake && state_ != State::kAdmission) return;
  ++timer_gen_;
  timer_.cancel();
  HandshakeDone done = std::move(handshake_done_);
  handshake_done_ = nullptr;
  if (status.ok()) {
    state_ = State::kReady;
    FlushRaw();
  } else {
    state_ = State::kDone;
    // Send the alert OpenSSL queued, if any, then close.
    close_socket_when_flushed_ = true;
    if (writing_) {
      CloseSocket();
    } else {
      DrainWbio();
      FlushRaw();
    }
  }
  authorize_ = nullptr;  // releases what the caller captured
  if (done) done(std::move(status));
}

void TlsConn::Abort(Status why) {
  io_.AssertHeld();
  if (state_ == State::kHandshake || state_ == State::kAdmission) {
    FinishHandshake(std::move(why));
  } else {
    FailStream(why);
  }
}

// ---- pumping ---------------------------------------------------------------

void TlsConn::Advance() {
  switch (state_) {
    case State::kHandshake:
      AdvanceHandshake();
      return;
    case State::kAdmission:
      AdvanceAdmission();
      return;
    case State::kReady:
      FlushRaw();
      return;
    case State::kOpen:
    case State::kClosing:
      ReadPlain();
      if (state_ != State::kOpen && state_ != State::kClosing) return;
      EncryptMore();
      FlushRaw();
      ArmRead();
      MaybeFinishClosing();
      return;
    case State::kLinger:
    case State::kDone:
      return;
  }
}

void TlsConn::ReadPlain() {
  if (!plain_buf_) plain_buf_.reset(new char[kPlainBufSize]);
  for (;;) {
    size_t filled = 0;
    int err = SSL_ERROR_NONE;
    while (filled < kPlainBufSize) {
      ERR_clear_error();
      int r = SSL_read(ssl_, plain_buf_.get() + filled, static_cast<int>(kPlainBufSize - filled));
      if (r <= 0) {
        err = SSL_get_error(ssl_, r);
        break;
      }
      filled += static_cast<size_t>(r);
    }
    if (filled > 0) {
      slot_.Data(std::string_view(plain_buf_.get(), filled));
      if (state_ != State::kOpen && state_ != State::kClosing) return;
    }
    if (err == SSL_ERROR_NONE) continue;  // buffer was full
    if (err == SSL_ERROR_WANT_READ) {
      DrainWbio();  // e.g. a KeyUpdate answer
      return;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
      OnPeerClosed();
      return;
    }
    FailStream(TlsError(err, "transfer"));
    return;
  }
}

void TlsConn::EncryptMore() {
  while (!plain_queue_.empty() && out_raw_.size() < kRawHighWater) {
    const std::string& front = plain_queue_.front();
    size_t n = std::min(front.size() - plain_offset_, kEncryptSlice);
    ERR_clear_error();
    int r = SSL_write(ssl_, front.data() + plain_offset_, static_cast<int>(n));
    if (r <= 0) {
      FailStream(TlsError(SSL_get_error(ssl_, r), "transfer"));
      return;
    }
    plain_offset_ += static_cast<size_t>(r);
    plain_in_out_raw_ += static_cast<size_t>(r);
    if (plain_offset_ == front.size()) {
      plain_queue_.pop_front();
      plain_offset_ = 0;
    }
    DrainWbio();
  }
}

void TlsConn::DrainWbio() {
  size_t n = BIO_ctrl_pending(wbio_);
  if (n == 0) return;
  size_t old = out_raw_.size();
  out_raw_.resize(old + n);
  int got = BIO_read(wbio_, out_raw_.data() + old, static_cast<int>(n));
  out_raw_.resize(old + (got > 0 ? static_cast<size_t>(got) : 0));
}

void TlsConn::FlushRaw() {
  if (socket_closed_) return;
  DrainWbio();
  if (writing_) return;
  if (out_raw_.empty()) {
    if (close_socket_when_flushed_) {
      CloseSocket();
    } else if (half_close_when_flushed_) {
      half_close_when_flushed_ = false;
      asio::error_code ec;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      DeliverClose(Status::Ok());
      ArmTimer(kLinger, &TlsConn::OnLingerTimeout);
      ArmRead();
    }
    return;
  }
  in_flight_raw_.swap(out_raw_);
  out_raw_.clear();
  plain_in_flight_ = plain_in_out_raw_;
  plain_in_out_raw_ = 0;
  writing_ = true;
  asio::async_write(socket_, asio::buffer(in_flight_raw_),
                    [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                      self->io_.AssertHeld();
                      self->OnWritten(ec, n);
                    });
}

void TlsConn::OnWritten(const asio::error_code& ec, size_t n) {
  writing_ = false;
  sent_.fetch_add(n, std::memory_order_relaxed);
  if (ec) {
    if (state_ == State::kDone || state_ == State::kLinger) {
      CloseSocket();
    } else if (state_ == State::kHandshake || state_ == State::kAdmission) {
      FinishHandshake(IOError("send to " + describe_ + ": " + ec.message()));
    } else {
      FailStream(IOError("send to " + describe_ + ": " + ec.message()));
    }
    return;
  }
  pending_.fetch_sub(plain_in_flight_);
  bool drained_some = plain_in_flight_ > 0;
  plain_in_flight_ = 0;
  in_flight_raw_.clear();
  if (state_ == State::kReady || state_ == State::kOpen || state_ == State::kClosing) {
    EncryptMore();
  }
  FlushRaw();
  MaybeFinishClosing();
  if (drained_some && state_ == State::kOpen) slot_.Writable();
}

void TlsConn::ArmRead() {
  if (reading_ || socket_closed_) return;
  switch (state_) {
    case State::kHandshake:
    case State::kAdmission:
    case State::kOpen:
    case State::kClosing:
    case State::kLinger:
      break;
    case State::kReady:
    case State::kDone:
      return;
  }
  if (read_buf_size_ < kReadBufSize && (state_ == State::kOpen || state_ == State::kClosing)) {
    read_buf_.reset(new char[kReadBufSize]);
    read_buf_size_ = kReadBufSize;
  }
  reading_ = true;
  socket_.async_read_some(asio::buffer(read_buf_.get(), read_buf_size_),
                          [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                            self->io_.AssertHeld();
                            self->OnRead(ec, n);
                          });
}

void TlsConn::OnRead(const asio::error_code& ec, size_t n) {
  reading_ = false;
  received_.fetch_add(n, std::memory_order_relaxed);
  if (state_ == State::kLinger) {
    if (ec) {
      CloseSocket();  // the peer closed too: done
    } else {
      ArmRead();  // discard
    }
    return;
  }
  if (state_ == State::kDone) return;
  if (ec) {
    Status why = ec == asio::error::eof
                     ? Aborted("peer " + describe_ + " closed the connection without TLS close_notify")
                     : IOError("receive from " + describe_ + ": " + ec.message());
    if (state_ == State::kHandshake || state_ == State::kAdmission) {
      if (ec == asio::error::eof) {
        why = Aborted("peer " + describe_ + " closed the connection during the TLS handshake");
      }
      FinishHandshake(std::move(why));
    } else {
      FailStream(why);
    }
    return;
  }
  if (BIO_write(rbio_, read_buf_.get(), static_cast<int>(n)) != static_cast<int>(n)) {
    FailStream(Internal("buffer bytes from " + describe_ + ": out of memory"));
    return;
  }
  Advance();
}

// ---- ByteStream ------------------------------------------------------------

void TlsConn::Start(ByteStream::DataHandler on_data, ByteStream::CloseHandler on_closed,
                    ByteStream::WritableHandler on_writable) {
  slot_.Set(std::move(on_data), std::move(on_closed), std::move(on_writable));
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->io_.AssertHeld();
    self->DoStart();
  });
}

void TlsConn::DoStart() {
  if (started_) return;
  started_ = true;
  if (final_) {
    slot_.Closed(*final_);
    return;
  }
  if (state_ == State::kReady) state_ = State::kOpen;
  Advance();
}

void TlsConn::Write(std::string bytes) {
  if (bytes.empty() || close_requested_.load()) return;
  pending_.fetch_add(bytes.size());
  asio::post(socket_.get_executor(), [self = shared_from_this(), b = std::move(bytes)]() mutable {
    self->io_.AssertHeld();
    self->DoWrite(std::move(b));
  });
}

void TlsConn::DoWrite(std::string bytes) {
  if (state_ != State::kReady && state_ != State::kOpen && state_ != State::kClosing) {
    pending_.fetch_sub(bytes.size());
    return;
  }
  // Small writes (a Pong, a Credit) join the last queued one: a queue of
  // many tiny strings would cost several times their bytes.
  if (bytes.size() < kEncryptSlice && !plain_queue_.empty() && plain_queue_.back().size() < kEncryptSlice) {
    plain_queue_.back().append(bytes);
  } else {
    plain_queue_.push_back(std::move(bytes));
  }
  EncryptMore();
  FlushRaw();
}

void TlsConn::Close() {
  if (close_requested_.exchange(true)) return;
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->io_.AssertHeld();
    self->DoClose();
  });
}

void TlsConn::AbortStream(const Status& why) {
  close_requested_ = true;  // later writes are dropped
  asio::post(socket_.get_executor(), [self = shared_from_this(), why] {
    self->io_.AssertHeld();
    self->DoAbort(why);
  });
}

// Unlike FailStream, sends nothing more: a peer that does not read could
// hold even an alert back for ever.
void TlsConn::DoAbort(const Status& why) {
  if (state_ == State::kDone) return;
  const bool was_linger = state_ == State::kLinger;
  DropQueued();
  state_ = State::kDone;
  CloseSocket();
  if (!was_linger) DeliverClose(why);
}

void TlsConn::DoClose() {
  if (state_ != State::kReady && state_ != State::kOpen) return;
  state_ = State::kClosing;
  ArmTimer(options_.close_timeout, &TlsConn::OnCloseTimeout);
  MaybeFinishClosing();
}

void TlsConn::OnCloseTimeout() {
  if (state_ != State::kClosing) return;
  FailStream(Aborted("close " + describe_ + ": " + std::to_string(pending_.load()) +
                     " queued bytes not taken by the peer within " + Seconds(options_.close_timeout)));
}

void TlsConn::MaybeFinishClosing() {
  if (state_ != State::kClosing) return;
  if (!plain_queue_.empty() || writing_ || !out_raw_.empty() || BIO_ctrl_pending(wbio_) != 0) {
    return;
  }
  ++timer_gen_;
  timer_.cancel();
  state_ = State::kLinger;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // queues close_notify; we do not wait for the peer's
  ERR_clear_error();
  half_close_when_flushed_ = true;
  FlushRaw();
}

void TlsConn::OnLingerTimeout() {
  if (state_ == State::kLinger) CloseSocket();
}

void TlsConn::OnPeerClosed() {
  // The peer sent close_notify: it sends nothing more and discards what we
  // would send. Answer with ours and finish.
  DropQueued();
  ++timer_gen_;
  timer_.cancel();
  state_ = State::kDone;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  close_socket_when_flushed_ = true;
  FlushRaw();
  DeliverClose(Status::Ok());
}

void TlsConn::FailStream(const Status& status) {
  if (state_ == State::kDone) return;
  const bool was_linger = state_ == State::kLinger;
  DropQueued();
  ++timer_gen_;
  timer_.cancel();
  state_ = State::kDone;
  // Pass on an alert OpenSSL may have queued, unless the socket is stuck.
  close_socket_when_flushed_ = true;
  if (writing_) {
    CloseSocket();
  } else {
    DrainWbio();
    FlushRaw();
  }
  if (!was_linger) DeliverClose(status);
}

void TlsConn::DropQueued() {
  plain_queue_.clear();
  plain_offset_ = 0;
  // Encrypted bytes still in out_raw_ or on the way count no more either: a
  // write that completes later must not take them off pending_ again.
  plain_in_out_raw_ = 0;
  plain_in_flight_ = 0;
  pending_.store(0);
}

void TlsConn::DeliverClose(const Status& status) {
  if (final_) return;
  final_ = status;
  if (started_) slot_.Closed(status);
}

void TlsConn::CloseSocket() {
  if (socket_closed_) return;
  socket_closed_ = true;
  ++timer_gen_;
  timer_.cancel();
  asio::error_code ec;
  socket_.close(ec);
  out_raw_.clear();
  if (state_ == State::kLinger) state_ = State::kDone;
}

void TlsConn::ArmTimer(std::chrono::milliseconds after, void (TlsConn::*fn)()) {
  const uint64_t gen = ++timer_gen_;
  timer_.expires_after(after);
  timer_.async_wait([self = shared_from_this(), gen, fn](const asio::error_code& ec) {
    self->io_.AssertHeld();
    if (ec || gen != self->timer_gen_) return;
    ((*self).*fn)();
  });
}

}  // namespace entrysync::net
