// Engine: opening and closing, identity, devices and peers, events.
#include <filesystem>
#include <future>

#include "api/convert.h"
#include "api/engine_impl.h"

namespace entrysync {

namespace fs = std::filesystem;

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  return (ec ? fs::path(path) : abs).lexically_normal().string();
}

Engine::Impl::Impl(std::unique_ptr<Library> library)
    : dir(library->dir()), library_id(library->library_id()), lib(std::move(library)) {}

Result<DeviceInfo> Engine::Impl::OwnerRow(const Uuid& owner) { return lib->FindDeviceByUuid(owner); }

Result<std::vector<OwnerAdvanced>> Engine::Impl::Holdings() {
  ES_ASSIGN_OR_RETURN(auto devices, lib->ListDevices());
  ES_ASSIGN_OR_RETURN(auto watermarks, lib->ListWatermarks());
  std::vector<OwnerAdvanced> out;
  for (const auto& d : devices) {
    if (d.is_local) {
      out.push_back({d.uuid, d.name, d.epoch, d.max_seq});
      continue;
    }
    for (const auto& w : watermarks)
      if (w.owner == d.id) out.push_back({d.uuid, d.name, w.epoch, w.seq});
  }
  return out;
}

void Engine::Impl::PublishAdvances() {
  Result<std::vector<OwnerAdvanced>> held = [this] {
    MutexLock lock(mu);
    return Holdings();
  }();
  if (!held.ok()) return;  // the next advance reports it
  for (const auto& a : *held) events.Publish(a);
}

NodeOptions Engine::Impl::NodeOptionsFor(const SyncConfig& sync) {
  NodeOptions o;
  o.library_dir = dir;
  o.sync = sync;
  o.on_event = [this](const NodeEvent& e) { events.Publish(ToEngineEvent(e)); };
  return o;
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  MutexLock lock(impl_->mu);
  auto held = impl_->Holdings();
  if (held.ok())
    for (const auto& a : *held) impl_->events.Seed(a);
}

Engine::~Engine() { Stop(); }

Result<std::unique_ptr<Engine>> Engine::Open(const std::string& library_dir) {
  InstallDefaultLog();
  ES_ASSIGN_OR_RETURN(auto lib, Library::Open(library_dir));
  return std::unique_ptr<Engine>(new Engine(std::make_unique<Impl>(std::move(lib))));
}

Result<std::unique_ptr<Engine>> Engine::Create(const std::string& library_dir, const CreateOptions& options) {
  InstallDefaultLog();
  ES_ASSIGN_OR_RETURN(auto lib, Library::Create(library_dir, options.device_name, options.join_library));
  ES_RETURN_IF_ERROR(EnsureIdentity(*lib).status());
  return std::unique_ptr<Engine>(new Engine(std::make_unique<Impl>(std::move(lib))));
}

const std::string& Engine::library_dir() const { return impl_->dir; }
const Uuid& Engine::library_id() const { return impl_->library_id; }

Result<LibraryIdentity> Engine::Identity() {
  MutexLock lock(impl_->mu);
  ES_ASSIGN_OR_RETURN(auto id, EnsureIdentity(*impl_->lib));
  ES_ASSIGN_OR_RETURN(DeviceInfo me, impl_->lib->LocalDevice());
  return LibraryIdentity{.device_id = id.device_id(),
                         .device_uuid = me.uuid,
                         .device_name = me.name,
                         .library_id = impl_->library_id};
}

Result<std::vector<Device>> Engine::Devices() {
  MutexLock lock(impl_->mu);
  ES_ASSIGN_OR_RETURN(auto devices, impl_->lib->ListDevices());
  std::vector<Device> out;
  out.reserve(devices.size());
  for (const auto& d : devices) out.push_back(ToDevice(d));
  return out;
}

Result<Device> Engine::LocalDevice() {
  MutexLock lock(impl_->mu);
  ES_ASSIGN_OR_RETURN(DeviceInfo me, impl_->lib->LocalDevice());
  return ToDevice(me);
}

Result<Device> Engine::FindDevice(const std::string& name) {
  MutexLock lock(impl_->mu);
  ES_ASSIGN_OR_RETURN(DeviceInfo d, impl_->lib->FindDeviceByName(name));
  return ToDevice(d);
}

Status Engine::Impl::Write(const std::function<Status(Library&)>& job) {
  if (!node) return job(*lib);
  std::promise<Status> done;
  node->RunWrite(WriteTarget::LibraryTables(), job, [&done](Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

Result<Device> Engine::Pair(const std::string& name, const DeviceId& id, const std::string& address) {
  if (!address.empty()) ES_RETURN_IF_ERROR(ValidateAddress(address));
  ControlRequest request = PairRequest(name, id, address);
  if (auto routed = impl_->Route<Device>(request)) return std::move(*routed);
  MutexLock lock(impl_->mu);
  DeviceInfo d;
  ES_RETURN_IF_ERROR(impl_->Write([&](Library& lib) -> Status {
    ES_RETURN_IF_ERROR(EnsureIdentity(lib).status());
    ES_ASSIGN_OR_RETURN(DeviceRowId row, lib.AddPeer(name, id, address));
    ES_ASSIGN_OR_RETURN(d, lib.GetDevice(row));
    return Status::Ok();
  }));
  if (impl_->node) impl_->node->PeerChanged(id);
  return ToDevice(d);
}

Status Engine::Unpair(const DeviceId& id, bool purge) {
  if (auto routed = impl_->Route<std::monostate>(UnpairRequest(id, purge))) return routed->status();
  MutexLock lock(impl_->mu);
  Library& lib = *impl_->lib;
  ES_ASSIGN_OR_RETURN(DeviceInfo d, lib.FindDeviceById(id));
  // The store unpairs by name: make sure the name leads to this device.
  ES_ASSIGN_OR_RETURN(DeviceInfo named, lib.FindDeviceByName(d.name));
  if (named.id != d.id)
    return InvalidArgument("device " + id.ToShortString() + " shares the name '" + d.name +
                           "' with another device: pair it under another name first");
  ES_RETURN_IF_ERROR(impl_->Write([&](Library& writer) { return writer.RemovePeer(d.name, purge); }));
  if (impl_->node) impl_->node->PeerChanged(id);
  return Status::Ok();
}

SubscriptionId Engine::Subscribe(std::function<void(const EngineEvent&)> handler) {
  return impl_->events.Subscribe(std::move(handler));
}

void Engine::Unsubscribe(SubscriptionId id) { impl_->events.Unsubscribe(id); }

}  // namespace entrysync
