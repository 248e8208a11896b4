// ServeFolder: the serving side of on-demand folder loads (index_sender.h).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proto/batch.h"
#include "proto/convert.h"
#include "sync/index_sender.h"

namespace entrysync {

Status ServeFolder(SessionShared& s, const wire::StateRequest& r, const Uuid& owner, DeviceRowId owner_row,
                   Epoch epoch) {
  std::string path = r.folder_path();
  if (path.size() > 1 && path.back() == '/') path.pop_back();
  auto fail = [&](const std::string& why) { return s.FailRequest(r.request_id(), NotFound(why)); };
  ES_ASSIGN_OR_RETURN(auto locations, s.lib->ListLocations(owner_row));
  const LocationInfo* best = InnermostLocation(locations, path);
  if (!best) return fail(path + " is not inside any location of that device");
  auto root = s.lib->LocationRoot(best->id);
  if (!root.ok()) return fail(path + " is not indexed on that device");
  // The chain of entries from the location's root down to `path`.
  std::vector<EntryRecord> rows{*root};
  std::string rest = path.substr(best->record.root_path.size());
  size_t i = 0;
  while (i < rest.size()) {
    size_t j = rest.find('/', i);
    if (j == std::string::npos) j = rest.size();
    std::string part = rest.substr(i, j - i);
    i = j + 1;
    if (part.empty()) continue;
    ES_ASSIGN_OR_RETURN(auto kids, s.lib->ListChildren(rows.back().uuid));
    auto hit = std::find_if(kids.begin(), kids.end(), [&](const EntryRecord& e) { return e.name == part; });
    if (hit == kids.end()) return fail(path + ": no such entry on that device");
    rows.push_back(std::move(*hit));
  }
  size_t chain = rows.size();
  ES_ASSIGN_OR_RETURN(auto kids, s.lib->ListChildren(rows.back().uuid));
  for (auto& k : kids) rows.push_back(std::move(k));
  const uint64_t id = r.request_id();
  ES_RETURN_IF_ERROR(SendLocations(s, owner, owner_row, epoch, id, Seq(-1)));
  const uint32_t per = s.batch_records;
  const uint32_t total_batches = static_cast<uint32_t>((rows.size() + per - 1) / per);
  for (size_t k = 0; k < rows.size(); k += per) {
    size_t n = std::min<size_t>(per, rows.size() - k);
    BatchHeader hdr{owner,         epoch,       id,      static_cast<uint32_t>(k / per),
                    total_batches, rows.size(), s.codec, {}};
    ES_ASSIGN_OR_RETURN(wire::StateBatch b, BuildEntryBatch(hdr, std::span(rows).subspan(k, n)));
    b.set_from_seq(-1);
    s.Send(EncodeFrame(b));
    s.counters.batches_sent++;
    s.counters.rows_sent += n;
  }
  wire::Current c;
  c.set_owner(UuidToWire(owner));
  c.set_epoch(epoch.value());
  c.set_from_seq(-1);
  c.set_transfer_id(id);
  s.Send(EncodeFrame(c));
  spdlog::info("served {} ({} entries along the path, {} children) to {} on demand", path, chain,
               rows.size() - chain, s.peer_name);
  return Status::Ok();
}

}  // namespace entrysync
