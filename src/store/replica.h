// Replica: applies rows of a remote owner received from a peer.
//
// Each Apply* call is one transaction that writes the rows and, when given,
// advances the owner's watermark in the same transaction: a crash leaves
// either both or neither. Rows whose stored seq is already >= the incoming
// seq are skipped, so replays are harmless and nothing is applied twice.
//
// Not thread-safe; bound to one Library.
#pragma once

#include <optional>
#include <span>

#include "store/entry_writer.h"
#include "store/library.h"

namespace entrysync {

struct ApplyStats {
  uint64_t written = 0;  // rows inserted or updated
  uint64_t skipped = 0;  // rows already current
};

class Replica {
 public:
  static Result<Replica> Make(Library& lib);

  // Applies locations and entries of `owner` (epoch `epoch`). When
  // `advance_to` is set, the watermark becomes (epoch, advance_to) provided
  // it is not lower than the stored one. Fails, changing nothing, when the
  // stored watermark has another epoch (call ResetOwner first) or when a
  // record is invalid.
  Result<ApplyStats> Apply(DeviceRowId owner, Epoch epoch, std::span<const LocationRecord> locations,
                           std::span<const EntryRecord> entries, std::optional<Seq> advance_to,
                           DeviceRowId source);

  // Drops every row of `owner` and sets its watermark to (epoch, 0): the
  // owner's index was reset and will be resent from zero. One transaction.
  Status ResetOwner(DeviceRowId owner, Epoch epoch);

 private:
  explicit Replica(Library& lib, EntryWriter w) : lib_(&lib), writer_(std::move(w)) {}
  Library* lib_;
  EntryWriter writer_;
};

}  // namespace entrysync
