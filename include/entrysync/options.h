// What an embedder can ask of an Engine's operations: plain values with
// defaults that match the CLI's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "entrysync/export.h"
#include "entrysync/status.h"
#include "entrysync/types.h"

namespace entrysync {

struct SyncProgress;

// Engine::Create: the new library and this device in it.
struct CreateOptions {
  std::string device_name;           // REQUIRES: not empty
  std::optional<Uuid> join_library;  // another device's library id; none = a new library
};

// Engine::AddLocation and Engine::Rescan.
struct ScanOptions {
  // Called now and then on the calling thread with the number of entries
  // walked so far.
  std::function<void(uint64_t entries)> progress;
};

// Engine::List.
struct ListOptions {
  // Ask a peer for the folder even when this library already holds it.
  bool refresh = false;
};

// How rows of one owner move between two devices (docs/architecture.md).
enum class SyncStrategy : uint8_t {
  kAuto,      // chosen by size
  kChange,    // one StateChange message per row
  kBatch,     // compressed StateBatch stream under the receiver's credit
  kBulk,      // a notice; the receiver pulls in pages at its own pace
  kSnapshot,  // the owner's index as one SQLite file
};
// "auto", "change", "batch", "bulk", "snapshot".
ENTRYSYNC_EXPORT const char* SyncStrategyName(SyncStrategy strategy);
// The inverse of SyncStrategyName; nullopt for any other text.
ENTRYSYNC_EXPORT std::optional<SyncStrategy> ParseSyncStrategy(std::string_view name);

enum class BatchCodec : uint8_t { kZstd, kGzip, kNone };

// How this device syncs: what it pulls and how. The defaults are the CLI's.
struct SyncOptions {
  SyncStrategy strategy = SyncStrategy::kAuto;  // forces one strategy for every pull
  uint32_t batch_records = 1000;                // rows per StateBatch
  BatchCodec codec = BatchCodec::kZstd;
  // true: pull everything peers announce, in the background; false: pull
  // only the folders Engine::List loads (lazy).
  bool fetch_in_background = true;
  // Rate limits in bytes per second, 0 = no limit. Each holds over time
  // (a token bucket: after idling, at most max(64 KiB, a quarter second's
  // worth) goes at once).
  // Per peer device, over all connections with it:
  uint64_t rate_limit_bytes_per_second = 0;         // what this device pulls from it
  uint64_t upload_rate_limit_bytes_per_second = 0;  // what this device serves it
  // Over all peer devices together:
  uint64_t total_rate_limit_bytes_per_second = 0;
  uint64_t total_upload_rate_limit_bytes_per_second = 0;
  uint64_t change_threshold = 100;       // at most this many rows go as StateChanges
  uint64_t snapshot_threshold = 100000;  // a peer holding nothing of an owner this large gets a snapshot
  uint64_t bulk_threshold = 100000;      // a delta this large is fetched in pages in the background
};

// Engine::Start: the node that keeps this device in sync.
struct StartOptions {
  std::string listen;        // "HOST:PORT" to accept peers on (port 0: any); "" = do not listen
  bool dial_peers = true;    // keep every paired peer with an address connected
  bool write_status = true;  // keep LIBRARY/status.json current (read by other processes' GetStatus)
  SyncOptions sync;
};

// Engine::SyncOnce.
struct SyncOnceOptions {
  SyncOptions sync;
  // Give up (Aborted) after this long; 0 = never.
  std::chrono::duration<double> timeout{0};
  // Called on the calling thread about every 50 ms while the sync runs.
  std::function<void(const SyncProgress&)> progress;
};

// OK when `host_port` is "HOST:PORT" with a port in 0..65535 (IPv6 hosts in
// brackets); otherwise InvalidArgument naming the text.
ENTRYSYNC_EXPORT Status ValidateAddress(const std::string& host_port);

}  // namespace entrysync
