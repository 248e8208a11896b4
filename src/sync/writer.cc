#include "sync/writer.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <filesystem>
#include <thread>

#include "base/disk_space.h"
#include "snapshot/snapshot.h"
#include "store/replica.h"

namespace entrysync {

std::string WriteTarget::Describe() const {
  return owner ? "owner " + owner->ToString().substr(0, 8) : std::string("the library's tables");
}

// Shared by the writer and every job and completion in flight, so that a
// handler destroyed or run after the writer is gone touches nothing freed.
struct LibraryWriter::State {
  std::unique_ptr<Library> lib;    // the write connection: job executor only
  std::optional<Replica> replica;  // on lib: job executor only
  std::optional<SyncExecutor> jobs;
  std::unique_ptr<asio::io_context> own;  // the writer's thread's context
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::atomic<bool> stopped{false};
  bool started = false;                                   // loop only
  std::function<void(const OwnerPosition&)> on_advanced;  // loop only
  CheckpointSigner sign;                                  // job executor only
  Uuid local;                                             // this device's owner uuid
};

namespace {

// The job body of ApplyRows, on the writer's connection.
Result<WriteOutcome> RunApply(Library& lib, Replica& replica, ApplyJob& j) {
  using Rule = ApplyJob::OnOtherEpoch;
  std::string name = j.owner_name.empty() ? j.owner.ToString().substr(0, 8) : j.owner_name;
  WriteOutcome out;
  if (auto dev = lib.FindDeviceByUuid(j.owner); dev.ok() && dev->revoked) {
    out.skipped = j.locations.size() + j.entries.size();
    out.refused = "rows of " + dev->name + ", a removed device, refused";
    return out;
  }
  if (j.checkpoint) ES_RETURN_IF_ERROR(AcceptCheckpoint(lib, *j.checkpoint, name).status());
  ES_ASSIGN_OR_RETURN(DeviceRowId row, lib.EnsureDevice(j.owner, name));
  ES_ASSIGN_OR_RETURN(auto before, lib.GetWatermark(row));
  std::optional<WatermarkInfo> wm = before;
  if (!wm || wm->epoch != j.epoch) {
    switch (j.on_other_epoch) {
      case Rule::kSkip:
        out.skipped = j.locations.size() + j.entries.size();
        return out;
      case Rule::kFail:
        return ProtocolError("rows of epoch " + std::to_string(j.epoch.value()) + " before that epoch began");
      case Rule::kResetFromZero:
        if (j.from.value() != 0)
          return ProtocolError("rows of a new epoch must start from seq 0, got " +
                               std::to_string(j.from.value()));
        [[fallthrough]];
      case Rule::kReset:
        if (wm) spdlog::info("{}'s index epoch changed: dropping its rows and resyncing from zero", name);
        ES_RETURN_IF_ERROR(replica.ResetOwner(row, j.epoch));
        wm = WatermarkInfo{row, j.epoch, Seq(0), Seq(0)};
        break;
    }
  }
  std::optional<Seq> advance;
  if (j.advance_to && wm->seq >= j.from && *j.advance_to > wm->seq) advance = j.advance_to;
  if (!j.locations.empty() || !j.entries.empty() || advance) {
    ES_ASSIGN_OR_RETURN(ApplyStats st,
                        replica.Apply(row, j.epoch, j.locations, j.entries, advance, j.source));
    out.written = st.written;
    out.skipped = st.skipped;
    if (advance) wm->seq = *advance;
  }
  if (out.written > 0 || advance || j.checkpoint || j.must_end_verified) {
    ES_ASSIGN_OR_RETURN(Verification v, VerifyOwner(lib, replica, row, j.must_end_verified));
    if (v.kind == Verification::Kind::kDiverged) wm->seq = Seq(0);  // dropped
    out.verified.emplace_back(j.owner, std::move(v));
  }
  if (!before || before->epoch != wm->epoch || before->seq != wm->seq)
    out.advanced = OwnerPosition{j.owner, wm->epoch, wm->seq};
  return out;
}

// The job body of ImportSnapshotFile.
Result<WriteOutcome> RunImport(Library& lib, SnapshotImportJob& j) {
  // The offer's checkpoint first: the import then verifies against it.
  if (j.checkpoint) ES_RETURN_IF_ERROR(AcceptCheckpoint(lib, *j.checkpoint, "").status());
  std::optional<WatermarkInfo> before;
  if (auto dev = lib.FindDeviceByUuid(j.owner); dev.ok()) {
    ES_ASSIGN_OR_RETURN(before, lib.GetWatermark(dev->id));
  }
  auto imported = ImportSnapshot(lib, j.path, j.sha256_hex, j.source, j.offered);
  if (!imported.ok() && ImportMayRetry(imported.status())) return imported.status();  // kept
  // Done with the file: the rows committed first, then the file, then its offer.
  std::error_code ec;
  std::filesystem::remove(j.path, ec);
  if (!j.offer_path.empty()) std::filesystem::remove(j.offer_path, ec);
  if (!imported.ok() && imported.status().code() != Code::kAlreadyExists) return imported.status();
  WriteOutcome out;
  if (!imported.ok()) return out;
  out.written = imported->rows_written;
  ES_ASSIGN_OR_RETURN(auto after, lib.GetWatermark(imported->owner));
  if (after && (!before || before->epoch != after->epoch || before->seq != after->seq))
    out.advanced = OwnerPosition{j.owner, after->epoch, after->seq};
  return out;
}

// A failed job's error, naming its target; a full disk also names the
// library and the space left (unless the job said so already).
Status Explain(const Status& s, const WriteTarget& target, const std::string& dir) {
  std::string what = "writing " + target.Describe();
  if (IsDiskFull(s) && s.message().find(kNoSpaceLeft) == std::string::npos)
    return DiskFullError(what + " into " + dir, dir, 0, s);
  return s.Wrap(what);
}

}  // namespace

LibraryWriter::LibraryWriter(SyncExecutor loop, std::optional<SyncExecutor> jobs)
    : loop_(std::move(loop)), state_(std::make_shared<State>()) {
  state_->jobs = std::move(jobs);
}

LibraryWriter::~LibraryWriter() { Stop(); }

Status LibraryWriter::Start(const std::string& dir, bool commit_notices,
                            std::function<void(const OwnerPosition&)> on_advanced, CheckpointSigner sign) {
  State& st = *state_;
  ES_ASSIGN_OR_RETURN(st.lib, Library::Open(dir));
  ES_ASSIGN_OR_RETURN(DeviceInfo me, st.lib->LocalDevice());
  st.local = me.uuid;
  st.sign = std::move(sign);
  st.lib->SetCommitNotices(commit_notices);
  ES_ASSIGN_OR_RETURN(Replica r, Replica::Make(*st.lib));
  st.replica.emplace(std::move(r));
  st.on_advanced = std::move(on_advanced);
  if (!st.jobs) {
    st.own = std::make_unique<asio::io_context>(1);
    st.work.emplace(asio::make_work_guard(*st.own));
    st.jobs = st.own->get_executor();
    st.thread = std::thread([io = st.own.get()] {
      pthread_setname_np(pthread_self(), "es-write");
      io->run();  // returns once Stop dropped the work guard and the queue is empty
    });
  }
  st.started = true;
  return Status::Ok();
}

void LibraryWriter::Stop() {
  State& st = *state_;
  if (!st.started || st.stopped.exchange(true)) return;
  st.on_advanced = nullptr;
  if (st.thread.joinable()) {
    st.work.reset();
    st.thread.join();  // the running job ends; queued ones see `stopped` and only complete
  }
  // No job runs now (the thread is gone, or jobs run on this very loop).
  st.replica.reset();
  st.lib.reset();
}

void LibraryWriter::Post(WriteTarget target, Job job, Done done) {
  Run(
      target, [job = std::move(job)](State& st) { return job(*st.lib); }, std::move(done));
}

void LibraryWriter::Run(WriteTarget target, std::function<Result<WriteOutcome>(State&)> job, Done done) {
  auto st = state_;
  auto complete = [st, loop = loop_, done = std::move(done)](Result<WriteOutcome> r) mutable {
    asio::post(loop, [st, r = std::move(r), done = std::move(done)]() mutable {
      if (r.ok() && r->advanced && !st->stopped.load() && st->on_advanced) st->on_advanced(*r->advanced);
      if (done) done(std::move(r));
    });
  };
  if (!st->started || st->stopped.load()) {
    complete(Aborted("the library writer stopped: " + target.Describe() + " not written"));
    return;
  }
  asio::post(*st->jobs, [st, target, job = std::move(job), complete = std::move(complete)]() mutable {
    if (st->stopped.load()) {
      complete(Aborted("the library writer stopped: " + target.Describe() + " not written"));
      return;
    }
    Result<WriteOutcome> r = job(*st);
    if (!r.ok()) r = Explain(r.status(), target, st->lib->dir());
    if (st->sign && target.owner == st->local) {
      // Our own rows moved: sign where they stand, before anyone hears.
      auto signed_now = SignLocalCheckpoint(*st->lib, st->sign);
      if (!signed_now.ok())
        spdlog::error("signing this device's checkpoint: {}", signed_now.status().message());
    }
    complete(std::move(r));
  });
}

void LibraryWriter::ApplyRows(ApplyJob job, Done done) {
  WriteTarget target = WriteTarget::Owner(job.owner);
  Run(
      target,
      [job = std::move(job)](State& st) mutable -> Result<WriteOutcome> {
        if (job.chain_failed && job.chain_failed->load())
          return Aborted("not applied: an earlier write of the same session failed");
        auto r = RunApply(*st.lib, *st.replica, job);
        if (!r.ok() && job.chain_failed) job.chain_failed->store(true);
        return r;
      },
      std::move(done));
}

void LibraryWriter::ImportSnapshotFile(SnapshotImportJob job, Done done) {
  WriteTarget target = WriteTarget::Owner(job.owner);
  Run(
      target, [job = std::move(job)](State& st) mutable { return RunImport(*st.lib, job); }, std::move(done));
}

void LibraryWriter::AcceptCheckpoints(std::vector<std::pair<Checkpoint, std::string>> checkpoints,
                                      Done done) {
  Run(
      WriteTarget::LibraryTables(),
      [cps = std::move(checkpoints)](State& st) -> Result<WriteOutcome> {
        WriteOutcome out;
        for (const auto& [cp, name] : cps) {
          // A removed device's: refused, but the peer may not know yet.
          if (auto known = st.lib->FindDeviceByUuid(cp.owner); known.ok() && known->revoked) continue;
          ES_RETURN_IF_ERROR(AcceptCheckpoint(*st.lib, cp, name).status());
          ES_ASSIGN_OR_RETURN(DeviceInfo dev, st.lib->FindDeviceByUuid(cp.owner));
          if (dev.is_local) continue;
          ES_ASSIGN_OR_RETURN(Verification v, VerifyOwner(*st.lib, *st.replica, dev.id, false));
          if (v.kind == Verification::Kind::kDiverged) {
            ES_ASSIGN_OR_RETURN(auto wm, st.lib->GetWatermark(dev.id));
            if (wm) out.advanced = OwnerPosition{cp.owner, wm->epoch, wm->seq};
          }
          out.verified.emplace_back(cp.owner, std::move(v));
        }
        return out;
      },
      std::move(done));
}

void LibraryWriter::SignOwn(Done done) {
  Run(
      WriteTarget::Owner(state_->local), [](State&) -> Result<WriteOutcome> { return WriteOutcome{}; },
      std::move(done));
}

}  // namespace entrysync
