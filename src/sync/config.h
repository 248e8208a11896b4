// Sync configuration and strategies.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "proto/compress.h"
#include "store/checkpoint.h"

namespace entrysync {

// How rows of one owner move to a peer.
enum class Strategy : uint8_t {
  kAuto = 0,      // chosen by size (see ChooseStrategy)
  kChange = 1,    // one StateChange message per row
  kBatch = 2,     // compressed StateBatch stream with credit flow control
  kBulk = 3,      // BulkIndexComplete notice; the peer pulls at its own pace
  kSnapshot = 4,  // SQLite snapshot of the owner's data
};

const char* StrategyName(Strategy s);  // "auto", "change", ...
std::optional<Strategy> ParseStrategy(const std::string& name);
// A StateRequest's `strategy` field (wire::Strategy, an open enum): the
// strategy of that number, kAuto for any value this build does not know.
Strategy StrategyFromWire(int wire_strategy);

struct SyncConfig {
  // Rows per StateBatch.
  uint32_t batch_records = 1000;
  // A delta of at most this many rows goes as individual StateChanges.
  uint64_t change_threshold = 100;
  // Batches a receiver lets the sender have in flight.
  uint32_t credit_window = 8;
  Codec codec = Codec::kZstd;
  // Forces one strategy for everything this side pulls (kAuto = by size).
  Strategy forced = Strategy::kAuto;
  // A peer that holds nothing of an owner with at least this many entries
  // gets a SQLite snapshot instead of a row stream.
  uint64_t snapshot_threshold = 100000;
  // Pull everything a peer announces, in the background (else: lazily, only
  // the folders a user browses with `ls`).
  bool auto_fetch = true;
  // A peer that already holds some of an owner and lacks at least this many
  // of its rows (a massive delta, typically announced by BulkIndexComplete)
  // fetches them in the background, a page at a time (strategy bulk).
  uint64_t bulk_threshold = 100000;
  // Background fetches (strategy bulk) ask for pages of this many rows.
  uint32_t bulk_page_records = 50000;
  // A cached snapshot export still serves new peers while the owner moved on
  // by at most this many seqs (they pull the rest as deltas).
  uint64_t snapshot_max_lag = 10000;
  // Hear commits made by other processes (a daemon; store/commit_notice.h).
  // Only the process that owns the library should: the socket is one per
  // library.
  bool hear_other_processes = false;
  // Export this device's own index in the background once it is large and
  // settled, so a new peer's snapshot is ready when it asks.
  bool prepare_snapshots = true;
  // Serving reads and snapshot exports run on threads of their own
  // (sync/reader.h); false posts them to the sync loop instead (the
  // simulation: one polled thread, deterministic).
  bool reader_threads = true;
  // Bytes per SnapshotChunk; chunks take credit like batches do.
  uint32_t snapshot_chunk_bytes = 1 << 20;
  // Bytes per second this node pulls from one peer device, over all its
  // sessions together (0 = no limit): the receiver holds back credit and new
  // pulls to stay under it (sync/rate_limiter.h).
  uint64_t fetch_rate_limit = 0;
  // Bytes per second this node serves to one peer device, over all its
  // sessions together (0 = no limit): batches, snapshot chunks and folder
  // loads wait for their turn before they are sent.
  uint64_t upload_rate_limit = 0;
  // The same over all peer devices together (0 = no limit); each device's
  // limit, when set, still holds within it.
  uint64_t total_fetch_rate_limit = 0;
  uint64_t total_upload_rate_limit = 0;
  // A keepalive Ping goes out after this long without sending anything; the
  // connection is dropped after `idle_timeout` without receiving any byte
  // (a busy transfer always receives bytes, so it never times out).
  std::chrono::milliseconds keepalive{5000};
  std::chrono::milliseconds idle_timeout{30000};
  // Queued bytes above which a sender stops producing until the socket
  // drains: bounds memory whatever the strategy. Pongs count against it too:
  // while it is full they are not queued, and a peer that sends 64 KiB of
  // Pings meanwhile is disconnected (it sends and does not read).
  size_t max_pending_write_bytes = 4 << 20;
  // A peer that leaves more than this unread (queued here, not yet taken
  // by the transport: replies, pushes and notices the loop sends besides
  // the flow-controlled streams) is disconnected.
  size_t max_unread_bytes = 32 << 20;
  // Frames received and not yet handled by the sync loop, each counted as
  // its payload + 256 bytes: a peer that gets beyond it is disconnected. A
  // well-behaved peer stays within its credit (credit_window batches of at
  // most 8 MiB).
  size_t max_inbox_bytes = 72 << 20;
  // The peer's Hello is due within this long after the session began
  // (the TLS handshake has its own deadline, net/tls.h).
  std::chrono::milliseconds hello_timeout{10000};
  // Signs this device's checkpoints with its device key (the node sets it;
  // sync never holds the key). Unset: no checkpoints of our own are signed,
  // so peers can verify nothing we serve (tests of other things only).
  std::function<Result<Checkpoint>(Epoch, Seq, const LtHash::Checksum&)> sign_checkpoint;
};

// The strategy a server uses to send `delta_rows` rows of an owner: the
// forced one if any (bulk means paged batches), else a snapshot when the
// peer holds nothing of the owner and the owner is large, StateChanges for
// a few rows, a StateBatch stream otherwise.
Strategy ChooseStrategy(const SyncConfig& config, uint64_t delta_rows, bool peer_has_nothing);

// How a receiver pulls an owner it lacks about `delta_rows` rows of (an
// estimate from seqs): kBulk = paged background fetch (forced, or a massive
// delta on top of rows it already holds), else kAuto = one request, the
// server chooses by size.
Strategy ChoosePull(const SyncConfig& config, uint64_t delta_rows, bool holds_some);

}  // namespace entrysync
