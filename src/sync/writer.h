// LibraryWriter: the one component that writes a library's rows.
//
// It owns the library's write connection and runs jobs posted to it, one at
// a time, in the order they were posted (FIFO: a session's batches apply in
// the order they arrived), on its own thread ("es-write"; one per library,
// whatever the number of peers). Others keep read connections of their own
// and read what a job wrote only after its completion ran: a job commits
// before its completion is posted.
//
// Every job is addressed (WriteTarget): it names the one owner whose rows
// it writes, or the library's own tables (devices, pairing). Today every
// target shares one SQLite file and one queue. The address is there so that
// a later change can keep each owner in its own file (DESIGN.md §12) and
// route an owner's jobs to that file, with its own queue, without changing
// any caller. An owner job may register its owner in the devices table
// (EnsureDevice) the first time rows of that owner arrive.
//
// After a job moved an owner's watermark, the writer announces "owner X is
// now at (epoch E, seq N)" (on_advanced), on the loop, just before the
// job's completion: the SyncService turns it into live pushes and
// SyncObserver::on_owner_advanced without querying the library again.
//
// Executor seam: `jobs` (the constructor's optional executor) runs the jobs
// instead of the writer's own thread; the simulation passes its one polled
// loop, so that jobs run there, in order, deterministically.
//
// Thread safety: Start, Stop and the posting methods are called on the loop
// (the executor completions run on). Jobs run on the job executor; they must
// not touch loop state — give them values. Completions and on_advanced run
// on the loop.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "entrysync/record.h"
#include "entrysync/status.h"
#include "entrysync/types.h"
#include "snapshot/snapshot.h"
#include "store/library.h"
#include "sync/loop.h"
#include "sync/trust.h"

namespace entrysync {

// What a job writes: one owner's rows, or the library's own tables.
struct WriteTarget {
  static WriteTarget Owner(const Uuid& owner) { return WriteTarget{owner}; }
  static WriteTarget LibraryTables() { return WriteTarget{std::nullopt}; }
  std::string Describe() const;  // "owner 0190abcd" or "the library's tables"
  std::optional<Uuid> owner;     // nullopt: devices, pairing, meta
};

// Where an owner's replica stands: its watermark.
struct OwnerPosition {
  Uuid owner;
  Epoch epoch;
  Seq seq;
};

// What a job did.
struct WriteOutcome {
  uint64_t written = 0;  // rows inserted or updated
  uint64_t skipped = 0;  // rows already current, or stale
  // Set when the job moved the target owner's watermark (announced).
  std::optional<OwnerPosition> advanced;
  // The owners checked against their checkpoints after the job (trust.h).
  std::vector<std::pair<Uuid, Verification>> verified;
  // Set when the rows were refused whole (a removed device's): why.
  std::string refused;
};

// Rows of one owner received from a peer, decoded, to apply in one
// transaction (see Replica::Apply), with what to do when the stored
// watermark has another epoch.
struct ApplyJob {
  enum class OnOtherEpoch : uint8_t {
    kSkip,           // stale (a live push): write nothing
    kFail,           // ProtocolError: the peer sent rows of an epoch it did not start
    kResetFromZero,  // a pull of a new epoch: the replica is dropped; must start at seq 0
    kReset,          // an on-demand load: the replica of the older epoch is dropped
  };
  Uuid owner;
  std::string owner_name;  // the owner's name when it is new to this library
  Epoch epoch;
  DeviceRowId source;  // the peer the rows came from
  OnOtherEpoch on_other_epoch = OnOtherEpoch::kSkip;
  Seq from;  // the first seq the rows follow (kResetFromZero, advance_to)
  std::vector<LocationRecord> locations;
  std::vector<EntryRecord> entries;
  // The watermark moves to this seq, in the same transaction, provided the
  // replica holds `from` (stored seq >= from) and it is higher.
  std::optional<Seq> advance_to;
  // The sender's latest checkpoint of the owner (stored when newer; a bad
  // signature fails the job), and whether this ends a pull from a relay,
  // whose rows must then end exactly at a checkpoint (VerifyOwner).
  std::optional<Checkpoint> checkpoint;
  bool must_end_verified = false;
  // The jobs of one session share this flag: the writer sets it when one of
  // them fails, and the later ones then write nothing (Aborted). Their
  // session ends on that failure, but what it had queued still reaches the
  // writer; a Current after a batch that did not fit on a full disk would
  // otherwise move the watermark past rows never written. Null: no chain.
  std::shared_ptr<std::atomic<bool>> chain_failed;
};

// A downloaded snapshot file of one owner, to verify and import.
//
// The file and its offer are removed once the import committed (or found
// the library already current), path first, then offer_path, so a kill
// between the commit and the removals leaves an offer that its owner's
// watermark covers (RemoveFinishedDownloads, sync/snapshot_download.h).
// A file that failed its checks, or is not what was offered, is removed
// too. A verified file whose import failed for a reason that may pass
// (ImportMayRetry: the disk full, the library busy, an I/O error) is kept,
// so the next offer of the same file imports it without a download.
struct SnapshotImportJob {
  Uuid owner;
  std::string path;         // the downloaded file
  std::string offer_path;   // the offer beside it ("" = none)
  std::string sha256_hex;   // the file must have this SHA-256
  DeviceRowId source;       // the peer it came from
  SnapshotOffered offered;  // what the peer said the file holds
  // The owner's checkpoint at the offer's max seq: stored first, then the
  // imported rows must match its digest or nothing is imported.
  std::optional<Checkpoint> checkpoint;
};

class LibraryWriter {
 public:
  using Job = std::function<Result<WriteOutcome>(Library&)>;
  using Done = std::function<void(Result<WriteOutcome>)>;

  // Completions run on `loop`. Jobs run on `jobs` when given, else on the
  // writer's own thread (started by Start).
  explicit LibraryWriter(SyncExecutor loop, std::optional<SyncExecutor> jobs = std::nullopt);
  // Stops (see Stop) when still running.
  ~LibraryWriter();
  LibraryWriter(const LibraryWriter&) = delete;
  LibraryWriter& operator=(const LibraryWriter&) = delete;

  // Opens the write connection of the library in `dir` (commit notices to
  // a daemon as `commit_notices` says) and starts the thread. Fails when the
  // library cannot be opened. `on_advanced` hears every watermark a job
  // moved, on the loop.
  // After every job that wrote this device's own rows, `sign` (when set)
  // signs its new checkpoint (trust.h), before the job's completion runs.
  Status Start(const std::string& dir, bool commit_notices,
               std::function<void(const OwnerPosition&)> on_advanced, CheckpointSigner sign = {});
  // Deterministic end: the job running now finishes (its transaction
  // commits or rolls back), jobs not started are dropped, their completions
  // run with Aborted, and so do those of jobs posted later. With its own
  // thread, that thread is joined before Stop returns; no on_advanced runs
  // afterwards. Idempotent.
  void Stop();

  // Runs `job` with the write connection; `done` hears its result on the
  // loop (after on_advanced, when the job moved a watermark). `done` may be
  // empty. A failed job's message names its target.
  void Post(WriteTarget target, Job job, Done done);

  // Typed jobs. ApplyRows: the owner is registered when new; the epoch rule
  // as `job.on_other_epoch` says. ImportSnapshotFile: the file is verified
  // (SHA-256, structure, what was offered) and imported in one transaction;
  // AlreadyExists (held already) counts as OK, other errors changed nothing
  // (see SnapshotImportJob for what happens to the file).
  void ApplyRows(ApplyJob job, Done done);
  void ImportSnapshotFile(SnapshotImportJob job, Done done);
  // Stores the checkpoints a peer relayed (its Hello), each with its
  // owner's name, and checks each owner's replica against them: a replica
  // that diverged is dropped (WriteOutcome::verified says which). A bad
  // signature fails the job; a removed device's checkpoint is skipped.
  void AcceptCheckpoints(std::vector<std::pair<Checkpoint, std::string>> checkpoints, Done done);
  // Signs this device's checkpoint if it is stale (another process wrote).
  void SignOwn(Done done);

 private:
  struct State;
  // Post, with the writer's whole state (its Replica too) for typed jobs.
  void Run(WriteTarget target, std::function<Result<WriteOutcome>(State&)> job, Done done);

  const SyncExecutor loop_;
  std::shared_ptr<State> state_;
};

}  // namespace entrysync
