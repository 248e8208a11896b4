#include "net/tls.h"

#include <sys/resource.h>

#include <asio/connect.hpp>
#include <asio/post.hpp>
#include <future>
#include <map>

#include "base/mutex.h"
#include "net/accept_limits.h"
#include "net/tls_conn.h"

namespace entrysync {

using net::RefusalKind;
using net::TlsConn;
using net::TlsStream;
using tcp = asio::ip::tcp;

namespace {

void TuneSocket(tcp::socket& socket) {
  asio::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  socket.set_option(asio::socket_base::keep_alive(true), ec);
}

std::string HostPort(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

}  // namespace

// ---- listener --------------------------------------------------------------

namespace {

RefusalKind KindOf(const Status& s) {
  switch (s.code()) {
    case Code::kAborted:
    case Code::kIOError:
      return RefusalKind::kTimeout;
    case Code::kPermissionDenied:
      return RefusalKind::kNotPaired;
    default:
      return RefusalKind::kBroken;
  }
}

std::string Millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + "ms"; }

}  // namespace

// Owned by the TlsListener and by its pending operations. Accepting runs on
// the io thread; the callbacks are guarded by cb_mu_ so that Stop can
// promise that none runs after it returns.
class TlsListener::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(IoThread& io, std::shared_ptr<SSL_CTX> ctx, ListenOptions options, Authorize authorize,
       OnAccepted on_accepted, OnRefused on_refused)
      : acceptor_(io.context()),
        backoff_timer_(io.context()),
        summary_timer_(io.context()),
        ctx_(std::move(ctx)),
        options_(options),
        max_unauthenticated_(std::max<size_t>(1, options.max_unauthenticated)),
        backoff_(options.accept_backoff, options.accept_backoff_max),
        reports_(options.reports_per_interval, options.report_interval),
        authorize_(std::move(authorize)),
        on_accepted_(std::move(on_accepted)),
        on_refused_(std::move(on_refused)) {}

  tcp::acceptor& acceptor() { return acceptor_; }
  void set_port(uint16_t port) { port_ = port; }

  void AcceptNext() {
    acceptor_.async_accept([self = shared_from_this()](const asio::error_code& ec, tcp::socket s) {
      self->io_.AssertHeld();
      self->OnAccept(ec, std::move(s));
    });
  }

  void Stop() {
    {
      MutexLock lock(cb_mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      self->io_.AssertHeld();
      asio::error_code ec;
      self->acceptor_.close(ec);
      self->backoff_timer_.cancel();
      self->summary_timer_.cancel();
      auto conns = std::move(self->handshaking_);
      self->handshaking_.clear();
      for (auto& [seq, weak] : conns) {
        if (auto c = weak.lock()) c->Abort(Aborted("listener stopped"));
      }
      MutexLock lock(self->cb_mu_);
      self->authorize_ = nullptr;
      self->on_accepted_ = nullptr;
      self->on_refused_ = nullptr;
    });
  }

 private:
  void OnAccept(const asio::error_code& ec, tcp::socket socket) REQUIRES(io_) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      if (net::IsPerConnectionAcceptError(ec)) {
        AcceptNext();  // that connection is gone; the next one may be fine
        return;
      }
      // Out of descriptors or memory: accepting again at once would fail at
      // once. Pause; the connections wait in the kernel's backlog.
      const std::chrono::milliseconds pause = backoff_.Next();
      reports_.NoteAcceptError(ec.message());
      Report(RefusalKind::kAcceptError, IOError("accept on port " + std::to_string(port_) + ": " +
                                                ec.message() + "; accepting again in " + Millis(pause)));
      backoff_timer_.expires_after(pause);
      backoff_timer_.async_wait([self = shared_from_this()](const asio::error_code& e) {
        self->io_.AssertHeld();
        if (!e && self->acceptor_.is_open()) self->AcceptNext();
      });
      return;
    }
    backoff_.Reset();
    AcceptNext();
    TuneSocket(socket);
    asio::error_code ep_ec;
    std::string describe = net::EndpointString(socket.remote_endpoint(ep_ec));
    if (ep_ec) describe = "unknown peer";
    MakeRoom();
    std::weak_ptr<Impl> weak = weak_from_this();
    auto conn = TlsConn::Create(
        std::move(socket), ctx_, TlsConn::Role::kServer, describe,
        [weak](const DeviceId& id) -> Status {
          auto self = weak.lock();
          if (!self) return Aborted("listener stopped");
          MutexLock lock(self->cb_mu_);
          if (self->stopped_ || !self->authorize_) return Aborted("listener stopped");
          return self->authorize_(id);
        },
        options_.tls);
    if (!conn.ok()) {
      Report(RefusalKind::kBroken, conn.status());
      return;
    }
    std::shared_ptr<TlsConn> c = *conn;
    const uint64_t seq = ++accepted_;
    handshaking_[seq] = c;
    c->StartHandshake([self = shared_from_this(), seq](Status s) {
      self->io_.AssertHeld();
      self->OnHandshake(seq, std::move(s));
    });
  }

  // At the limit of unauthenticated connections: closes the oldest.
  void MakeRoom() REQUIRES(io_) {
    while (handshaking_.size() >= max_unauthenticated_) {
      auto oldest = handshaking_.begin();
      std::shared_ptr<TlsConn> victim = oldest->second.lock();
      handshaking_.erase(oldest);
      if (!victim) continue;
      std::string why = "peer " + victim->describe() + ": closed to make room for a newer connection (" +
                        std::to_string(max_unauthenticated_) + " unauthenticated at once)";
      victim->Abort(Aborted(why));  // its OnHandshake finds it gone and stays quiet
      Report(RefusalKind::kOverLimit, Aborted(std::move(why)));
    }
  }

  void OnHandshake(uint64_t seq, Status status) REQUIRES(io_) {
    auto it = handshaking_.find(seq);
    std::shared_ptr<TlsConn> conn;
    if (it != handshaking_.end()) {
      conn = it->second.lock();
      handshaking_.erase(it);
    }
    if (!conn) return;  // closed to make room (reported), or the listener stopped
    if (status.ok()) {
      MutexLock lock(cb_mu_);
      if (!stopped_ && on_accepted_) on_accepted_(std::make_unique<TlsStream>(std::move(conn)));
    } else {
      const RefusalKind kind = KindOf(status);
      Report(kind, std::move(status));
    }
  }

  // A refusal: reported in full while the interval's allowance lasts, else
  // counted for the interval's summary.
  void Report(RefusalKind kind, Status status) REQUIRES(io_) {
    const auto now = std::chrono::steady_clock::now();
    if (auto summary = reports_.TakeSummary(now, max_unauthenticated_)) Refused(Aborted(std::move(*summary)));
    if (reports_.Admit(kind, now)) {
      Refused(std::move(status));
    } else {
      ArmSummary();
    }
  }

  void ArmSummary() REQUIRES(io_) {
    if (summary_armed_ || !reports_.holding()) return;
    summary_armed_ = true;
    summary_timer_.expires_at(reports_.interval_end());
    summary_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      self->io_.AssertHeld();
      self->summary_armed_ = false;
      if (ec) return;
      if (auto summary =
              self->reports_.TakeSummary(std::chrono::steady_clock::now(), self->max_unauthenticated_))
        self->Refused(Aborted(std::move(*summary)));
      self->ArmSummary();  // refusals held back in a newer interval
    });
  }

  void Refused(Status status) {
    MutexLock lock(cb_mu_);
    if (!stopped_ && on_refused_) on_refused_(std::move(status));
  }

  tcp::acceptor acceptor_;
  asio::steady_timer backoff_timer_;
  asio::steady_timer summary_timer_;
  const std::shared_ptr<SSL_CTX> ctx_;
  const ListenOptions options_;
  const size_t max_unauthenticated_;
  uint16_t port_ = 0;  // set before the first accept
  ThreadRole io_;      // the io thread
  // Connections accepted whose handshake and admission are not done, by
  // accept order (the oldest first). Weak: a connection lives through its
  // own operations.
  std::map<uint64_t, std::weak_ptr<TlsConn>> handshaking_ GUARDED_BY(io_);
  uint64_t accepted_ GUARDED_BY(io_) = 0;
  net::AcceptBackoff backoff_ GUARDED_BY(io_);
  net::RefusalReports reports_ GUARDED_BY(io_);
  bool summary_armed_ GUARDED_BY(io_) = false;

  // Recursive: a callback may stop the listener.
  RecursiveMutex cb_mu_;
  bool stopped_ GUARDED_BY(cb_mu_) = false;
  Authorize authorize_ GUARDED_BY(cb_mu_);
  OnAccepted on_accepted_ GUARDED_BY(cb_mu_);
  OnRefused on_refused_ GUARDED_BY(cb_mu_);
};

Result<std::unique_ptr<TlsListener>> TlsListener::Listen(IoThread& io, const Identity& identity,
                                                         const std::string& host, uint16_t port,
                                                         Authorize authorize, OnAccepted on_accepted,
                                                         OnRefused on_refused, ListenOptions options) {
  const std::string where = "listen on " + HostPort(host, port);
  ES_ASSIGN_OR_RETURN(auto ctx, net::MakeTlsContext(identity, /*server=*/true));

  asio::error_code ec;
  tcp::resolver resolver(io.context());
  auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec) return IOError(where + ": " + ec.message());
  if (results.empty()) return IOError(where + ": no address");
  const tcp::endpoint endpoint = results.begin()->endpoint();

  // A quarter of the descriptors at most: the rest stay for paired peers,
  // the library and the daemon's own files.
  struct rlimit nofile {};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY)
    options.max_unauthenticated =
        std::min<size_t>(options.max_unauthenticated, std::max<rlim_t>(4, nofile.rlim_cur / 4));
  auto impl = std::make_shared<Impl>(io, std::move(ctx), options, std::move(authorize),
                                     std::move(on_accepted), std::move(on_refused));
  tcp::acceptor& acc = impl->acceptor();
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return IOError(where + ": " + ec.message());
  const uint16_t bound = acc.local_endpoint(ec).port();
  if (ec) return IOError(where + ": " + ec.message());
  impl->set_port(bound);

  asio::post(io.context(), [impl] { impl->AcceptNext(); });
  return std::unique_ptr<TlsListener>(new TlsListener(std::move(impl), bound));
}

TlsListener::~TlsListener() { Stop(); }

void TlsListener::Stop() { impl_->Stop(); }

// ---- dial ------------------------------------------------------------------

namespace {

// One dial in progress: resolve, connect, handshake. Io thread only.
class DialOp : public std::enable_shared_from_this<DialOp> {
 public:
  DialOp(IoThread& io, std::shared_ptr<SSL_CTX> ctx, std::string host, uint16_t port, DeviceId expected,
         DialCallback done, TlsOptions options)
      : resolver_(io.context()),
        socket_(io.context()),
        timer_(io.context()),
        ctx_(std::move(ctx)),
        host_(std::move(host)),
        port_(port),
        describe_(HostPort(host_, port_)),
        expected_(expected),
        done_(std::move(done)),
        options_(options) {}

  void Start() {
    deadline_ = std::chrono::steady_clock::now() + options_.handshake_timeout;
    timer_.expires_at(deadline_);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->OnTimeout();
    });
    resolver_.async_resolve(
        host_, std::to_string(port_),
        [self = shared_from_this()](const asio::error_code& ec, const tcp::resolver::results_type& results) {
          self->OnResolved(ec, results);
        });
  }

 private:
  void OnResolved(const asio::error_code& ec, const tcp::resolver::results_type& results) {
    if (finished_) return;
    if (ec) {
      Finish(IOError("dial " + describe_ + ": resolve: " + ec.message()));
      return;
    }
    asio::async_connect(socket_, results,
                        [self = shared_from_this()](const asio::error_code& ec, const tcp::endpoint&) {
                          self->OnConnected(ec);
                        });
  }

  void OnConnected(const asio::error_code& ec) {
    if (finished_) return;
    if (ec) {
      Finish(IOError("dial " + describe_ + ": " + ec.message()));
      return;
    }
    TuneSocket(socket_);
    TlsOptions opts = options_;
    opts.handshake_timeout = std::max(
        std::chrono::milliseconds(1),
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now()));
    const DeviceId expected = expected_;
    auto conn = TlsConn::Create(
        std::move(socket_), ctx_, TlsConn::Role::kClient, describe_,
        [expected](const DeviceId& id) -> Status {
          if (id == expected) return Status::Ok();
          return PermissionDenied("expected device " + ShortDeviceId(expected));
        },
        opts);
    if (!conn.ok()) {
      Finish(conn.status());
      return;
    }
    ++timer_gen_;
    timer_.cancel();  // the connection enforces the rest of the deadline
    conn_ = *conn;
    conn_->StartHandshake([self = shared_from_this()](Status s) { self->OnHandshake(std::move(s)); });
  }

  void OnHandshake(Status status) {
    if (finished_) return;
    std::shared_ptr<TlsConn> conn = std::move(conn_);
    if (status.ok()) {
      Finish(std::unique_ptr<ByteStream>(new TlsStream(std::move(conn))));
    } else {
      Finish(std::move(status));
    }
  }

  void OnTimeout() {
    if (finished_ || timer_gen_ != 0) return;
    asio::error_code ec;
    resolver_.cancel();
    socket_.close(ec);
    Finish(Aborted("dial " + describe_ + ": no connection within " +
                   std::to_string(options_.handshake_timeout.count()) + "ms"));
  }

  void Finish(Result<std::unique_ptr<ByteStream>> result) {
    finished_ = true;
    timer_.cancel();
    DialCallback done = std::move(done_);
    done_ = nullptr;
    conn_.reset();
    if (done) done(std::move(result));
  }

  tcp::resolver resolver_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  uint64_t timer_gen_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  const std::shared_ptr<SSL_CTX> ctx_;
  const std::string host_;
  const uint16_t port_;
  const std::string describe_;
  const DeviceId expected_;
  DialCallback done_;
  const TlsOptions options_;
  std::shared_ptr<TlsConn> conn_;
  bool finished_ = false;
};

}  // namespace

void TlsDialAsync(IoThread& io, const Identity& identity, const std::string& host, uint16_t port,
                  const DeviceId& expected, DialCallback done, TlsOptions options) {
  auto ctx = net::MakeTlsContext(identity, /*server=*/false);
  if (!ctx.ok()) {
    asio::post(io.context(), [done = std::move(done), s = ctx.status()] { done(s); });
    return;
  }
  auto op = std::make_shared<DialOp>(io, std::move(*ctx), host, port, expected, std::move(done), options);
  asio::post(io.context(), [op] { op->Start(); });
}

Result<std::unique_ptr<ByteStream>> TlsDial(IoThread& io, const Identity& identity, const std::string& host,
                                            uint16_t port, const DeviceId& expected, TlsOptions options) {
  if (io.InIoThread()) {
    return Internal("TlsDial called on the io thread; use TlsDialAsync");
  }
  auto promise = std::make_shared<std::promise<Result<std::unique_ptr<ByteStream>>>>();
  auto future = promise->get_future();
  TlsDialAsync(
      io, identity, host, port, expected,
      [promise](Result<std::unique_ptr<ByteStream>> r) { promise->set_value(std::move(r)); }, options);
  // The dial reports within its own deadline while the loop runs; the
  // margin covers a loop that was stopped underneath us.
  if (future.wait_for(options.handshake_timeout + std::chrono::seconds(5)) != std::future_status::ready) {
    return Aborted("dial " + HostPort(host, port) + ": the io thread is not running");
  }
  return future.get();
}

}  // namespace entrysync
