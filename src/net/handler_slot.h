// HandlerSlot: holds a ByteStream's user callbacks and invokes them one at
// a time, with a guarantee for the owner: after Detach() returns, no
// callback is running (unless Detach was called from inside one, on the same
// thread) and none will start. Internal to net.
#pragma once

#include <string_view>
#include <utility>

#include "base/byte_stream.h"
#include "base/mutex.h"

namespace entrysync::net {

class HandlerSlot {
 public:
  // Installs the handlers. Thread-safe.
  void Set(ByteStream::DataHandler on_data, ByteStream::CloseHandler on_closed,
           ByteStream::WritableHandler on_writable = nullptr) {
    MutexLock lock(mu_);
    if (detached_) return;
    on_data_ = std::move(on_data);
    on_closed_ = std::move(on_closed);
    on_writable_ = std::move(on_writable);
  }

  // Calls the writable handler unless detached or closed.
  void Writable() {
    MutexLock lock(mu_);
    if (detached_ || closed_ || !on_writable_) return;
    ++depth_;
    on_writable_();
    --depth_;
    ReleaseIfDone();
  }

  // Calls the data handler unless detached or already closed.
  void Data(std::string_view bytes) {
    MutexLock lock(mu_);
    if (detached_ || closed_ || !on_data_) return;
    ++depth_;
    on_data_(bytes);
    --depth_;
    ReleaseIfDone();
  }

  // Calls the close handler at most once over the slot's life; later Data
  // and Closed calls do nothing.
  void Closed(const Status& status) {
    MutexLock lock(mu_);
    if (detached_ || closed_) return;
    closed_ = true;
    ByteStream::CloseHandler handler = std::move(on_closed_);
    on_closed_ = nullptr;
    ++depth_;
    if (handler) handler(status);
    --depth_;
    ReleaseIfDone();
  }

  // Drops the handlers. Blocks while another thread runs one. May be called
  // from inside a handler: the running handler is destroyed when it returns.
  void Detach() {
    MutexLock lock(mu_);
    detached_ = true;
    ReleaseIfDone();
  }

 private:
  // Destroys handlers no longer needed, once none of them is running, which
  // also releases what they captured.
  void ReleaseIfDone() REQUIRES(mu_) {
    if (depth_ != 0) return;
    if (detached_ || closed_) {
      on_data_ = nullptr;
      on_closed_ = nullptr;
      on_writable_ = nullptr;
    }
  }

  // Recursive: a handler may call Detach (or, through its stream, another
  // method) on the thread that runs it.
  RecursiveMutex mu_;
  ByteStream::DataHandler on_data_ GUARDED_BY(mu_);
  ByteStream::CloseHandler on_closed_ GUARDED_BY(mu_);
  ByteStream::WritableHandler on_writable_ GUARDED_BY(mu_);
  bool detached_ GUARDED_BY(mu_) = false;
  bool closed_ GUARDED_BY(mu_) = false;
  int depth_ GUARDED_BY(mu_) = 0;  // handlers running
};

}  // namespace entrysync::net
