#include "strategies/libraries.h"

#include "base/event_bus.h"
#include "store/library.h"
#include "store/transaction_manager.h"
#include "synthetic_tree.h"

namespace entrysync::bench {
namespace {

Device Identify(RunDir& rd, const fs::path& dir) {
  json id = LastJson(RunOk(rd, "id", {"--library", dir.string(), "id", "--json"}));
  return Device{dir, id["device_id"], id["library_id"], id["device_uuid"]};
}

std::string DigestOf(RunDir& rd, const fs::path& dir, const std::string& device) {
  std::vector<std::string> args{"--library", dir.string(), "digest"};
  if (!device.empty()) {
    args.push_back("--device");
    args.push_back(device);
  }
  std::string out = RunOk(rd, "digest", args);
  return out.substr(0, out.find_first_of(" \n"));
}

// N synthetic entries bulk-committed as a new location of `dir`'s library.
json Generate(const fs::path& dir, uint64_t n, uint64_t seed) {
  auto lib = Library::Open(dir.string());
  if (!lib.ok()) Fail(lib.status().message());
  EventBus bus;
  TransactionManager tm(**lib, bus);
  auto t0 = Clock::now();
  std::vector<EntryRecord> rows = MakeSyntheticTree(n, seed);
  double generate_s = Since(t0);
  const std::string root = "/bench/synthetic";
  auto loc = tm.AddLocation(root, "synthetic");
  if (!loc.ok()) Fail(loc.status().message());
  t0 = Clock::now();
  auto ev = tm.CommitBulkEntries(*loc, rows);
  double commit_s = Since(t0);
  if (!ev.ok()) Fail(ev.status().message());
  return json{{"entries", rows.size()},
              {"location", root},
              {"max_seq", ev->max_seq.value()},
              {"generate_s", generate_s},
              {"commit_s", commit_s}};
}

}  // namespace

std::pair<Device, Device> MakePair(RunDir& rd, const fs::path& a_template, uint16_t port_a) {
  fs::path a = rd.dir / "a", b = rd.dir / "b";
  if (!a_template.empty()) {
    fs::copy(a_template, a, fs::copy_options::recursive);
  } else {
    RunOk(rd, "init-a", {"--library", a.string(), "init", "--name", "alpha"});
  }
  Device da = Identify(rd, a);
  RunOk(rd, "init-b", {"--library", b.string(), "init", "--name", "beta", "--join", da.library_id});
  Device db = Identify(rd, b);
  RunOk(rd, "pair-a", {"--library", a.string(), "peer", "add", "--name", "beta", "--id", db.device_id});
  RunOk(rd, "pair-b",
        {"--library", b.string(), "peer", "add", "--name", "alpha", "--id", da.device_id, "--addr",
         "127.0.0.1:" + std::to_string(port_a)});
  return {da, db};
}

json Populate(RunDir& rd, const std::string& label, const fs::path& lib, const std::string& folder,
              uint64_t n, uint64_t seed) {
  if (folder.empty()) return Generate(lib, n, seed);
  Exit ex;
  RunOk(rd, label, {"--library", lib.string(), "location", "add", folder}, &ex);
  json st = json::parse(RunOk(rd, "stats", {"--library", lib.string(), "stats", "--json"}));
  for (const auto& owner : st["owners"])
    if (owner.value("local", false))
      return json{{"entries", owner["entries"]}, {"max_seq", owner["max_seq"]}, {"commit_s", ex.wall_s}};
  Fail("no local owner in " + lib.string());
}

std::vector<EntryRecord> OwnRows(const fs::path& lib) {
  auto l = Library::Open(lib.string());
  if (!l.ok()) Fail(l.status().message());
  auto me = (*l)->LocalDevice();
  if (!me.ok()) Fail(me.status().message());
  std::vector<EntryRecord> rows;
  Status st = (*l)->ScanOwnerEntries(me->id, Seq(0), me->max_seq, 0, [&](EntryRecord&& e) {
    rows.push_back(std::move(e));
    return true;
  });
  if (!st.ok()) Fail(st.message());
  return rows;
}

std::string VerifyDigest(RunDir& rd, const Device& a, const Device& b, const std::string& what) {
  std::string want = DigestOf(rd, a.dir, "");
  std::string got = DigestOf(rd, b.dir, "alpha");
  if (want != got || want.empty())
    Fail(what + ": B's digest of alpha " + got + " differs from A's " + want + " (libraries kept in " +
         rd.dir.string() + ")");
  return want;
}

json ReadStatus(const fs::path& lib_dir) {
  try {
    std::string s = ReadFile(lib_dir / "status.json");
    if (s.empty()) return nullptr;
    return json::parse(s);
  } catch (const std::exception&) {
    return nullptr;
  }
}

WatermarkProbe::WatermarkProbe(const fs::path& lib_dir, const std::string& owner_uuid) {
  auto uuid = Uuid::Parse(owner_uuid);
  if (!uuid) Fail("bad uuid " + owner_uuid);
  owner_ = *uuid;
  std::string path = (lib_dir / Library::kDbFile).string();
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db_);
    Fail("open " + path);
  }
  sqlite3_busy_timeout(db_, 1000);
  if (sqlite3_prepare_v2(db_,
                         "SELECT w.seq FROM watermark w JOIN device d ON d.id = w.owner WHERE d.uuid = ?", -1,
                         &st_, nullptr) != SQLITE_OK) {
    std::string why = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    Fail("prepare: " + why);
  }
}

WatermarkProbe::~WatermarkProbe() {
  sqlite3_finalize(st_);
  sqlite3_close(db_);
}

int64_t WatermarkProbe::Seq() {
  sqlite3_bind_blob(st_, 1, owner_.bytes.data(), 16, SQLITE_STATIC);
  int64_t seq = -1;
  if (sqlite3_step(st_) == SQLITE_ROW) seq = sqlite3_column_int64(st_, 0);
  sqlite3_reset(st_);
  return seq;
}

}  // namespace entrysync::bench
