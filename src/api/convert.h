// Internal values -> the public API's values, and the public options ->
// internal configuration. Pure functions.
#pragma once

#include <string>
#include <vector>

#include "entrysync/info.h"
#include "entrysync/options.h"
#include "index/indexer.h"
#include "snapshot/snapshot.h"
#include "store/library.h"
#include "sync/config.h"
#include "sync/session.h"

namespace entrysync {

SyncStrategy ToSyncStrategy(Strategy s);
Strategy ToStrategy(SyncStrategy s);
Codec ToCodec(BatchCodec c);
SyncConfig ToSyncConfig(const SyncOptions& options);

Device ToDevice(const DeviceInfo& d);
// `devices`: every device, to name the owner ("" when unknown).
Location ToLocation(const LocationInfo& l, const std::vector<DeviceInfo>& devices);
ScanReport ToScanReport(const IndexReport& r, Location location);
SnapshotSummary ToSnapshotSummary(const SnapshotInfo& i);
SyncCounters ToSyncCounters(const SessionCounters& c);
// `now`: steady-clock seconds, as TransferProgress's times.
Transfer ToTransfer(const TransferProgress& t, double now);

// Steady-clock seconds (the clock of TransferProgress).
double SteadyNow();

}  // namespace entrysync
