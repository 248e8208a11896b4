// Reader: the reads that serve peers, off the sync loop.
//
// Serving reads many rows: a batch stream is one ScanOwnerEntries plus an
// encode and a compression per batch, an on-demand load walks a folder, a
// snapshot offer may export a whole owner (about 1.4 s at 1M rows). On the
// sync loop, every other session would wait meanwhile. A node's SyncService
// owns one Reader with two lanes, each a thread with its own connection to
// the library, whatever the number of peers:
//
//   kServe   "es-read"    row batches, StateChanges of a serve, folder loads;
//                         a reading connection (Library::OpenForReading:
//                         PRAGMA query_only, any write fails)
//   kExport  "es-export"  snapshot exports: on demand for a peer's offer,
//                         and the background preparation of this device's
//                         own snapshot; a connection that writes only the
//                         snapshot file it ATTACHes, never the library
//
// An export has a lane of its own so that serves keep streaming while it
// runs. Jobs of one lane run one at a time, in the order posted. WAL lets
// both lanes read committed rows while the library's writer commits; each
// statement reads one consistent cut.
//
// A job runs with the lane's Library and returns a value; Run() hands that
// value to a completion on the sync loop, unless the `alive` token expired
// by then (the session that asked is gone). A job therefore captures values
// only, never a session or anything it owns.
//
// Executor seam: with `threads` false (the simulation, sync/sim.h) there is
// no thread: jobs are posted to the loop executor itself, so a polled loop
// runs them deterministically, in the order posted. The lanes' connections
// are the same either way.
//
// Thread safety: Post and Run may be called from any thread (the sync loop
// in practice); the destructor must not run on a lane's thread.
#pragma once

#include <asio/post.hpp>
#include <functional>
#include <memory>
#include <string>

#include "entrysync/status.h"
#include "store/library.h"
#include "sync/loop.h"

namespace entrysync {

class Reader {
 public:
  enum class Lane { kServe = 0, kExport = 1 };

  // Opens the lanes' connections to the library in `library_dir` and, with
  // `threads`, starts their threads; completions are posted to `loop`.
  // REQUIRES: the library's schema is current (its writer opened it first).
  // Fails, starting nothing, when a connection cannot be opened.
  static Result<std::unique_ptr<Reader>> Start(const std::string& library_dir, const SyncExecutor& loop,
                                               bool threads);
  // Stops the threads: a job that runs finishes first (and may still post
  // its completion), jobs not begun are dropped. With no threads, jobs
  // still queued on the loop are dropped when they come up.
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Runs `job` on `lane` with the lane's connection.
  void Post(Lane lane, std::function<void(Library&)> job);

  // Runs `job` on `lane`, then `done` with its result on the loop while
  // `alive` can be locked (it is held while `done` runs).
  template <class T>
  void Run(Lane lane, std::weak_ptr<void> alive, std::function<T(Library&)> job,
           std::function<void(T)> done) {
    Post(lane, [loop = loop_, alive = std::move(alive), job = std::move(job),
                done = std::move(done)](Library& lib) {
      auto result = std::make_shared<T>(job(lib));
      asio::post(loop, [alive, done, result] {
        if (auto keep = alive.lock()) done(std::move(*result));
      });
    });
  }

  // True when lanes are threads of their own.
  bool threaded() const { return threaded_; }

 private:
  struct LaneState;
  Reader(SyncExecutor loop, bool threads);

  const SyncExecutor loop_;
  const bool threaded_;
  std::unique_ptr<LaneState> lanes_[2];
};

}  // namespace entrysync
