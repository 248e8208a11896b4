// In-memory ByteStream pairs: join nodes in one process (tests, the
// simulation harness, tools).
#pragma once

#include <asio/any_io_executor.hpp>
#include <cstddef>
#include <memory>
#include <utility>

#include "base/byte_stream.h"
#include "entrysync/types.h"

namespace entrysync {

struct PipeOptions {
  // When non-zero, received bytes are handed to the data handler in pieces
  // of at most this size, as a socket may split them; exercises decoders.
  size_t max_chunk = 0;
};

// Returns two connected ends. The first is device `a_id`'s end (its
// RemoteId() is `b_id`); its callbacks run on `a_exec`. The second is device
// `b_id`'s end, its callbacks on `b_exec`. Both may be the same executor
// (the simulation harness runs several nodes on one io_context).
//
// Each end honours the ByteStream contract: bytes arrive in order, one
// delivery per posted handler (at most max_chunk bytes, else one Write's
// worth), callbacks never run concurrently. Close on either end (or
// destroying it) closes both: bytes written before the close are still
// delivered, then each end's close handler runs once with OK; bytes written
// afterwards are dropped. Cut() on an end closes both with an error at once,
// dropping what is in flight (a broken connection); Abort(why) does the
// same with `why` as both ends' close status. PendingWriteBytes
// counts bytes written and not yet delivered to the other end's handler; the
// writer's writable handler runs after each delivery. Byte counters count
// payload (there is no overhead).
//
// Destroying an end is safe at any time, also from inside its own handlers
// and with data in flight; after the destructor returns none of its
// handlers runs (when called from another thread it waits for a running
// one to return). Describe() is "pipe".
class PipeEnd;
std::pair<std::unique_ptr<ByteStream>, std::unique_ptr<ByteStream>> MakePipe(asio::any_io_executor a_exec,
                                                                             asio::any_io_executor b_exec,
                                                                             DeviceId a_id, DeviceId b_id,
                                                                             PipeOptions options = {});

// Breaks the connection of a pipe end made by MakePipe: both ends close
// with an IOError, bytes in flight are lost. Thread-safe. REQUIRES: `end`
// came from MakePipe.
void CutPipe(ByteStream& end);

}  // namespace entrysync
