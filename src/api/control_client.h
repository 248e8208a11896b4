// The client's end of the control channel (docs/control.md): how an Engine
// that runs no node hands a write to the daemon that owns its library.
//
// Thread-compatible: each call uses its own connection.
#pragma once

#include <functional>
#include <string>

#include "api/control_protocol.h"

namespace entrysync {

// The daemon that holds `library_dir`'s process lock from another process,
// as LibraryLock::Holder sees it.
struct DaemonRef {
  std::string library_dir;
  int pid = 0;
};

// Sends `request` to `daemon` over LIBRARY/control.sock, calls `progress`
// with each progress line on the calling thread, and returns the final
// reply (a result, or the daemon's error as it is). Waits as long as the
// daemon takes (it serves one request at a time).
// Fails, naming the pid and the socket:
//   - IOError "... does not answer on SOCKET: REASON" when the socket is
//     missing, refuses, or does not accept within 5 s: nothing was sent,
//     nothing changed;
//   - Aborted when the daemon closed the connection before its final
//     reply (it may or may not have done the request);
//   - Corruption for a reply that does not decode.
Result<ControlReply> CallDaemon(const DaemonRef& daemon, const ControlRequest& request,
                                const std::function<void(uint64_t)>& progress);

}  // namespace entrysync
