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

namespace {
IndexOptions ToIndexOptions(const ScanOptions& o) {
  IndexOptions out;
  out.progress = o.progress;
  return out;
}
}  // namespace

Result<std::vector<Location>> Engine::Locations(std::optional<Uuid> owner) {
  std::lock_guard<std::mutex> lock(impl_->mu);
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
  std::lock_guard<std::mutex> lock(impl_->mu);
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
    std::lock_guard<std::mutex> lock(impl_->mu);
    Library& lib = *impl_->lib;
    TransactionManager tm(lib, impl_->CommitBus());
    Indexer ix(lib, tm, DefaultEnv());
    ES_ASSIGN_OR_RETURN(IndexReport r, ix.AddLocation(path, ToIndexOptions(options)));
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
    std::lock_guard<std::mutex> lock(impl_->mu);
    Library& lib = *impl_->lib;
    ES_ASSIGN_OR_RETURN(LocationInfo loc, lib.FindLocationByUuid(location));
    TransactionManager tm(lib, impl_->CommitBus());
    Indexer ix(lib, tm, DefaultEnv());
    ES_ASSIGN_OR_RETURN(IndexReport r, ix.Rescan(loc, ToIndexOptions(options)));
    ES_ASSIGN_OR_RETURN(auto devices, lib.ListDevices());
    return ToScanReport(r, ToLocation(r.location, devices));
  }();
  if (report.ok()) impl_->PublishAdvances();
  return report;
}

}  // namespace entrysync
