#include "api/convert.h"

#include <chrono>

namespace entrysync {

Strategy ToStrategy(SyncStrategy s) {
  switch (s) {
    case SyncStrategy::kAuto:
      return Strategy::kAuto;
    case SyncStrategy::kChange:
      return Strategy::kChange;
    case SyncStrategy::kBatch:
      return Strategy::kBatch;
    case SyncStrategy::kBulk:
      return Strategy::kBulk;
    case SyncStrategy::kSnapshot:
      return Strategy::kSnapshot;
  }
  return Strategy::kAuto;
}

Codec ToCodec(BatchCodec c) {
  switch (c) {
    case BatchCodec::kZstd:
      return Codec::kZstd;
    case BatchCodec::kGzip:
      return Codec::kGzip;
    case BatchCodec::kNone:
      return Codec::kNone;
  }
  return Codec::kZstd;
}

SyncStrategy ToSyncStrategy(Strategy s) {
  switch (s) {
    case Strategy::kAuto:
      return SyncStrategy::kAuto;
    case Strategy::kChange:
      return SyncStrategy::kChange;
    case Strategy::kBatch:
      return SyncStrategy::kBatch;
    case Strategy::kBulk:
      return SyncStrategy::kBulk;
    case Strategy::kSnapshot:
      return SyncStrategy::kSnapshot;
  }
  return SyncStrategy::kAuto;
}

SyncConfig ToSyncConfig(const SyncOptions& o) {
  SyncConfig c;
  c.forced = ToStrategy(o.strategy);
  c.batch_records = o.batch_records;
  c.codec = ToCodec(o.codec);
  c.auto_fetch = o.fetch_in_background;
  c.fetch_rate_limit = o.rate_limit_bytes_per_second;
  c.upload_rate_limit = o.upload_rate_limit_bytes_per_second;
  c.total_fetch_rate_limit = o.total_rate_limit_bytes_per_second;
  c.total_upload_rate_limit = o.total_upload_rate_limit_bytes_per_second;
  c.change_threshold = o.change_threshold;
  c.snapshot_threshold = o.snapshot_threshold;
  c.bulk_threshold = o.bulk_threshold;
  return c;
}

Device ToDevice(const DeviceInfo& d) {
  return Device{.uuid = d.uuid,
                .name = d.name,
                .device_id = d.device_id,
                .address = d.addr,
                .is_local = d.is_local,
                .paired = d.trusted && !d.is_local};
}

Location ToLocation(const LocationInfo& l, const std::vector<DeviceInfo>& devices) {
  Location out;
  out.uuid = l.record.uuid;
  out.root_path = l.record.root_path;
  out.name = l.record.name;
  for (const auto& d : devices)
    if (d.id == l.owner) {
      out.owner = d.uuid;
      out.owner_name = d.name;
    }
  return out;
}

ScanReport ToScanReport(const IndexReport& r, Location location) {
  return ScanReport{.location = std::move(location),
                    .entries = r.entries,
                    .added = r.added,
                    .modified = r.modified,
                    .deleted = r.deleted,
                    .unchanged = r.unchanged,
                    .bulk = r.bulk,
                    .max_seq = r.max_seq,
                    .walk_seconds = r.walk_seconds,
                    .commit_seconds = r.commit_seconds,
                    .warnings = r.errors};
}

SnapshotSummary ToSnapshotSummary(const SnapshotInfo& i) {
  return SnapshotSummary{.owner = i.owner,
                         .owner_name = i.owner_name,
                         .epoch = i.epoch,
                         .max_seq = i.max_seq,
                         .entries = i.entries,
                         .locations = i.locations,
                         .size_bytes = i.size_bytes,
                         .sha256 = i.sha256,
                         .library_id = i.library_id,
                         .exported_by = i.exported_by,
                         .signed_by_owner = i.checkpoint.has_value()};
}

SyncCounters ToSyncCounters(const SessionCounters& c) {
  return SyncCounters{.rows_applied = c.rows_applied,
                      .rows_sent = c.rows_sent,
                      .batches_sent = c.batches_sent,
                      .batches_received = c.batches_received,
                      .changes_sent = c.changes_sent,
                      .changes_received = c.changes_received,
                      .notices_sent = c.notices_sent,
                      .notices_received = c.notices_received,
                      .snapshots_sent = c.snapshots_sent,
                      .snapshots_imported = c.snapshots_imported,
                      .verification_failures = c.verification_failures,
                      .divergences = c.divergences};
}

Transfer ToTransfer(const TransferProgress& t, double now) {
  return Transfer{.id = t.id,
                  .pulling = t.pulling,
                  .owner_name = t.owner_name,
                  .strategy = ToSyncStrategy(t.strategy),
                  .done = t.done,
                  .total = t.total,
                  .bytes = t.bytes,
                  .total_bytes = t.total_bytes,
                  .seconds = (t.finished > 0 ? t.finished : now) - t.started,
                  .rate = t.Rate(now),
                  .eta_seconds = t.Eta(now),
                  .finished = t.finished > 0};
}

double SteadyNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace entrysync
