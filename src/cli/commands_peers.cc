// The subcommand that pairs devices: peer add, list, remove.
#include <cstdio>
#include <memory>

#include "cli/commands_shared.h"

namespace entrysync::cli {

// ---- peer add / list / remove ----
std::vector<Command> AddPeer(CLI::App& app, Globals& g) {
  auto* peer = app.add_subcommand("peer", "Pair with other devices of this library");
  peer->require_subcommand(1);
  auto* add = peer->add_subcommand("add", "Pair a device (do it on both devices)");
  auto name = std::make_shared<std::string>();
  auto id = std::make_shared<std::string>();
  auto addr = std::make_shared<std::string>();
  add->add_option("--name", *name, "A name for the peer")->required();
  add->add_option("--id", *id, "The peer's device id ('entrysync id' on the peer)")->required();
  add->add_option("--addr", *addr, "HOST:PORT where the peer listens (omit if it dials us)");
  auto* list = peer->add_subcommand("list", "List paired devices");
  auto* rm = peer->add_subcommand(
      "remove", "Unpair and revoke a device: its rows are refused from every peer (its entries here stay)");
  auto rm_name = std::make_shared<std::string>();
  auto purge = std::make_shared<bool>(false);
  rm->add_option("NAME", *rm_name, "Peer name")->required();
  rm->add_flag("--purge", *purge, "Also delete the device's entries from this library");
  std::vector<Command> out;
  out.push_back({add, [&g, name, id, addr]() -> Status {
                   auto dev = DeviceId::Parse(*id);
                   if (!dev || dev->is_zero())
                     return InvalidArgument("--id: '" + *id + "' is not a device id (64 hex digits)");
                   if (!addr->empty()) ES_RETURN_IF_ERROR(ValidateAddress(*addr).Wrap("--addr"));
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ES_RETURN_IF_ERROR(engine->Pair(*name, *dev, *addr).status());
                   std::printf("paired %s (%s)%s\n", name->c_str(), dev->ToShortString().c_str(),
                               addr->empty() ? "" : (" at " + *addr).c_str());
                   return Status::Ok();
                 }});
  out.push_back({list, [&g]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(auto devices, engine->Devices());
                   for (const auto& d : devices) {
                     if (d.is_local || !d.device_id) continue;
                     std::printf("%s\t%s\t%s\t%s\n", d.name.c_str(), d.device_id->ToString().c_str(),
                                 d.address.empty() ? "-" : d.address.c_str(),
                                 d.paired ? "paired" : "unpaired");
                   }
                   return Status::Ok();
                 }});
  out.push_back({rm, [&g, rm_name, purge]() -> Status {
                   ES_ASSIGN_OR_RETURN(auto engine, OpenLibrary(g));
                   ES_ASSIGN_OR_RETURN(Device d, engine->FindDevice(*rm_name));
                   if (d.is_local) return InvalidArgument("'" + *rm_name + "' is this device, not a peer");
                   if (!d.device_id)
                     return InvalidArgument("'" + *rm_name + "' has no known key: nothing to revoke");
                   ES_RETURN_IF_ERROR(engine->Unpair(*d.device_id, *purge));
                   std::printf("removed %s%s\n", rm_name->c_str(), *purge ? " and deleted its entries" : "");
                   return Status::Ok();
                 }});
  return out;
}

}  // namespace entrysync::cli
