// ByteStream: the seam between the protocol and the transport.
//
// The sync protocol runs over any full-duplex ordered byte stream: a TLS
// connection (net/) in the product, an in-memory pipe (net/pipe.h) in tests
// that join several nodes in one process. Nothing above this interface
// includes socket or TLS headers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "entrysync/status.h"
#include "entrysync/types.h"

namespace entrysync {

class ByteStream {
 public:
  // Called with each chunk of bytes received, in order.
  using DataHandler = std::function<void(std::string_view)>;
  // Called exactly once when the stream ends: OK for an orderly close by
  // either side, an error otherwise. No callback follows it.
  using CloseHandler = std::function<void(Status)>;
  // Called after queued bytes were taken by the transport (PendingWriteBytes
  // went down): a sender that stopped at a high-water mark resumes here
  // instead of polling.
  using WritableHandler = std::function<void()>;

  virtual ~ByteStream() = default;

  // Starts delivering received bytes. Callbacks run on the stream's
  // executor (the io thread of a TLS stream, the executor given to a pipe
  // end), one at a time, never concurrently with each other. A handler may
  // call Write and Close. `on_writable` may be empty. REQUIRES: called once.
  virtual void Start(DataHandler on_data, CloseHandler on_closed, WritableHandler on_writable) = 0;
  void Start(DataHandler on_data, CloseHandler on_closed) {
    Start(std::move(on_data), std::move(on_closed), nullptr);
  }

  // Queues bytes for sending and returns at once. Thread-safe. Bytes written
  // after Close are dropped.
  virtual void Write(std::string bytes) = 0;

  // Bytes queued by Write and not yet handed to the kernel. Thread-safe.
  virtual size_t PendingWriteBytes() const = 0;

  // Flushes what is queued (best effort), then closes. Thread-safe,
  // idempotent. The close handler runs afterwards with OK.
  virtual void Close() = 0;

  // Closes at once, dropping what is queued (for a peer that does not read
  // what it is sent: a flush would wait for it). The close handler runs
  // with `why` unless the stream had already closed; bytes written
  // afterwards are dropped. Thread-safe, idempotent. The default, for
  // transports that cannot drop bytes, is Close().
  virtual void Abort(const Status& why) {
    (void)why;
    Close();
  }

  // The remote device as authenticated by the transport (a zero id when the
  // transport does not authenticate, like an unnamed pipe end).
  virtual DeviceId RemoteId() const = 0;

  // Bytes that crossed the wire in each direction so far, transport
  // overhead (TLS records) included where the transport knows it.
  virtual uint64_t BytesSent() const = 0;
  virtual uint64_t BytesReceived() const = 0;

  // "127.0.0.1:7001" or "pipe" for logs and errors.
  virtual std::string Describe() const = 0;
};

}  // namespace entrysync
