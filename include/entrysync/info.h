// What an Engine's queries and operations return: plain values, copied out
// of the library; holding one holds nothing open.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "entrysync/options.h"
#include "entrysync/record.h"
#include "entrysync/types.h"

namespace entrysync {

// This device in its library: what a peer needs to pair with it.
struct LibraryIdentity {
  DeviceId device_id;  // SHA-256 of this device's public key
  Uuid device_uuid;
  std::string device_name;
  Uuid library_id;
};

// A device the library knows: this one, a paired peer, or an owner learnt
// through a peer (then neither paired nor with a device id).
struct Device {
  Uuid uuid;  // a paired peer's is a placeholder until it first connects
  std::string name;
  std::optional<DeviceId> device_id;  // this device once it has a key; every paired peer
  std::string address;                // HOST:PORT to dial; "" when none
  bool is_local = false;
  bool paired = false;
};

// One indexed folder of one owner.
struct Location {
  Uuid uuid;
  Uuid owner;
  std::string owner_name;
  std::string root_path;  // absolute, on the owner's device
  std::string name;
};

// What Engine::AddLocation or Engine::Rescan did to one location.
struct ScanReport {
  Location location;
  uint64_t entries = 0;  // live entries in the location afterwards
  uint64_t added = 0;
  uint64_t modified = 0;  // changed metadata, moved or renamed
  uint64_t deleted = 0;   // new tombstones
  uint64_t unchanged = 0;
  bool bulk = false;  // committed as one bulk commit (else as individual changes)
  Seq max_seq;        // this device's max seq after the commit
  double walk_seconds = 0;
  double commit_seconds = 0;
  std::vector<std::string> warnings;  // one line each: unreadable folders etc.
};

// Engine::List: the entry a path names and, for a folder, its children.
struct Listing {
  EntryRecord entry;
  std::vector<EntryRecord> children;  // live children of a folder; empty for a file
};

// Engine::Stats.
struct LocationStats {
  Uuid uuid;
  std::string root_path;
  uint64_t entries = 0;  // live
};
struct OwnerStats {
  Uuid uuid;
  std::string name;
  bool is_local = false;
  uint64_t entries = 0;  // live
  uint64_t tombstones = 0;
  Seq max_seq;                   // highest seq of the owner stored here
  Epoch epoch;                   // this device's epoch, or that of the rows held
  std::optional<Seq> watermark;  // remote owners: held up to this seq
  std::vector<LocationStats> locations;
};
struct LibraryStats {
  Uuid library_id;
  int schema_version = 0;
  uint64_t rows_applied_total = 0;  // rows written by replication, all owners, ever
  std::vector<OwnerStats> owners;   // every device the library knows
};

// Canonical export digest of one owner (Engine::Digest): two libraries hold
// the same rows of an owner exactly when the digests are equal.
struct OwnerDigest {
  std::string sha256;    // 64 lowercase hex digits
  uint64_t entries = 0;  // tombstones included
  uint64_t live = 0;
};

// One transfer of one owner's rows in a session.
struct Transfer {
  uint64_t id = 0;
  bool pulling = true;  // true: this device receives; false: it serves
  std::string owner_name;
  SyncStrategy strategy = SyncStrategy::kAuto;
  uint64_t done = 0;         // records moved
  uint64_t total = 0;        // records in the transfer
  uint64_t bytes = 0;        // payload bytes moved
  uint64_t total_bytes = 0;  // snapshots: the file's size; 0 = not known
  // How long it ran (until now, or until it finished); 0 when not known (a
  // daemon's status document does not say).
  double seconds = 0;
  double rate = 0;          // records per second
  double eta_seconds = -1;  // -1 = not known
  bool finished = false;
};

// Counters of one session.
struct SyncCounters {
  uint64_t rows_applied = 0;  // rows written to this library
  uint64_t rows_sent = 0;
  uint64_t batches_sent = 0;
  uint64_t batches_received = 0;
  uint64_t changes_sent = 0;
  uint64_t changes_received = 0;
  uint64_t notices_sent = 0;
  uint64_t notices_received = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_imported = 0;
  // Owners whose rows from this peer did not verify against the owner's
  // signed checkpoint (dropped and fetched again), and owners whose digest
  // differed between this peer and us at the same seq.
  uint64_t verification_failures = 0;
  uint64_t divergences = 0;
};

// Engine::SyncOnce, while it runs.
struct SyncProgress {
  uint64_t done = 0;   // records pulled so far, all pulls of the session
  uint64_t total = 0;  // records those pulls hold; 0 = not known yet
  uint64_t wire_received = 0;
  uint64_t wire_sent = 0;
  std::vector<Transfer> transfers;  // running and recently finished
};

// Engine::SyncOnce, once both devices are current.
struct SyncReport {
  std::string peer_name;
  double seconds = 0;  // from the dial to both current
  SyncCounters counters;
  uint64_t wire_received = 0;
  uint64_t wire_sent = 0;
  std::vector<Transfer> transfers;
};

// A running node's session with one peer.
struct SessionStatus {
  std::string peer_name;
  Uuid peer_uuid;
  std::string address;
  std::string state;         // "handshake", "syncing", "current", "closed"
  std::string close_reason;  // "" unless closed by an error
  uint64_t wire_sent = 0;
  uint64_t wire_received = 0;
  SyncCounters counters;
  std::vector<Transfer> transfers;
};

// A node running on the library: this Engine's (Engine::Start) or another
// process's (`entrysync serve`).
struct DaemonStatus {
  int pid = 0;
  uint16_t listen_port = 0;  // 0 = not listening
  std::vector<SessionStatus> sessions;
  // The node's whole status document, JSON (docs/architecture.md), for
  // tools that pass it on.
  std::string document;
};

// What the library holds of one owner (Engine::GetStatus).
struct Watermark {
  Epoch epoch;
  Seq seq;
  // The seq at which these rows last matched the owner's signed checkpoint
  // (docs/trust.md); verified when equal to `seq`.
  Seq verified_seq;
};
struct OwnerStatus {
  Uuid uuid;
  std::string name;
  bool is_local = false;
  bool paired = false;
  uint64_t entries = 0;                // live
  Epoch epoch;                         // this device only
  Seq max_seq;                         // this device only
  std::optional<Watermark> watermark;  // remote owners: held up to
};
struct LibraryStatus {
  std::string device_name;
  Uuid library_id;
  // This device, then every other owner this library holds rows of or is
  // paired with.
  std::vector<OwnerStatus> owners;
  std::optional<DaemonStatus> daemon;  // none when no node runs on the library
};

// A snapshot file: one owner's index as a standalone SQLite file
// (docs/snapshot-format.md).
struct SnapshotSummary {
  Uuid owner;
  std::string owner_name;  // as the exporter knew it
  Epoch epoch;
  Seq max_seq;             // every row of the owner with seq <= max_seq, none above
  uint64_t entries = 0;    // tombstones included
  uint64_t locations = 0;  // tombstones included
  uint64_t size_bytes = 0;
  std::string sha256;  // of the whole file, 64 lowercase hex digits
  Uuid library_id;
  Uuid exported_by;  // device uuid
  // The file carries the owner's checkpoint at max_seq, its signature
  // verified: an import checks the rows against it (docs/trust.md).
  bool signed_by_owner = false;
};

// Engine::ImportSnapshot.
struct SnapshotImport {
  SnapshotSummary snapshot;
  uint64_t rows_written = 0;   // locations + entries inserted
  uint64_t rows_replaced = 0;  // rows of the owner held before, deleted
  double seconds = 0;          // the whole import, checks included
};

}  // namespace entrysync
