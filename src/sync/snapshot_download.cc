#include "sync/snapshot_download.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "base/disk_space.h"
#include "proto/compress.h"
#include "proto/convert.h"
#include "snapshot/snapshot.h"
#include "sync/session_host.h"
#include "sync/snapshot_cache.h"
#include "sync/trust.h"

namespace entrysync {
namespace {

namespace fs = std::filesystem;

// Largest snapshot a receiver accepts an offer of.
constexpr uint64_t kMaxSnapshotBytes = uint64_t{1} << 40;

std::string ReadSmallFile(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// The line OWNER.offer holds: "SHA256 SIZE EPOCH MAX_SEQ".
std::string OfferLine(const Download& d) {
  return d.sha256_hex + " " + std::to_string(d.size) + " " + std::to_string(d.epoch.value()) + " " +
         std::to_string(d.max_seq.value());
}

uint64_t EntriesAt(const Download& d) {
  return static_cast<uint64_t>(static_cast<double>(d.entries) * static_cast<double>(d.received) /
                               static_cast<double>(d.size));
}

}  // namespace

void Download::Close() {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

Result<bool> SnapshotDownloader::Start(uint64_t pull_id, TransferProgress& p, const wire::SnapshotOffer& o,
                                       Download* out) {
  if (o.sha256().size() != 32) return ProtocolError("SnapshotOffer without a 32-byte sha256");
  if (o.size() == 0 || o.size() > kMaxSnapshotBytes)
    return ProtocolError("SnapshotOffer of " + std::to_string(o.size()) + " bytes");
  ES_ASSIGN_OR_RETURN(Uuid owner, UuidFromWire(o.owner(), "owner"));
  std::string dir = s_.host.library_dir() + "/snapshots";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IOError("cannot create " + dir + ": " + ec.message());
  Download d;
  d.part_path = dir + "/" + owner.ToString() + ".part";
  d.offer_path = dir + "/" + owner.ToString() + ".offer";
  d.sha256_hex = HexEncode(o.sha256().data(), o.sha256().size());
  d.size = o.size();
  d.entries = o.entry_count();
  d.epoch = Epoch(o.epoch());
  d.max_seq = Seq(o.max_seq());
  if (o.has_checkpoint()) {
    ES_ASSIGN_OR_RETURN(Checkpoint cp, CheckpointFromWire(o.checkpoint()));
    if (cp.owner != owner || cp.epoch != d.epoch || cp.seq != d.max_seq)
      return ProtocolError("SnapshotOffer carries a checkpoint of another owner, epoch or seq");
    d.checkpoint = cp;
  }
  // Resume a download of the very same file; anything else starts over.
  std::string offer_line = OfferLine(d);
  uint64_t have = fs::exists(d.part_path, ec) ? fs::file_size(d.part_path, ec) : 0;
  bool resume = ReadSmallFile(d.offer_path) == offer_line && have <= d.size && !ec;
  if (!resume) {
    fs::remove(d.part_path, ec);
    ES_RETURN_IF_ERROR(WriteSmallFileAtomically(d.offer_path, offer_line + "\n"));
    have = 0;
  }
  d.fd = ::open(d.part_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (d.fd < 0) return IOError("cannot open " + d.part_path + ": " + std::generic_category().message(errno));
  if (::lseek(d.fd, static_cast<off_t>(have), SEEK_SET) < 0) {
    d.Close();
    return IOError("cannot seek in " + d.part_path);
  }
  d.received = have;
  p.strategy = Strategy::kSnapshot;
  p.total = d.entries;
  p.total_bytes = d.size;
  p.bytes = have;
  p.done = EntriesAt(d);
  spdlog::info("{} offers a snapshot of {}: {} entries up to seq {}, {} bytes{}", s_.peer_name, p.owner_name,
               d.entries, d.max_seq.value(), d.size,
               resume && have > 0 ? ", resuming at byte " + std::to_string(have) : "");
  out->Close();
  *out = std::move(d);
  if (have == out->size) return true;
  wire::SnapshotRequest r;
  r.set_owner(o.owner());
  r.set_offset(have);
  r.set_epoch(o.epoch());
  r.set_sha256(o.sha256());
  r.set_transfer_id(pull_id);
  r.set_max_chunks(flow_.InitialCredit());
  s_.Send(EncodeFrame(r));
  return false;
}

Result<bool> SnapshotDownloader::Write(uint64_t pull_id, TransferProgress& p, Download& d,
                                       const wire::SnapshotChunk& c, size_t frame_bytes) {
  if (c.offset() != d.received)
    return ProtocolError("SnapshotChunk at byte " + std::to_string(c.offset()) + ", expected " +
                         std::to_string(d.received));
  ES_ASSIGN_OR_RETURN(Codec codec, CodecFromWire(c.codec()));
  uint64_t raw_size = codec == Codec::kNone ? c.data().size() : c.raw_size();
  if (raw_size > d.size - d.received)
    return Corruption("snapshot chunk runs past the offered size of " + std::to_string(d.size) + " bytes");
  std::string raw;
  if (codec != Codec::kNone) {
    ES_ASSIGN_OR_RETURN(raw, Decompress(codec, c.data(), raw_size, kDefaultMaxFrameBytes * 8));
  }
  std::string_view bytes = codec == Codec::kNone ? std::string_view(c.data()) : std::string_view(raw);
  const char* at = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t w = ::write(d.fd, at, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      Status why = IOError("cannot write " + d.part_path + ": " + std::generic_category().message(errno));
      if (IsDiskFull(why)) return DiskFullError("download a snapshot", d.part_path, d.size - d.received, why);
      return why;
    }
    at += w;
    left -= static_cast<size_t>(w);
  }
  d.received += bytes.size();
  flow_.Received(frame_bytes);
  p.bytes = d.received;
  p.done = EntriesAt(d);
  if (d.received == d.size) return true;
  if (c.last())
    return Corruption("snapshot ended at byte " + std::to_string(d.received) + " of " +
                      std::to_string(d.size));
  flow_.Grant(pull_id, std::nullopt);
  return false;
}

SnapshotImportJob SnapshotDownloader::ImportJob(Download& d, const Uuid& owner) {
  if (::fsync(d.fd) != 0) spdlog::warn("fsync {}: {}", d.part_path, std::generic_category().message(errno));
  d.Close();
  return SnapshotImportJob{owner,        d.part_path,
                           d.offer_path, d.sha256_hex,
                           s_.peer_row,  SnapshotOffered{owner, d.epoch, d.max_seq, s_.peer_name},
                           d.checkpoint};
}

void RemoveFinishedDownloads(Library& lib, const std::string& library_dir) {
  const fs::path dir = fs::path(library_dir) / "snapshots";
  std::error_code ec;
  std::vector<fs::path> offers, parts, temps;
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    std::string name = f.path().filename().string();
    std::string owner = name.substr(0, name.find('.'));
    if (!Uuid::Parse(owner)) continue;  // not OWNER.part, OWNER.offer or OWNER.offer.tmp
    std::string rest = name.substr(owner.size());
    if (rest == ".offer") offers.push_back(f.path());
    if (rest == ".part") parts.push_back(f.path());
    if (rest == ".offer.tmp") temps.push_back(f.path());
  }
  auto remove = [&](const fs::path& p, const char* why) {
    if (!fs::remove(p, ec) || ec) return;
    spdlog::info("removed {}: {}", p.string(), why);
  };
  for (const fs::path& offer : offers) {
    fs::path part = fs::path(offer).replace_extension(".part");
    std::istringstream line(ReadSmallFile(offer.string()));
    std::string sha;
    uint64_t size = 0, epoch = 0;
    int64_t max_seq = -1;
    if (!(line >> sha >> size >> epoch >> max_seq)) {
      // Written by an older build: no later offer matches it, so nothing resumes it.
      remove(part, "an offer of an older format");
      remove(offer, "an offer of an older format");
      continue;
    }
    auto owner = lib.FindDeviceByUuid(*Uuid::Parse(offer.stem().string()));  // known: it was parsed
    if (!owner.ok()) continue;
    auto wm = lib.GetWatermark(owner->id);
    if (!wm.ok() || !*wm || (*wm)->epoch != Epoch(epoch) || (*wm)->seq < Seq(max_seq)) continue;
    remove(part, "its snapshot was imported");
    remove(offer, "its snapshot was imported");
  }
  for (const fs::path& part : parts) {
    if (!fs::exists(fs::path(part).replace_extension(".offer"), ec)) remove(part, "no offer describes it");
  }
  for (const fs::path& temp : temps) remove(temp, "left by an interrupted write");
}

}  // namespace entrysync
