// Engine: snapshot export, inspection and import.
//
// Paths reach SQLite made absolute: the system SQLite may be built with URI
// filenames on, and a relative "file:x" would be taken for a URI.
#include "api/convert.h"
#include "api/engine_impl.h"
#include "snapshot/snapshot.h"
#include "store/library_lock.h"

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

namespace {
SnapshotImport ToSnapshotImport(const ImportStats& st) {
  return SnapshotImport{.snapshot = ToSnapshotSummary(st.info),
                        .rows_written = st.rows_written,
                        .rows_replaced = st.rows_replaced,
                        .seconds = st.seconds};
}
}  // namespace

// With a daemon of another process, the daemon imports it (control.cc); a
// daemon imports it through its node's write connection; otherwise this
// process owns the library for the import's duration, as a daemon does.
Result<SnapshotImport> Engine::ImportSnapshot(const std::string& path,
                                              const std::optional<std::string>& expected_sha256) {
  const std::string abs = AbsolutePath(path);
  ControlRequest request = ImportSnapshotRequest(abs, expected_sha256);
  if (auto routed = impl_->Route<SnapshotImport>(request)) return std::move(*routed);
  Result<SnapshotImport> imported = [&]() -> Result<SnapshotImport> {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->node && impl_->daemon) {
      ES_ASSIGN_OR_RETURN(ImportStats st, impl_->node->ImportSnapshot(abs, expected_sha256));
      return ToSnapshotImport(st);
    }
    if (impl_->node)
      return Aborted("this engine's node is running without the library's lock: stop it first");
    auto owned = LibraryLock::Acquire(impl_->dir, "entrysync snapshot import");
    if (!owned.ok() && owned.status().code() == Code::kAborted)
      return Aborted(owned.status().message() + ": stop it before importing a snapshot");
    if (!owned.ok()) return owned.status();
    ES_ASSIGN_OR_RETURN(ImportStats st, ::entrysync::ImportSnapshot(*impl_->lib, abs, expected_sha256));
    return ToSnapshotImport(st);
  }();
  if (imported.ok()) impl_->PublishAdvances();
  return imported;
}

}  // namespace entrysync
