// Engine: snapshot export, inspection and import.
//
// Paths reach SQLite made absolute: the system SQLite may be built with URI
// filenames on, and a relative "file:x" would be taken for a URI.
#include "api/convert.h"
#include "api/engine_impl.h"
#include "snapshot/snapshot.h"

namespace entrysync {

Result<SnapshotSummary> Engine::InspectSnapshot(const std::string& path) {
  InstallDefaultLog();
  ES_ASSIGN_OR_RETURN(SnapshotInfo info, ::entrysync::InspectSnapshot(AbsolutePath(path)));
  return ToSnapshotSummary(info);
}

Result<SnapshotSummary> Engine::ExportSnapshot(const Uuid& owner, const std::string& path) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ES_ASSIGN_OR_RETURN(DeviceInfo o, impl_->OwnerRow(owner));
  ES_ASSIGN_OR_RETURN(SnapshotInfo info, ::entrysync::ExportSnapshot(*impl_->lib, o.id, AbsolutePath(path)));
  return ToSnapshotSummary(info);
}

Result<SnapshotImport> Engine::ImportSnapshot(const std::string& path,
                                              const std::optional<std::string>& expected_sha256) {
  Result<SnapshotImport> imported = [&]() -> Result<SnapshotImport> {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // A running node caches the local row ids of the locations it writes
    // to; an import renumbers the owner's locations under its feet.
    if (auto running = impl_->RunningNode())
      return Aborted("a daemon is running on this library (pid " + std::to_string(running->pid) +
                     "): stop it before importing a snapshot");
    ES_ASSIGN_OR_RETURN(ImportStats st,
                        ::entrysync::ImportSnapshot(*impl_->lib, AbsolutePath(path), expected_sha256));
    return SnapshotImport{.snapshot = ToSnapshotSummary(st.info),
                          .rows_written = st.rows_written,
                          .rows_replaced = st.rows_replaced,
                          .seconds = st.seconds};
  }();
  if (imported.ok()) impl_->PublishAdvances();
  return imported;
}

}  // namespace entrysync
