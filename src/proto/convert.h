// Conversions between the in-memory records/ids and their wire forms
// (row-wise, as used by StateChange and message headers).
//
// Thread-safe: all functions are reentrant.
#pragma once

#include <string>
#include <string_view>

#include "entrysync/record.h"
#include "entrysync/status.h"
#include "entrysync/types.h"
#include "proto/compress.h"
#include "proto/entrysync.pb.h"

namespace entrysync {

// 16 raw bytes.
std::string UuidToWire(const Uuid& uuid);
// Parses 16 raw bytes. Fails with Protocol "<field>: uuid of N bytes" on any
// other length.
Result<Uuid> UuidFromWire(std::string_view bytes, std::string_view field);
// Like UuidFromWire, but empty bytes mean Nil (optional uuid fields).
Result<Uuid> OptionalUuidFromWire(std::string_view bytes, std::string_view field);
// Nil encodes as empty bytes.
std::string OptionalUuidToWire(const Uuid& uuid);

std::string DeviceIdToWire(const DeviceId& id);
Result<DeviceId> DeviceIdFromWire(std::string_view bytes, std::string_view field);

wire::Codec CodecToWire(Codec codec);
// Fails with Protocol "unknown codec N".
Result<Codec> CodecFromWire(int codec);

void EntryToWire(const EntryRecord& record, wire::Entry* out);
// Fails with Protocol naming the bad field (uuid lengths, unknown kind).
Result<EntryRecord> EntryFromWire(const wire::Entry& entry);

void LocationToWire(const LocationRecord& record, wire::Location* out);
Result<LocationRecord> LocationFromWire(const wire::Location& location);

// The Error frame to send for a failed local Status (code mapped to the
// closest ErrorCode; the message is the Status message).
// REQUIRES: !status.ok().
wire::Error ErrorToWire(const Status& status, uint64_t request_id = 0);
// The Status a received Error frame stands for: Protocol for protocol errors,
// Corruption, PermissionDenied (not paired, wrong library), NotFound, ...;
// message "peer <peer>: <their message>". Never OK.
Status ErrorFromWire(const wire::Error& error, std::string_view peer);

}  // namespace entrysync
