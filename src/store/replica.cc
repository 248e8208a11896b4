#include "store/replica.h"

#include <chrono>

namespace entrysync {

using store::Stmt;
using store::Transaction;

Result<Replica> Replica::Make(Library& lib) {
  ES_ASSIGN_OR_RETURN(EntryWriter w, EntryWriter::Make(lib));
  return Replica(lib, std::move(w));
}

Result<ApplyStats> Replica::Apply(DeviceRowId owner, Epoch epoch, std::span<const LocationRecord> locations,
                                  std::span<const EntryRecord> entries, std::optional<Seq> advance_to,
                                  DeviceRowId source) {
  if (owner == lib_->local_device())
    return PermissionDenied("refusing rows that claim to be this device's own");
  Transaction txn(lib_->db());
  ES_RETURN_IF_ERROR(txn.Begin());
  // Another connection (a session resetting the owner, a snapshot import)
  // may have renumbered location rows since the last call: look them up
  // afresh, once per location per call.
  writer_.ForgetLocations();
  ES_ASSIGN_OR_RETURN(auto wm, lib_->GetWatermark(owner));
  if (wm && wm->epoch != epoch)
    return InvalidArgument("rows of epoch " + std::to_string(epoch.value()) +
                           " do not match the stored epoch; the owner must be reset first");
  ApplyStats stats;
  for (const LocationRecord& l : locations) {
    ES_ASSIGN_OR_RETURN(bool w, writer_.PutLocation(owner, l, true));
    (w ? stats.written : stats.skipped)++;
  }
  // Several rows per statement (EntryWriter::PutEntries): about half the
  // SQLite work of one statement per row, same only-if-newer semantics.
  ES_ASSIGN_OR_RETURN(uint64_t written, writer_.PutEntries(owner, entries, /*only_if_newer=*/true));
  stats.written += written;
  stats.skipped += entries.size() - written;
  if (stats.written > 0) {
    // Lifetime count of rows written by replication: proves, across crashes
    // and restarts, that nothing was applied twice.
    ES_ASSIGN_OR_RETURN(Stmt count,
                        lib_->db().Prepare("INSERT INTO meta(key, value) VALUES('rows_applied', ?1)"
                                           " ON CONFLICT(key) DO UPDATE SET value = value + ?1"));
    count.Bind(1, static_cast<int64_t>(stats.written));
    ES_RETURN_IF_ERROR(count.Run());
  }
  if (advance_to) {
    Seq next = wm ? std::max(wm->seq, *advance_to) : *advance_to;
    ES_ASSIGN_OR_RETURN(
        Stmt st, lib_->db().Prepare(
                     "INSERT INTO watermark(owner, epoch, seq, source, updated_ms) VALUES(?, ?, ?, ?, ?)"
                     " ON CONFLICT(owner) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq,"
                     " source = excluded.source, updated_ms = excluded.updated_ms"));
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    st.Bind(1, owner.value()).Bind(2, static_cast<int64_t>(epoch.value())).Bind(3, next.value());
    st.Bind(4, source.value()).Bind(5, now);
    ES_RETURN_IF_ERROR(st.Run());
  }
  ES_RETURN_IF_ERROR(txn.Commit());
  return stats;
}

Status Replica::ResetOwner(DeviceRowId owner, Epoch epoch) {
  if (owner == lib_->local_device()) return PermissionDenied("cannot reset this device's own index");
  Transaction txn(lib_->db());
  ES_RETURN_IF_ERROR(txn.Begin());
  for (const char* sql : {"DELETE FROM entry WHERE owner = ?", "DELETE FROM location WHERE owner = ?"}) {
    ES_ASSIGN_OR_RETURN(Stmt st, lib_->db().Prepare(sql));
    st.Bind(1, owner.value());
    ES_RETURN_IF_ERROR(st.Run());
  }
  ES_ASSIGN_OR_RETURN(
      Stmt st, lib_->db().Prepare("INSERT INTO watermark(owner, epoch, seq, updated_ms) VALUES(?, ?, 0, 0)"
                                  " ON CONFLICT(owner) DO UPDATE SET epoch = excluded.epoch, seq = 0,"
                                  " verified_seq = 0"));
  st.Bind(1, owner.value()).Bind(2, static_cast<int64_t>(epoch.value()));
  ES_RETURN_IF_ERROR(st.Run());
  // Nothing of the owner is left: its digest is zero, whatever the stored
  // one was (a corrupted one would otherwise survive the reset).
  ES_RETURN_IF_ERROR(lib_->digests().Set(owner, LtHash()));
  ES_RETURN_IF_ERROR(lib_->SetEpoch(owner, epoch));
  writer_.ForgetLocations();  // the owner's location rows are gone
  return txn.Commit();
}

}  // namespace entrysync
