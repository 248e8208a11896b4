// SessionHost: what a session needs from the node it runs in (implemented
// by SyncService).
#pragma once

#include <string>

#include "entrysync/types.h"
#include "store/library.h"
#include "sync/config.h"
#include "sync/rate_limiter.h"
#include "sync/reader.h"
#include "sync/writer.h"

namespace entrysync {

class Session;

// Every method is called on the sync loop only.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual const std::string& library_dir() const = 0;
  virtual const SyncConfig& config() const = 0;
  // The loop's connection to the library: reads only. It sees what a
  // writer job wrote once that job's completion ran.
  virtual Library& library() = 0;
  // The node's serving reads, off the loop (sync/reader.h).
  virtual Reader& reader() = 0;
  // Where every write goes (rows, resets, imports, pairing).
  virtual LibraryWriter& writer() = 0;
  // The node's rate limiters: one per peer device and direction, shared by
  // all the device's sessions.
  virtual RateLimits& rate_limits() = 0;
  // Claims the right to pull `owner` (one pull per owner per node at a
  // time); false when another session pulls it.
  virtual bool ClaimPull(const Uuid& owner, const Session* by) = 0;
  virtual void ReleasePull(const Uuid& owner, const Session* by) = 0;
  // Rows of `owner` served by `peer` did not verify: `owner` is not pulled
  // from `peer` for a while (the owner or another peer serves it).
  virtual void Distrust(const Uuid& owner, const Uuid& peer) = 0;
  virtual bool Distrusted(const Uuid& owner, const Uuid& peer) const = 0;
  // The peer's Hello was accepted. kDuplicate: another connection with the
  // same device is kept instead (one connection per pair of devices); this
  // one then closes quietly. kTooMany: the device holds
  // kMaxSessionsPerDevice connections already; this one is refused.
  enum class Admission { kAdmitted, kDuplicate, kTooMany };
  static constexpr size_t kMaxSessionsPerDevice = 4;
  virtual Admission OnPeerReady(Session* s) = 0;
  // Rows were written, a pull finished or the session closed: other
  // sessions may now pull, and what advanced flows on to other peers.
  virtual void OnSessionChanged(const Session* s) = 0;
  // The session's counters or transfers moved (for status and progress).
  virtual void OnSessionUpdated(const Session* s) = 0;
};

}  // namespace entrysync
