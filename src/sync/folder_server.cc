// ServeFolder: the serving side of on-demand folder loads (index_sender.h).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proto/batch.h"
#include "proto/convert.h"
#include "sync/index_sender.h"

namespace entrysync {
namespace {

// What a folder load sends, read and encoded on the reader.
struct FolderRead {
  std::string path;
  std::string not_found;            // set: the request fails with NotFound
  std::vector<std::string> frames;  // locations, batches, Current
  size_t chain = 0, rows = 0, batches = 0;
};

struct FolderRequest {
  std::string path;
  Uuid owner;
  DeviceRowId owner_row;
  Epoch epoch;
  uint64_t id = 0;
  uint32_t per = 1000;
  Codec codec = Codec::kNone;
};

// The chain of entries from the location's root down to `path`, then the
// live children of its last entry. Empty when a name is missing.
Result<std::vector<EntryRecord>> ChainAndChildren(Library& lib, EntryRecord root, const std::string& rest,
                                                  size_t* chain) {
  std::vector<EntryRecord> rows{std::move(root)};
  size_t i = 0;
  while (i < rest.size()) {
    size_t j = rest.find('/', i);
    if (j == std::string::npos) j = rest.size();
    std::string part = rest.substr(i, j - i);
    i = j + 1;
    if (part.empty()) continue;
    ES_ASSIGN_OR_RETURN(auto kids, lib.ListChildren(rows.back().uuid));
    auto hit = std::find_if(kids.begin(), kids.end(), [&](const EntryRecord& e) { return e.name == part; });
    if (hit == kids.end()) return std::vector<EntryRecord>{};
    rows.push_back(std::move(*hit));
  }
  *chain = rows.size();
  ES_ASSIGN_OR_RETURN(auto kids, lib.ListChildren(rows.back().uuid));
  for (auto& k : kids) rows.push_back(std::move(k));
  return rows;
}

Result<FolderRead> ReadFolder(Library& lib, const FolderRequest& r) {
  FolderRead out;
  out.path = r.path;
  ES_ASSIGN_OR_RETURN(auto locations, lib.ListLocations(r.owner_row));
  const LocationInfo* best = InnermostLocation(locations, r.path);
  if (!best) {
    out.not_found = r.path + " is not inside any location of that device";
    return out;
  }
  auto root = lib.LocationRoot(best->id);
  if (!root.ok()) {
    out.not_found = r.path + " is not indexed on that device";
    return out;
  }
  std::string rest = r.path.substr(best->record.root_path.size());
  ES_ASSIGN_OR_RETURN(auto rows, ChainAndChildren(lib, std::move(*root), rest, &out.chain));
  if (rows.empty()) {
    out.not_found = r.path + ": no such entry on that device";
    return out;
  }
  ES_ASSIGN_OR_RETURN(std::string locs, EncodeLocations(lib, r.owner, r.owner_row, r.epoch, r.id, Seq(-1)));
  out.frames.push_back(std::move(locs));
  const uint32_t total_batches = static_cast<uint32_t>((rows.size() + r.per - 1) / r.per);
  for (size_t k = 0; k < rows.size(); k += r.per) {
    size_t n = std::min<size_t>(r.per, rows.size() - k);
    BatchHeader hdr{r.owner,       r.epoch,     r.id,    static_cast<uint32_t>(k / r.per),
                    total_batches, rows.size(), r.codec, {}};
    ES_ASSIGN_OR_RETURN(wire::StateBatch b, BuildEntryBatch(hdr, std::span(rows).subspan(k, n)));
    b.set_from_seq(-1);
    out.frames.push_back(EncodeFrame(b));
    out.batches++;
  }
  out.rows = rows.size();
  wire::Current c;
  c.set_owner(UuidToWire(r.owner));
  c.set_epoch(r.epoch.value());
  c.set_from_seq(-1);
  c.set_transfer_id(r.id);
  out.frames.push_back(EncodeFrame(c));
  return out;
}

}  // namespace

// Under an upload limit a load waits for its turn before it is read; its
// frames are charged once sent.
Status ServeFolder(SessionShared& s, const wire::StateRequest& r, const Uuid& owner, DeviceRowId owner_row,
                   Epoch epoch) {
  FolderRequest req{r.folder_path(), owner, owner_row, epoch, r.request_id(), s.batch_records, s.codec};
  if (req.path.size() > 1 && req.path.back() == '/') req.path.pop_back();
  s.folder_loads++;
  return s.WhenMayUpload([&s, req] {
    s.ReadThen<Result<FolderRead>>(
        Reader::Lane::kServe, [req](Library& lib) { return ReadFolder(lib, req); },
        [&s, id = req.id](Result<FolderRead> got) -> Status {
          s.folder_loads--;
          ES_RETURN_IF_ERROR(got.status());
          if (!got->not_found.empty()) return s.FailRequest(id, NotFound(got->not_found));
          for (std::string& f : got->frames) {
            s.Uploaded(f.size());
            s.Send(std::move(f));
          }
          s.counters.batches_sent += got->batches;
          s.counters.rows_sent += got->rows;
          spdlog::info("served {} ({} entries along the path, {} children) to {} on demand", got->path,
                       got->chain, got->rows - got->chain, s.peer_name);
          s.publish();
          return Status::Ok();
        });
    return Status::Ok();
  });
}

}  // namespace entrysync
