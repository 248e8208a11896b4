#include "sync/snapshot_cache.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/mutex.h"
#include "snapshot/snapshot.h"

namespace entrysync {
namespace {

namespace fs = std::filesystem;

Mutex& ExportMutex() {
  static Mutex mu;
  return mu;
}

struct Parsed {
  Epoch epoch;
  Seq max_seq;
};

// "serve-UUID-EPOCHHEX-MAXSEQ.db" -> (epoch, max seq).
std::optional<Parsed> ParseName(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0 || name.size() < prefix.size() + 3 || name.substr(name.size() - 3) != ".db")
    return std::nullopt;
  std::string rest = name.substr(prefix.size(), name.size() - prefix.size() - 3);
  size_t dash = rest.find('-');
  if (dash != 16) return std::nullopt;
  uint64_t e = 0;
  if (!HexDecode(rest.substr(0, 16), &e, sizeof e)) return std::nullopt;
  try {
    size_t used = 0;
    int64_t s = std::stoll(rest.substr(17), &used);
    if (used != rest.size() - 17 || s < 0) return std::nullopt;
    return Parsed{Epoch(e), Seq(s)};
  } catch (...) {
    return std::nullopt;
  }
}

std::optional<ServedSnapshot> ReadCached(const fs::path& path, const Parsed& p) {
  std::ifstream f(path.string() + ".info");
  ServedSnapshot s;
  if (!(f >> s.sha256_hex >> s.size >> s.entries) || s.sha256_hex.size() != 64) return std::nullopt;
  std::error_code ec;
  if (fs::file_size(path, ec) != s.size || ec) return std::nullopt;
  s.path = path.string();
  s.epoch = p.epoch;
  s.max_seq = p.max_seq;
  return s;
}

}  // namespace

Result<std::optional<ServedSnapshot>> FindOrExportSnapshot(Library& lib, const std::string& library_dir,
                                                           DeviceRowId owner, const Uuid& uuid, Epoch epoch,
                                                           Seq max_seq, uint64_t max_lag,
                                                           bool export_if_missing) {
  const fs::path dir = fs::path(library_dir) / "snapshots";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IOError("cannot create " + dir.string() + ": " + ec.message());
  const std::string prefix = "serve-" + uuid.ToString() + "-";
  MutexLock lock(ExportMutex());
  std::optional<ServedSnapshot> best;
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    auto p = ParseName(f.path().filename().string(), prefix);
    if (!p || p->epoch != epoch || p->max_seq > max_seq) continue;
    if (static_cast<uint64_t>(max_seq.value() - p->max_seq.value()) > max_lag) continue;
    if (best && best->max_seq >= p->max_seq) continue;
    if (auto s = ReadCached(f.path(), *p)) best = std::move(s);
  }
  if (best || !export_if_missing) return best;

  auto t0 = std::chrono::steady_clock::now();
  const std::string fresh = (dir / (prefix + "new.db")).string();
  ES_ASSIGN_OR_RETURN(SnapshotInfo info, ExportSnapshot(lib, owner, fresh));
  std::string path = (dir / (prefix + HexEncode(&info.epoch, sizeof info.epoch) + "-" +
                             std::to_string(info.max_seq.value()) + ".db"))
                         .string();
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    std::string n = f.path().filename().string();
    if (n.rfind(prefix, 0) == 0 && f.path().string() != fresh) fs::remove(f.path(), ec);
  }
  fs::rename(fresh, path, ec);
  if (ec) return IOError("cannot rename " + fresh + ": " + ec.message());
  ES_RETURN_IF_ERROR(WriteSmallFileAtomically(
      path + ".info",
      info.sha256 + " " + std::to_string(info.size_bytes) + " " + std::to_string(info.entries) + "\n"));
  ServedSnapshot s{path,
                   info.sha256,
                   info.size_bytes,
                   info.entries,
                   info.epoch,
                   info.max_seq,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
  return std::optional<ServedSnapshot>(std::move(s));
}

Status WriteSmallFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    f.flush();
    if (!f) return IOError("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return IOError("cannot rename " + tmp + ": " + ec.message());
  return Status::Ok();
}

}  // namespace entrysync
