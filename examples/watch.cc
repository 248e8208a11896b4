// watch: an application embedding entrysync, built against the installed
// library (find_package(entrysync), see CMakeLists.txt beside it).
//
//   watch LIBRARY [--listen HOST:PORT] [--seconds N] [--sync PEER]
//
// Opens the library, prints this device's identity and what the library
// holds. With --seconds N it then runs the node (accepting peers on
// --listen, dialing paired ones) for N seconds and prints its events; with
// --sync PEER it syncs once with that paired peer, printing progress, until
// both are current. Exits 0 when all of that worked, 1 with one line on
// stderr otherwise.
#include <entrysync/entrysync.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <variant>

namespace {

using entrysync::Status;

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

std::mutex print_mu;  // events arrive on the node's threads

void PrintEvent(const entrysync::EngineEvent& event) {
  std::lock_guard<std::mutex> lock(print_mu);
  std::visit(
      Overloaded{
          [](const entrysync::OwnerAdvanced& e) {
            std::printf("event: %s advanced to seq %lld\n", e.owner_name.c_str(),
                        static_cast<long long>(e.seq.value()));
          },
          [](const entrysync::PeerConnected& e) {
            std::printf("event: %s connected from %s\n", e.peer_name.c_str(), e.address.c_str());
          },
          [](const entrysync::PeerDisconnected& e) {
            std::printf("event: %s disconnected%s%s\n", e.peer_name.c_str(), e.reason.empty() ? "" : ": ",
                        e.reason.c_str());
          },
          [](const entrysync::PeerRefused& e) {
            std::printf("event: refused %s: %s\n", e.address.c_str(), e.reason.c_str());
          },
          [](const entrysync::TransferUpdate& e) {
            std::printf("event: %s %s of %s: %llu/%llu%s\n", e.pulling ? "pull" : "serve",
                        entrysync::SyncStrategyName(e.strategy), e.owner_name.c_str(),
                        static_cast<unsigned long long>(e.done), static_cast<unsigned long long>(e.total),
                        e.finished ? " (done)" : "");
          },
          [](const entrysync::EngineError& e) { std::printf("event: error: %s\n", e.message.c_str()); },
      },
      event);
  std::fflush(stdout);
}

Status Run(int argc, char** argv) {
  if (argc < 2)
    return entrysync::InvalidArgument(
        "usage: watch LIBRARY [--listen HOST:PORT] [--seconds N] [--sync PEER]");
  std::string dir = argv[1], listen, peer;
  double seconds = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--listen")
      listen = argv[i + 1];
    else if (flag == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (flag == "--sync")
      peer = argv[i + 1];
    else
      return entrysync::InvalidArgument("unknown flag " + flag);
  }

  ES_ASSIGN_OR_RETURN(auto engine, entrysync::Engine::Open(dir));
  ES_ASSIGN_OR_RETURN(entrysync::LibraryIdentity id, engine->Identity());
  std::printf("entrysync %s\nlibrary %s in %s\ndevice  %s (%s)\n", entrysync::Version(),
              id.library_id.ToString().c_str(), dir.c_str(), id.device_name.c_str(),
              id.device_id.ToString().c_str());
  ES_ASSIGN_OR_RETURN(entrysync::LibraryStats stats, engine->Stats());
  for (const auto& o : stats.owners) {
    std::printf("owner %s%s: %llu entries, %llu tombstones, max seq %lld\n", o.name.c_str(),
                o.is_local ? " (this device)" : "", static_cast<unsigned long long>(o.entries),
                static_cast<unsigned long long>(o.tombstones), static_cast<long long>(o.max_seq.value()));
    for (const auto& l : o.locations)
      std::printf("  %s: %llu entries\n", l.root_path.c_str(), static_cast<unsigned long long>(l.entries));
  }
  ES_ASSIGN_OR_RETURN(auto devices, engine->Devices());
  for (const auto& d : devices)
    if (d.paired) std::printf("peer %s at %s\n", d.name.c_str(), d.address.empty() ? "-" : d.address.c_str());
  std::fflush(stdout);
  if (seconds <= 0 && peer.empty()) return Status::Ok();

  entrysync::SubscriptionId sub = engine->Subscribe(PrintEvent);
  entrysync::StartOptions start;
  start.listen = listen;
  ES_RETURN_IF_ERROR(engine->Start(start));
  if (engine->listen_port() != 0) std::printf("listening on port %u\n", engine->listen_port());

  auto t0 = std::chrono::steady_clock::now();
  if (!peer.empty()) {
    ES_ASSIGN_OR_RETURN(entrysync::Device p, engine->FindDevice(peer));
    if (!p.paired || !p.device_id) return entrysync::NotFound(peer + " is not a paired peer");
    entrysync::SyncOnceOptions once;
    once.timeout = std::chrono::seconds(120);
    once.progress = [](const entrysync::SyncProgress& p) {
      std::lock_guard<std::mutex> lock(print_mu);
      std::printf("progress: %llu/%llu rows, %llu bytes in\n", static_cast<unsigned long long>(p.done),
                  static_cast<unsigned long long>(p.total), static_cast<unsigned long long>(p.wire_received));
    };
    ES_ASSIGN_OR_RETURN(entrysync::SyncReport r, engine->SyncOnce(*p.device_id, once));
    std::printf("synced with %s in %.2fs: %llu rows applied, %llu sent\n", r.peer_name.c_str(), r.seconds,
                static_cast<unsigned long long>(r.counters.rows_applied),
                static_cast<unsigned long long>(r.counters.rows_sent));
  }
  std::this_thread::sleep_until(t0 + std::chrono::duration<double>(seconds));
  engine->Stop();
  engine->Unsubscribe(sub);
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  Status s = Run(argc, argv);
  if (!s.ok()) {
    std::fprintf(stderr, "watch: error: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}
