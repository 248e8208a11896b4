#include "proto/convert.h"

#include <cstring>

namespace entrysync {

std::string UuidToWire(const Uuid& uuid) {
  return std::string(reinterpret_cast<const char*>(uuid.bytes.data()), uuid.bytes.size());
}

Result<Uuid> UuidFromWire(std::string_view bytes, std::string_view field) {
  if (bytes.size() != 16) {
    return ProtocolError(std::string(field) + ": uuid of " + std::to_string(bytes.size()) +
                         " bytes");
  }
  return Uuid::FromBytes(bytes.data());
}

Result<Uuid> OptionalUuidFromWire(std::string_view bytes, std::string_view field) {
  if (bytes.empty()) return Uuid::Nil();
  return UuidFromWire(bytes, field);
}

std::string OptionalUuidToWire(const Uuid& uuid) {
  return uuid.is_nil() ? std::string() : UuidToWire(uuid);
}

std::string DeviceIdToWire(const DeviceId& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

Result<DeviceId> DeviceIdFromWire(std::string_view bytes, std::string_view field) {
  if (bytes.size() != 32) {
    return ProtocolError(std::string(field) + ": device id of " + std::to_string(bytes.size()) +
                         " bytes");
  }
  DeviceId id;
  std::memcpy(id.bytes.data(), bytes.data(), 32);
  return id;
}

wire::Codec CodecToWire(Codec codec) { return static_cast<wire::Codec>(codec); }

Result<Codec> CodecFromWire(int codec) {
  switch (codec) {
    case wire::CODEC_NONE: return Codec::kNone;
    case wire::CODEC_ZSTD: return Codec::kZstd;
    case wire::CODEC_GZIP: return Codec::kGzip;
    default: return ProtocolError("unknown codec " + std::to_string(codec));
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

}  // namespace entrysync
