// libFuzzer harness for a session's message handlers (sync/session.h and its
// parts: Puller, IndexSender, SnapshotDownloader/Uploader, FlowControl, the
// library's writer), driven by a hostile paired peer.
//
// One real session of device "beta" runs on a scratch library (3 entries of
// its own, "alpha" paired) over an in-memory pipe; the fuzzer writes what
// "alpha" sends. Everything runs on one polled io_context with a ManualClock,
// as in the simulation (sync/sim.h): deterministic, nothing sleeps, the
// writer's jobs run on the same loop.
//
// Input: a sequence of records `ctl u8 | len u16 big-endian | payload`.
//   - The first record's payload is merged (protobuf MergeFrom) into a valid
//     Hello of alpha's (the right library, device id and uuid; alpha offers
//     its own index: 3 rows), so the handshake succeeds unless the fuzzer
//     overrides a field, and the Hello's limits, codecs, owners and
//     watermarks are fuzzed too. Its ctl byte is ignored.
//   - Every later record is one frame: type AnyMessageType(ctl & 0x7f),
//     the payload as given, framed with a correct length and CRC-32 (the
//     frame decoder has its own harness). With ctl bit 7 set the loop first
//     runs until nothing is ready (and up to 1 s of simulated time), so that
//     beta's answers (its StateRequest id 1 for alpha's rows, a
//     SnapshotRequest after an offer) go out before the frame arrives.
// After the last frame the loop runs 2 s of simulated time, alpha closes
// the pipe, and the service shuts down.
//
// Per input the library is restored from a template (one file copy on
// tmpfs: the service's connections are all closed between inputs) and the
// service and loop are new, so no state crosses inputs. Downloaded .part
// files are removed; snapshot exports that beta serves stay cached.
// A SnapshotRequest whose sha256 is 32 bytes of 'Z' is sent with the
// digest of the snapshot beta offered last (its exports carry their time,
// so a seed cannot know it).
// Properties: no crash, UB or leak; the loop comes to rest (no handler
// storm: a session that keeps posting work without end is a finding); every
// frame beta sends decodes within the frame limit alpha announced; the
// session ends when its peer closes; beta's own rows are never changed by a
// peer.
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "base/clock.h"
#include "fuzz_common.h"
#include "net/pipe.h"
#include "proto/convert.h"
#include "sync/sync_service.h"

namespace es = entrysync;
namespace fs = std::filesystem;
using es::fuzz::Check;
using namespace std::chrono_literals;

namespace {

// Most handlers one input may run; far above what a few frames need.
constexpr uint64_t kHandlerBudget = 200000;
constexpr int kOwnRows = 3;  // beta's own entries

struct World {
  std::string root;            // scratch folder of this process
  std::string lib_dir;         // the library the session uses
  std::string template_bytes;  // library.db as made, WAL checkpointed
  std::string own_rows;        // fingerprint of beta's own rows
  es::ManualClock* clock = nullptr;
};
World* g = nullptr;

void RemoveScratch() {
  if (g == nullptr) return;
  std::error_code ec;
  fs::remove_all(g->root, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Beta's own rows, as a string to compare: its entries (count, seqs, names)
// and its locations (count, roots).
std::string OwnRows(es::Library& lib) {
  auto st = lib.db().Prepare(
      "SELECT count(*), coalesce(sum(seq), 0), coalesce(group_concat(name, '/'), ''),"
      " (SELECT count(*) || ':' || coalesce(group_concat(root_path, '|'), '') FROM location"
      "  WHERE owner = (SELECT id FROM device WHERE is_local = 1))"
      " FROM entry WHERE owner = (SELECT id FROM device WHERE is_local = 1)");
  Check(st.ok(), "own-rows query prepares");
  auto row = st->Step();
  Check(row.ok() && *row, "own-rows query runs");
  return std::to_string(st->Int(0)) + ":" + std::to_string(st->Int(1)) + ":" + std::string(st->Text(2)) +
         ":" + std::string(st->Text(3));
}

void Fail(const std::string& why) {
  std::fprintf(stderr, "session_fuzzer: %s\n", why.c_str());
  std::abort();
}

// The loop runs what is ready; then, up to `limit` of simulated time, the
// clock moves straight to the next timer (as sim::Simulation::RunUntil).
void Run(asio::io_context& io, es::Clock::duration limit, uint64_t* handlers) {
  es::ManualClock& clock = *g->clock;
  const es::Clock::time_point end = clock.now() + limit;
  for (;;) {
    for (;;) {
      clock.ForgetWake();
      const size_t ran = io.poll();
      if (ran == 0) break;
      *handlers += ran;
      if (*handlers > kHandlerBudget) Fail("the loop never comes to rest (handler budget exhausted)");
    }
    const es::Clock::time_point now = clock.now();
    if (now >= end) return;
    const es::Clock::time_point next = std::min(clock.next_wake(), end);
    clock.Advance(next > now ? next - now : es::Clock::duration(1));
  }
}

es::SyncConfig Config() {
  es::SyncConfig c;
  c.prepare_snapshots = false;  // no background export
  c.reader_threads = false;     // serving reads run on the loop
  c.snapshot_chunk_bytes = 4096;
  c.keepalive = 5s;
  c.idle_timeout = 30s;
  return c;
}

es::wire::Hello AlphaHello() {
  es::wire::Hello h;
  h.set_protocol_version(1);
  h.set_library_id(es::UuidToWire(es::fuzz::LibraryId()));
  h.set_device_id(es::DeviceIdToWire(es::fuzz::AlphaId()));
  h.set_device_uuid(es::UuidToWire(es::fuzz::AlphaUuid()));
  h.set_device_name("alpha");
  h.add_codecs(es::wire::CODEC_ZSTD);
  h.add_codecs(es::wire::CODEC_GZIP);
  es::wire::OwnerInfo* o = h.add_owners();
  o->set_owner(h.device_uuid());
  o->set_name("alpha");
  o->set_epoch(es::fuzz::AlphaEpoch().value());
  o->set_max_seq(3);
  o->set_entry_count(3);
  return h;
}

void RestoreLibrary() {
  std::error_code ec;
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(g->lib_dir + "/library.db" + suffix, ec);
  std::ofstream(g->lib_dir + "/library.db", std::ios::binary | std::ios::trunc) << g->template_bytes;
  // Downloads start over; beta's own exports stay cached (they are the same).
  for (auto it = fs::directory_iterator(g->lib_dir + "/snapshots", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string ext = it->path().extension().string();
    if (ext == ".part" || ext == ".offer") fs::remove(it->path(), ec);
  }
}

// Alpha's side of the pipe: decodes what beta sends (every frame must
// decode, within alpha's announced limit) and remembers the digest of
// beta's last SnapshotOffer.
class BetaFrames {
 public:
  explicit BetaFrames(size_t limit) : decoder_(limit) {}

  void Feed(std::string_view data) {
    decoder_.Feed(data);
    for (;;) {
      auto next = decoder_.Next();
      if (!next.ok()) Fail("beta sent what alpha cannot decode: " + next.status().message());
      if (!next->has_value()) return;
      if ((*next)->type != es::MessageType::kSnapshotOffer) continue;
      auto offer = es::ParseMessage<es::wire::SnapshotOffer>(**next);
      if (!offer.ok()) Fail("beta sent an undecodable SnapshotOffer");
      offered_sha256_ = offer->sha256();
    }
  }

  // The payload alpha sends for a frame of `type`. Beta's snapshot exports
  // carry the time they were made, so no seed can know their digest: a
  // SnapshotRequest whose sha256 is 32 bytes of 'Z' asks for the snapshot
  // beta offered last (any other sha256 goes as it is).
  std::string Complete(es::MessageType type, std::string_view payload) const {
    if (type != es::MessageType::kSnapshotRequest || offered_sha256_.empty()) return std::string(payload);
    es::wire::SnapshotRequest r;
    if (!r.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
        r.sha256() != std::string(32, 'Z'))
      return std::string(payload);
    r.set_sha256(offered_sha256_);
    return r.SerializeAsString();
  }

 private:
  es::FrameDecoder decoder_;
  std::string offered_sha256_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  // FUZZ_LOG=1 shows the session's log (to see what an input does).
  spdlog::set_level(std::getenv("FUZZ_LOG") ? spdlog::level::debug : spdlog::level::off);
  g = new World;
  g->clock = new es::ManualClock;  // installed for the process's lifetime
  g->root = es::fuzz::ScratchRoot() + "/entrysync-session-fuzz-" + std::to_string(::getpid());
  g->lib_dir = g->root + "/beta";
  std::atexit(RemoveScratch);
  {
    auto lib = es::fuzz::MakeDeviceLibrary(g->lib_dir, "beta", es::fuzz::BetaUuid(), es::fuzz::BetaId(),
                                           es::fuzz::BetaEpoch(), kOwnRows);
    if (!lib.ok()) Fail(lib.status().message());
    auto peer = (*lib)->AddPeer("alpha", es::fuzz::AlphaId(), "");
    if (!peer.ok()) Fail(peer.status().message());
    g->own_rows = OwnRows(**lib);
  }  // closed: the last connection checkpoints the WAL into library.db
  g->template_bytes = ReadFile(g->lib_dir + "/library.db");
  if (g->template_bytes.empty()) Fail("no template library");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RestoreLibrary();
  es::fuzz::Source in(std::string_view(reinterpret_cast<const char*>(data), size));
  uint64_t handlers = 0;
  {
    asio::io_context io;
    auto exec = io.get_executor();
    es::SyncService svc(g->lib_dir, Config(), exec, {}, exec);
    es::Status started = svc.Start();
    if (!started.ok()) Fail("service does not start: " + started.message());
    auto [alpha, beta_end] = es::MakePipe(exec, exec, es::fuzz::AlphaId(), es::fuzz::BetaId());
    std::shared_ptr<es::Session> session = svc.AddSession(std::move(beta_end), /*outbound=*/false);

    es::wire::Hello hello = AlphaHello();
    (void)in.U8();
    std::string_view extension = in.Bytes(in.U16());
    if (!hello.MergeFromString(std::string(extension))) hello = AlphaHello();
    // What beta sends must decode within the limit alpha announced (beta
    // refuses limits under 64 KiB; its Hello goes out before it reads ours).
    const size_t limit = hello.max_frame_bytes() != 0 ? std::max<size_t>(hello.max_frame_bytes(), 64 << 10)
                                                      : es::kDefaultMaxFrameBytes;
    BetaFrames heard(limit);
    alpha->Start([&heard](std::string_view d) { heard.Feed(d); }, [](const es::Status&) {});
    alpha->Write(es::EncodeFrame(hello));
    while (!in.empty()) {
      const uint8_t ctl = in.U8();
      const std::string_view payload = in.Bytes(in.U16());
      if (ctl & 0x80) Run(io, 1s, &handlers);
      const es::MessageType type = es::fuzz::AnyMessageType(ctl & 0x7f);
      alpha->Write(es::fuzz::FrameOf(static_cast<uint8_t>(type), heard.Complete(type, payload)));
    }
    Run(io, 2s, &handlers);
    alpha.reset();  // the peer hangs up
    Run(io, 1s, &handlers);
    if (!session->closed()) Fail("the session outlives its closed stream");
    svc.Shutdown();
    Run(io, 0s, &handlers);
    session.reset();
  }
  auto lib = es::Library::Open(g->lib_dir);
  if (!lib.ok()) Fail("library does not reopen: " + lib.status().message());
  Check(OwnRows(**lib) == g->own_rows, "a peer changed this device's own rows");
  return 0;
}
