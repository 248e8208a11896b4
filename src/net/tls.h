// TLS transport: mutually authenticated TLS 1.3 over TCP.
//
// Both sides present their self-signed device certificate. A certificate is
// trusted for exactly one thing: the peer proved it holds the private key
// whose hash is the DeviceId. The caller decides which DeviceIds may
// connect (Authorize, normally "is it paired?") and which one a dial must
// reach (a pinned id). A peer that fails the check is refused during the
// handshake, before any application byte moves; see
// docs/architecture-net.md for the exact sequence.
//
// Threading: listeners and streams live on an IoThread; all callbacks given
// here run on that thread, one at a time. The IoThread must outlive them.
// Destroying a stream or a listener (or Stop) waits for a callback of it
// running on another thread to return, so do not destroy one while holding
// a lock its callbacks take. A stream's data handler runs on the io thread:
// a slow handler slows every connection of the loop (and TCP pushes back on
// the sender).
//
// Streams: TLS bytes count in BytesSent/BytesReceived (handshake included).
// Close flushes what is queued (giving up after TlsOptions::close_timeout,
// then the close handler gets an error), sends close_notify, and runs the
// close handler with OK. Receiving the peer's close_notify closes with OK;
// a connection cut without close_notify closes with an error.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/byte_stream.h"
#include "entrysync/status.h"
#include "entrysync/types.h"
#include "net/identity.h"
#include "net/io_thread.h"

namespace entrysync {

// Decides whether a peer that proved `id` may connect: OK to accept, an
// error (normally PermissionDenied("not paired")) to refuse; its message
// ends up in the refusal reported on this side. Runs on the io thread
// during the handshake; must not block.
using Authorize = std::function<Status(const DeviceId& id)>;

struct TlsOptions {
  // Limit on TCP connect + TLS handshake + admission, per connection.
  std::chrono::milliseconds handshake_timeout{10000};
  // How long Close may wait for queued bytes to drain before giving up
  // (the close handler then reports an error).
  std::chrono::milliseconds close_timeout{30000};
};

// What a listener lets strangers cost. A connection is "unauthenticated"
// from accept until its TLS handshake and admission are done (only then is
// the peer a device that proved a paired key); see
// docs/architecture-net.md, "Hostile load".
struct ListenOptions {
  TlsOptions tls;
  // At most this many unauthenticated connections at once. One more closes
  // the oldest of them to make room (a legitimate handshake takes a few
  // round trips; the oldest is the likeliest to be idle), so a flood of
  // idle connections costs bounded memory and descriptors and still lets a
  // paired device in. Listen lowers it to a quarter of the process's
  // descriptor limit (RLIMIT_NOFILE) when that is less.
  size_t max_unauthenticated = 256;
  // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM, or an
  // unknown accept error), the listener pauses accepting for
  // `accept_backoff`, doubling up to `accept_backoff_max`, and starts again
  // from `accept_backoff` once an accept succeeds. Errors that concern one
  // connection only (ECONNABORTED, EPROTO, ...) are skipped at once.
  std::chrono::milliseconds accept_backoff{100};
  std::chrono::milliseconds accept_backoff_max{1000};
  // `on_refused` hears at most `reports_per_interval` refusals (and accept
  // errors) per `report_interval`; the others are counted and reported as
  // one summary when the interval ends.
  size_t reports_per_interval = 5;
  std::chrono::milliseconds report_interval{10000};
};

class TlsListener {
 public:
  using OnAccepted = std::function<void(std::unique_ptr<ByteStream> stream)>;
  using OnRefused = std::function<void(Status why)>;

  // Listens on `host`:`port` (a literal address or a name; port 0 picks a
  // free one, see port()). Each incoming connection completes the TLS
  // handshake presenting `identity`; when the client's DeviceId passes
  // `authorize`, `on_accepted` gets the stream (not yet started; RemoteId()
  // is the client's id). Otherwise the client is sent a TLS alert and
  // disconnected, and `on_refused` gets a one-line reason (PermissionDenied
  // for an unauthorized device, Protocol for a non-TLS or broken client,
  // Aborted for a timeout or a connection closed to make room, IOError for
  // an accept error), within the rate of options.reports_per_interval; the
  // rest come as one summary per interval ("and N more in the last 10s:
  // ..."). Callbacks run on the io thread.
  // Fails with IOError when the address cannot be bound.
  static Result<std::unique_ptr<TlsListener>> Listen(IoThread& io, const Identity& identity,
                                                     const std::string& host, uint16_t port,
                                                     Authorize authorize, OnAccepted on_accepted,
                                                     OnRefused on_refused, ListenOptions options = {});

  // Stop()s.
  ~TlsListener();

  // The bound port.
  uint16_t port() const { return port_; }

  // Stops accepting and abandons handshakes in progress. After it returns
  // no callback of this listener runs (when called from another thread it
  // waits for a running one). Streams already handed out are not affected.
  // Thread-safe, idempotent.
  void Stop();

  class Impl;

 private:
  TlsListener(std::shared_ptr<Impl> impl, uint16_t port) : impl_(std::move(impl)), port_(port) {}
  std::shared_ptr<Impl> impl_;
  uint16_t port_;
};

using DialCallback = std::function<void(Result<std::unique_ptr<ByteStream>>)>;

// Connects to `host`:`port` presenting `identity` and completes the TLS
// handshake, requiring the server to prove DeviceId `expected`; then waits
// for the server to admit this device. `done` runs once, on the io thread,
// with the stream (not yet started) or a one-line error: PermissionDenied
// when the server is another device or refused ours, IOError when the
// connection failed, Aborted on timeout (options.handshake_timeout for the
// whole dial), Protocol when the server does not speak our TLS.
// Thread-safe.
void TlsDialAsync(IoThread& io, const Identity& identity, const std::string& host, uint16_t port,
                  const DeviceId& expected, DialCallback done, TlsOptions options = {});

// Blocking TlsDialAsync. REQUIRES: not called on the io thread.
Result<std::unique_ptr<ByteStream>> TlsDial(IoThread& io, const Identity& identity, const std::string& host,
                                            uint16_t port, const DeviceId& expected, TlsOptions options = {});

}  // namespace entrysync
