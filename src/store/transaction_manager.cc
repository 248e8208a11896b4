#include "store/transaction_manager.h"

namespace entrysync {

using store::Stmt;
using store::Transaction;

namespace {

// Reads and advances this device's sequence inside an open transaction.
Result<Seq> TakeSeqs(store::Db& db, DeviceRowId local, int64_t count) {
  ES_ASSIGN_OR_RETURN(Stmt st,
                      db.Prepare("UPDATE device SET max_seq = max_seq + ? WHERE id = ? RETURNING max_seq"));
  st.Bind(1, count).Bind(2, local.value());
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Internal("local device row missing");
  Seq last(st.Int(0));
  st.Reset();
  return Seq(last.value() - count);  // the seq before the first one taken
}

}  // namespace

Result<LocationInfo> TransactionManager::AddLocation(const std::string& root_path, const std::string& name) {
  auto existing = lib_.FindLocalLocationByPath(root_path);
  if (existing.ok()) return AlreadyExists(root_path + " is already a location");
  Transaction txn(lib_.db());
  ES_RETURN_IF_ERROR(txn.Begin());
  ES_ASSIGN_OR_RETURN(Seq before, TakeSeqs(lib_.db(), lib_.local_device(), 1));
  LocationRecord rec{NewUuidV7(), root_path, name, before.next(), false};
  ES_ASSIGN_OR_RETURN(EntryWriter writer, EntryWriter::Make(lib_));
  ES_RETURN_IF_ERROR(writer.PutLocation(lib_.local_device(), rec, false).status());
  ES_RETURN_IF_ERROR(txn.Commit());
  return lib_.FindLocationByUuid(rec.uuid);
}

Result<Seq> TransactionManager::WriteWithSeqs(const LocationInfo& location,
                                              std::vector<EntryRecord>& entries) {
  if (location.owner != lib_.local_device())
    return InvalidArgument("location " + location.record.root_path + " belongs to another device");
  Transaction txn(lib_.db());
  ES_RETURN_IF_ERROR(txn.Begin());
  ES_ASSIGN_OR_RETURN(Seq seq,
                      TakeSeqs(lib_.db(), lib_.local_device(), static_cast<int64_t>(entries.size())));
  ES_ASSIGN_OR_RETURN(EntryWriter writer, EntryWriter::Make(lib_));
  for (EntryRecord& e : entries) {
    seq = seq.next();
    e.seq = seq;
    e.location = location.record.uuid;
  }
  ES_RETURN_IF_ERROR(writer.PutEntries(lib_.local_device(), entries).status());
  ES_RETURN_IF_ERROR(txn.Commit());
  return seq;
}

Result<BulkIndexComplete> TransactionManager::CommitBulkEntries(const LocationInfo& location,
                                                                std::vector<EntryRecord>& entries) {
  ES_ASSIGN_OR_RETURN(Seq max_seq, WriteWithSeqs(location, entries));
  ES_ASSIGN_OR_RETURN(DeviceInfo local, lib_.LocalDevice());
  BulkIndexComplete ev{local.uuid, location.record.uuid, entries.size(), max_seq};
  bus_.Publish(ev);
  return ev;
}

Result<Seq> TransactionManager::CommitChanges(const LocationInfo& location,
                                              std::vector<EntryRecord>& entries) {
  ES_ASSIGN_OR_RETURN(Seq max_seq, WriteWithSeqs(location, entries));
  ES_ASSIGN_OR_RETURN(DeviceInfo local, lib_.LocalDevice());
  for (const EntryRecord& e : entries) bus_.Publish(StateChange{local.uuid, e});
  return max_seq;
}

}  // namespace entrysync
