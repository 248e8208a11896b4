// Engine: locations, and indexing them (AddLocation, Rescan).
#include "api/convert.h"
#include "api/engine_impl.h"
#include "index/indexer.h"
#include "store/transaction_manager.h"

namespace entrysync {

Result<std::pair<LocationInfo, std::vector<std::string>>> ResolvePath(Library& lib, DeviceRowId owner,
                                                                      std::string path) {
  ES_ASSIGN_OR_RETURN(auto locations, lib.ListLocations(owner));
  if (path.size() > 1 && path.back() == '/') path.pop_back();
  const LocationInfo* best = InnermostLocation(locations, path);
  if (!best) return NotFound(path + " is not inside any location of this device");
  std::vector<std::string> parts;
  std::string rest = path.substr(best->record.root_path.size());
  size_t i = 0;
  while (i < rest.size()) {
    size_t j = rest.find('/', i);
    if (j == std::string::npos) j = rest.size();
    if (j > i) parts.push_back(rest.substr(i, j - i));
    i = j + 1;
  }
  return std::make_pair(*best, parts);
}

Result<IndexReport> Engine::Impl::Index(const IndexJob& index, const ScanOptions& options) {
  if (!node) {
    TransactionManager tm(*lib, bus);
    Indexer ix(*lib, tm, DefaultEnv());
    return index(ix, IndexOptions{.progress = options.progress});
  }
  // The job runs on the writer's thread; its progress and its end come back
  // here through `relay`, so that options.progress runs on this thread.
  struct Relay {
    Mutex mu;
    CondVar cv;
    std::optional<uint64_t> seen GUARDED_BY(mu);
    bool done GUARDED_BY(mu) = false;
  } relay;
  std::optional<Result<IndexReport>> report;  // written by the job, read after done
  Status why;                                 // why it did not run
  Node& n = *node;
  ES_ASSIGN_OR_RETURN(DeviceInfo me, lib->LocalDevice());
  n.RunWrite(
      WriteTarget::Owner(me.uuid),  // this device's rows (and its locations)
      [&](Library& writer) -> Status {
        TransactionManager tm(writer, n.bus());
        Indexer ix(writer, tm, DefaultEnv());
        IndexOptions io;
        if (options.progress)
          io.progress = [&relay](uint64_t entries) {
            MutexLock l(relay.mu);
            relay.seen = entries;
            relay.cv.NotifyAll();
          };
        report = index(ix, io);
        return report->status();
      },
      [&](Status s) {
        MutexLock l(relay.mu);
        if (!report) why = std::move(s);
        relay.done = true;
        relay.cv.NotifyAll();
      });
  MutexLock l(relay.mu);
  for (;;) {
    while (!relay.done && !relay.seen) relay.cv.Wait(relay.mu);
    if (std::optional<uint64_t> seen = std::exchange(relay.seen, std::nullopt)) {
      l.Unlock();
      options.progress(*seen);
      l.Lock();
      continue;
    }
    if (relay.done) break;
  }
  if (!report) return why;
  return std::move(*report);
}

Result<std::vector<Location>> Engine::Locations(std::optional<Uuid> owner) {
  MutexLock lock(impl_->mu);
  Library& lib = *impl_->lib;
  std::optional<DeviceRowId> row;
  if (owner) {
    ES_ASSIGN_OR_RETURN(DeviceInfo d, impl_->OwnerRow(*owner));
    row = d.id;
  }
  ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
  ES_ASSIGN_OR_RETURN(auto locations, lib.ListLocations(row));
  std::vector<Location> out;
  out.reserve(locations.size());
  for (const auto& l : locations) out.push_back(ToLocation(l, devices));
  return out;
}

Result<Location> Engine::FindLocalLocation(const std::string& path) {
  MutexLock lock(impl_->mu);
  Library& lib = *impl_->lib;
  auto real = DefaultEnv()->RealPath(path);
  ES_ASSIGN_OR_RETURN(auto found,
                      ResolvePath(lib, lib.local_device(), real.ok() ? *real : AbsolutePath(path)));
  ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
  return ToLocation(found.first, devices);
}

Result<ScanReport> Engine::AddLocation(const std::string& path, const ScanOptions& options) {
  ControlRequest request = AddLocationRequest(AbsolutePath(path));
  if (auto routed = impl_->Route<ScanReport>(request, options.progress)) return std::move(*routed);
  Result<ScanReport> report = [&]() -> Result<ScanReport> {
    MutexLock lock(impl_->mu);
    Library& lib = *impl_->lib;
    ES_ASSIGN_OR_RETURN(
        IndexReport r,
        impl_->Index([&](Indexer& ix, const IndexOptions& o) { return ix.AddLocation(path, o); }, options));
    ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
    return ToScanReport(r, ToLocation(r.location, devices));
  }();
  if (report.ok()) impl_->PublishAdvances();
  return report;
}

Result<ScanReport> Engine::Rescan(const Uuid& location, const ScanOptions& options) {
  ControlRequest request = RescanRequest(location);
  if (auto routed = impl_->Route<ScanReport>(request, options.progress)) return std::move(*routed);
  Result<ScanReport> report = [&]() -> Result<ScanReport> {
    MutexLock lock(impl_->mu);
    Library& lib = *impl_->lib;
    ES_ASSIGN_OR_RETURN(LocationInfo loc, lib.FindLocationByUuid(location));
    ES_ASSIGN_OR_RETURN(
        IndexReport r,
        impl_->Index([&](Indexer& ix, const IndexOptions& o) { return ix.Rescan(loc, o); }, options));
    ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
    return ToScanReport(r, ToLocation(r.location, devices));
  }();
  if (report.ok()) impl_->PublishAdvances();
  return report;
}

}  // namespace entrysync
