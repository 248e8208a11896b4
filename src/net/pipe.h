// In-memory ByteStream pairs: join nodes in one process (tests, tools).
#pragma once

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
// RemoteId() is `b_id`), the second is device `b_id`'s end.
//
// Each end honours the ByteStream contract: bytes arrive in order on that
// end's own delivery thread (started by Start), its callbacks never run
// concurrently. Close on either end (or destroying it) closes both: bytes
// written before the close are still delivered, then each end's close
// handler runs once with OK; bytes written afterwards are dropped.
// PendingWriteBytes counts bytes written and not yet delivered to the other
// end's handler. Byte counters count payload (there is no overhead).
//
// Destroying an end is safe at any time, also from inside its own handlers
// and with data in flight; after the destructor returns none of its
// handlers runs (when called from another thread it waits for a running
// one to return). Describe() is "pipe".
std::pair<std::unique_ptr<ByteStream>, std::unique_ptr<ByteStream>> MakePipe(DeviceId a_id, DeviceId b_id,
                                                                             PipeOptions options = {});

}  // namespace entrysync
