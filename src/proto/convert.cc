#include "proto/convert.h"

#include <cstring>

namespace entrysync {

std::string UuidToWire(const Uuid& uuid) {
  return std::string(reinterpret_cast<const char*>(uuid.bytes.data()), uuid.bytes.size());
}

Result<Uuid> UuidFromWire(std::string_view bytes, std::string_view field) {
  if (bytes.size() != 16) {
    return ProtocolError(std::string(field) + ": uuid of " + std::to_string(bytes.size()) + " bytes");
  }
  return Uuid::FromBytes(bytes.data());
}

Result<Uuid> OptionalUuidFromWire(std::string_view bytes, std::string_view field) {
  if (bytes.empty()) return Uuid::Nil();
  return UuidFromWire(bytes, field);
}

std::string OptionalUuidToWire(const Uuid& uuid) { return uuid.is_nil() ? std::string() : UuidToWire(uuid); }

std::string DeviceIdToWire(const DeviceId& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

Result<DeviceId> DeviceIdFromWire(std::string_view bytes, std::string_view field) {
  if (bytes.size() != 32) {
    return ProtocolError(std::string(field) + ": device id of " + std::to_string(bytes.size()) + " bytes");
  }
  DeviceId id;
  std::memcpy(id.bytes.data(), bytes.data(), 32);
  return id;
}

wire::Codec CodecToWire(Codec codec) { return static_cast<wire::Codec>(codec); }

Result<Codec> CodecFromWire(int codec) {
  switch (codec) {
    case wire::CODEC_NONE:
      return Codec::kNone;
    case wire::CODEC_ZSTD:
      return Codec::kZstd;
    case wire::CODEC_GZIP:
      return Codec::kGzip;
    default:
      return ProtocolError("unknown codec " + std::to_string(codec));
  }
}

void EntryToWire(const EntryRecord& r, wire::Entry* out) {
  out->Clear();
  out->set_uuid(UuidToWire(r.uuid));
  out->set_parent(OptionalUuidToWire(r.parent));
  out->set_location(UuidToWire(r.location));
  out->set_name(r.name);
  out->set_extension(r.extension);
  out->set_kind(static_cast<wire::EntryKind>(r.kind));
  out->set_size(r.size);
  out->set_inode(r.inode);
  out->set_created_ns(r.created_ns);
  out->set_modified_ns(r.modified_ns);
  out->set_accessed_ns(r.accessed_ns);
  out->set_content_hash(r.content_hash);
  out->set_seq(r.seq.value());
  out->set_deleted(r.deleted);
}

Result<EntryRecord> EntryFromWire(const wire::Entry& e) {
  EntryRecord r;
  ES_ASSIGN_OR_RETURN(r.uuid, UuidFromWire(e.uuid(), "entry uuid"));
  ES_ASSIGN_OR_RETURN(r.parent, OptionalUuidFromWire(e.parent(), "entry parent"));
  ES_ASSIGN_OR_RETURN(r.location, UuidFromWire(e.location(), "entry location"));
  if (e.kind() < 0 || e.kind() > 2) {
    return ProtocolError("entry kind " + std::to_string(e.kind()) + " unknown");
  }
  r.name = e.name();
  r.extension = e.extension();
  r.kind = static_cast<EntryKind>(e.kind());
  r.size = e.size();
  r.inode = e.inode();
  r.created_ns = e.created_ns();
  r.modified_ns = e.modified_ns();
  r.accessed_ns = e.accessed_ns();
  r.content_hash = e.content_hash();
  r.seq = Seq(e.seq());
  r.deleted = e.deleted();
  return r;
}

void LocationToWire(const LocationRecord& r, wire::Location* out) {
  out->Clear();
  out->set_uuid(UuidToWire(r.uuid));
  out->set_root_path(r.root_path);
  out->set_name(r.name);
  out->set_seq(r.seq.value());
  out->set_deleted(r.deleted);
}

Result<LocationRecord> LocationFromWire(const wire::Location& l) {
  LocationRecord r;
  ES_ASSIGN_OR_RETURN(r.uuid, UuidFromWire(l.uuid(), "location uuid"));
  r.root_path = l.root_path();
  r.name = l.name();
  r.seq = Seq(l.seq());
  r.deleted = l.deleted();
  return r;
}

wire::Error ErrorToWire(const Status& status, uint64_t request_id) {
  wire::ErrorCode code = wire::ERROR_INTERNAL;
  switch (status.code()) {
    case Code::kProtocol:
    case Code::kInvalidArgument:
      code = wire::ERROR_PROTOCOL;
      break;
    case Code::kCorruption:
      code = wire::ERROR_CORRUPTION;
      break;
    case Code::kPermissionDenied:
      code = wire::ERROR_NOT_PAIRED;
      break;
    case Code::kNotFound:
      code = wire::ERROR_NOT_FOUND;
      break;
    default:
      break;
  }
  wire::Error e;
  e.set_code(code);
  e.set_message(status.message());
  e.set_request_id(request_id);
  return e;
}

Status ErrorFromWire(const wire::Error& error, std::string_view peer) {
  const std::string message =
      "peer " + std::string(peer) + ": " +
      (error.message().empty() ? "error " + std::to_string(error.code()) : error.message());
  switch (error.code()) {
    case wire::ERROR_PROTOCOL:
    case wire::ERROR_UNSUPPORTED_VERSION:
    case wire::ERROR_TOO_LARGE:
    case wire::ERROR_EPOCH_CHANGED:
      return ProtocolError(message);
    case wire::ERROR_CORRUPTION:
      return Corruption(message);
    case wire::ERROR_NOT_PAIRED:
    case wire::ERROR_WRONG_LIBRARY:
      return PermissionDenied(message);
    case wire::ERROR_NOT_FOUND:
      return NotFound(message);
    default:
      return Aborted(message);
  }
}

}  // namespace entrysync
