#include "fuzz_common.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/event_bus.h"
#include "base/hash.h"
#include "proto/batch.h"
#include "proto/convert.h"
#include "snapshot/snapshot.h"
#include "store/transaction_manager.h"
#include "sync/config.h"

namespace entrysync::fuzz {
namespace {

namespace pb = google::protobuf;

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint32_t GetU32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Deterministic serialization (map order, no unknown-field reordering
// surprises): the canonical form the round-trip property compares.
std::string Canonical(const pb::Message& m) {
  std::string out;
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

// Bytes fields that hold a uuid (16 bytes, required), an optional uuid
// (empty = nil) or a device id (32 bytes), by field name across the proto.
bool IsUuidField(const std::string& name) {
  static const std::set<std::string> kNames = {"owner", "uuid", "location", "library_id", "device_uuid"};
  return kNames.count(name) > 0;
}

void CheckUuidBytes(const std::string& b) {
  auto u = UuidFromWire(b, "field");
  Check(u.ok() == (b.size() == 16), "UuidFromWire accepts exactly 16 bytes");
  if (u.ok()) {
    Check(UuidToWire(*u) == b, "uuid round trip");
  } else {
    Check(u.status().code() == Code::kProtocol && !u.status().message().empty(), "bad uuid is Protocol");
  }
  auto o = OptionalUuidFromWire(b, "field");
  Check(o.ok() == (b.empty() || b.size() == 16), "OptionalUuidFromWire accepts 0 or 16 bytes");
  if (o.ok()) {
    const std::string back = OptionalUuidToWire(*o);
    Check(back == b || (back.empty() && o->is_nil()), "optional uuid round trip");
  }
}

void CheckDeviceIdBytes(const std::string& b) {
  auto id = DeviceIdFromWire(b, "device_id");
  Check(id.ok() == (b.size() == 32), "DeviceIdFromWire accepts exactly 32 bytes");
  if (id.ok()) Check(DeviceIdToWire(*id) == b, "device id round trip");
}

void CheckEnum(const pb::EnumDescriptor* type, int value) {
  if (type == wire::Codec_descriptor()) {
    auto c = CodecFromWire(value);
    Check(c.ok() == wire::Codec_IsValid(value), "CodecFromWire accepts exactly the proto's codecs");
    if (c.ok()) Check(CodecToWire(*c) == value, "codec round trip");
    if (!c.ok()) Check(c.status().code() == Code::kProtocol, "unknown codec is Protocol");
  } else if (type == wire::Strategy_descriptor()) {
    Strategy s = StrategyFromWire(value);
    Check(s == (wire::Strategy_IsValid(value) ? static_cast<Strategy>(value) : Strategy::kAuto),
          "StrategyFromWire maps the proto's strategies to themselves, others to auto");
    Check(std::string(StrategyName(s)) != "unknown", "StrategyFromWire yields a named strategy");
  }
  // EntryKind (in EntryFromWire), ErrorCode (ErrorFromWire) and Model (the
  // batch openers) are checked with their messages.
}

void CheckEntry(const wire::Entry& e) {
  auto r = EntryFromWire(e);
  const bool valid = e.uuid().size() == 16 && (e.parent().empty() || e.parent().size() == 16) &&
                     e.location().size() == 16 && e.kind() >= 0 && e.kind() <= 2;
  Check(r.ok() == valid, "EntryFromWire accepts exactly well-formed entries");
  if (!r.ok()) {
    Check(r.status().code() == Code::kProtocol, "a malformed entry is Protocol");
    return;
  }
  wire::Entry back;
  EntryToWire(*r, &back);
  auto again = EntryFromWire(back);
  Check(again.ok() && *again == *r, "entry round trip");
}

void CheckLocation(const wire::Location& l) {
  auto r = LocationFromWire(l);
  Check(r.ok() == (l.uuid().size() == 16), "LocationFromWire accepts exactly 16-byte uuids");
  if (!r.ok()) return;
  wire::Location back;
  LocationToWire(*r, &back);
  auto again = LocationFromWire(back);
  Check(again.ok() && *again == *r, "location round trip");
}

void CheckError(const wire::Error& e) {
  Status s = ErrorFromWire(e, "fuzz");
  Check(!s.ok(), "ErrorFromWire is never OK");
  Check(s.message().rfind("peer fuzz: ", 0) == 0, "ErrorFromWire names the peer");
  wire::Error back = ErrorToWire(s, e.request_id());
  Check(back.request_id() == e.request_id() && back.message() == s.message(),
        "ErrorToWire keeps the message");
  Check(wire::ErrorCode_IsValid(back.code()) && back.code() != wire::ERROR_UNSPECIFIED,
        "ErrorToWire sends a known code");
  switch (e.code()) {
    case wire::ERROR_PROTOCOL:
    case wire::ERROR_CORRUPTION:
    case wire::ERROR_NOT_FOUND:
    case wire::ERROR_NOT_PAIRED:
      Check(back.code() == e.code(), "error code round trip");
      break;
    default:
      break;
  }
}

void CheckBatch(const wire::StateBatch& b) {
  BatchLimits limits;
  limits.max_uncompressed_bytes = 1 << 20;
  limits.max_records = 10000;
  auto entries = OpenEntryBatch(b, limits);
  auto locations = OpenLocationBatch(b, limits);
  Check(!(entries.ok() && locations.ok()), "a batch is never of both models");
  if (entries.ok()) Check(entries->size() == b.record_count(), "opened entry batch has record_count rows");
  if (locations.ok())
    Check(locations->size() == b.record_count(), "opened location batch has record_count rows");
}

// Every field of `m`, recursively, through the conversion that reads it.
void Walk(const pb::Message& m, int depth) {
  if (depth > 8) return;
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  if (d == wire::Entry::descriptor()) CheckEntry(static_cast<const wire::Entry&>(m));
  if (d == wire::Location::descriptor()) CheckLocation(static_cast<const wire::Location&>(m));
  if (d == wire::Error::descriptor()) CheckError(static_cast<const wire::Error&>(m));
  if (d == wire::StateBatch::descriptor()) CheckBatch(static_cast<const wire::StateBatch&>(m));
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
    for (int k = 0; k < n; ++k) {
      switch (f->type()) {
        case pb::FieldDescriptor::TYPE_BYTES: {
          std::string b = f->is_repeated() ? r->GetRepeatedString(m, f, k) : r->GetString(m, f);
          if (IsUuidField(f->name()) || f->name() == "parent") CheckUuidBytes(b);
          if (f->name() == "device_id") CheckDeviceIdBytes(b);
          break;
        }
        case pb::FieldDescriptor::TYPE_ENUM:
          CheckEnum(f->enum_type(),
                    f->is_repeated() ? r->GetRepeatedEnumValue(m, f, k) : r->GetEnumValue(m, f));
          break;
        case pb::FieldDescriptor::TYPE_MESSAGE:
          if (f->is_repeated()) {
            Walk(r->GetRepeatedMessage(m, f, k), depth + 1);
          } else if (r->HasField(m, f)) {
            Walk(r->GetMessage(m, f), depth + 1);
          }
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace

void Check(bool cond, const char* what) {
  if (cond) return;
  std::fprintf(stderr, "fuzz check failed: %s\n", what);
  std::abort();
}

const std::vector<MessageType>& KnownMessageTypes() {
  static const std::vector<MessageType> types = [] {
    std::vector<MessageType> v;
    for (int t = 0; t < 256; ++t)
      if (IsKnownMessageType(static_cast<uint8_t>(t))) v.push_back(static_cast<MessageType>(t));
    Check(!v.empty(), "the frame decoder knows some message type");
    for (MessageType t : v) (void)NewMessage(t);  // every type has its message
    return v;
  }();
  return types;
}

MessageType AnyMessageType(uint8_t type) {
  if (IsKnownMessageType(type)) return static_cast<MessageType>(type);
  const auto& types = KnownMessageTypes();
  return types[type % types.size()];
}

std::unique_ptr<pb::Message> NewMessage(MessageType type) {
  const std::string name = "entrysync.wire." + MessageTypeName(type);
  const pb::Descriptor* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(name);
  if (d == nullptr) {
    std::fprintf(stderr, "fuzz: frame type %u has no message %s in entrysync.proto\n",
                 static_cast<unsigned>(type), name.c_str());
    std::abort();
  }
  return std::unique_ptr<pb::Message>(pb::MessageFactory::generated_factory()->GetPrototype(d)->New());
}

std::string FrameOf(uint8_t type, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + kFrameOverhead);
  PutU32(&out, static_cast<uint32_t>(payload.size() + 5));
  out.push_back(static_cast<char>(type));
  out.append(payload);
  PutU32(&out, Crc32(out.data() + 4, out.size() - 4));
  return out;
}

void FixFrameChecksums(uint8_t* stream, size_t size) {
  size_t pos = 0;
  while (size - pos >= 4) {
    const uint64_t len = GetU32(stream + pos);
    if (len < 5 || len > size - pos - 4) return;
    uint8_t* body = stream + pos + 4;
    const uint32_t crc = Crc32(body, len - 4);
    for (int i = 0; i < 4; ++i) body[len - 4 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
    pos += 4 + len;
  }
}

void CheckFrame(const Frame& frame) {
  std::unique_ptr<pb::Message> m = NewMessage(frame.type);
  Status parsed = ParsePayload(frame, m.get());
  if (!parsed.ok()) {
    Check(parsed.code() == Code::kCorruption, "an undecodable payload is Corruption");
    return;
  }
  // What parsed serializes canonically: parse(canonical) is canonical again.
  const std::string canonical = Canonical(*m);
  std::unique_ptr<pb::Message> again = NewMessage(frame.type);
  Check(again->ParseFromString(canonical) && Canonical(*again) == canonical, "canonical re-serialization");
  Walk(*m, 0);
}

Uuid LibraryId() { return *Uuid::Parse("0190f000-0000-7000-8000-00000000f022"); }
// A device's owner uuid is derived from its key (types.h: OwnerUuidOf).
Uuid BetaUuid() { return OwnerUuidOf(BetaId()); }
Uuid AlphaUuid() { return OwnerUuidOf(AlphaId()); }
Epoch BetaEpoch() { return Epoch(0xbe7abe7abe7abe7aULL); }
Epoch AlphaEpoch() { return Epoch(0xa1fa0a1fa0a1fa0aULL); }

DeviceId BetaId() {
  DeviceId id;
  id.bytes.fill(0xbe);
  return id;
}

DeviceId AlphaId() {
  DeviceId id;
  id.bytes.fill(0xa1);
  return id;
}

Uuid DeviceLocationUuid(const Uuid& device) {
  Uuid u = device;
  u.bytes[8] ^= 0x10;
  return u;
}

Uuid DeviceEntryUuid(const Uuid& device, int i) {
  Uuid u = device;  // byte 15 stays the device's own: devices never collide
  u.bytes[8] ^= 0x20;
  u.bytes[12] = static_cast<uint8_t>(i >> 8);
  u.bytes[13] = static_cast<uint8_t>(i);
  return u;
}

Result<std::unique_ptr<Library>> MakeDeviceLibrary(const std::string& dir, const std::string& name,
                                                   const Uuid& uuid, const DeviceId& id, Epoch epoch,
                                                   int entries) {
  ES_ASSIGN_OR_RETURN(auto lib, Library::Create(dir, name, LibraryId()));
  ES_RETURN_IF_ERROR(lib->SetLocalDeviceId(id));
  if (uuid != OwnerUuidOf(id)) return InvalidArgument("a device's uuid is derived from its id");
  // Library::Create draws the epoch; a harness needs it fixed, so it sets it
  // before anything refers to it.
  ES_ASSIGN_OR_RETURN(store::Stmt dev, lib->db().Prepare("UPDATE device SET epoch = ? WHERE id = ?"));
  dev.Bind(1, static_cast<int64_t>(epoch.value())).Bind(2, lib->local_device().value());
  ES_RETURN_IF_ERROR(dev.Run());
  if (entries == 0) return lib;
  EventBus bus;
  TransactionManager tm(*lib, bus);
  ES_ASSIGN_OR_RETURN(LocationInfo loc, tm.AddLocation("/data", "data"));
  const Uuid loc_uuid = DeviceLocationUuid(uuid);
  {
    // In a Transaction: its commit folds the digest's change (store/digest.h).
    store::Transaction txn(lib->db());
    ES_RETURN_IF_ERROR(txn.Begin());
    ES_ASSIGN_OR_RETURN(store::Stmt fix, lib->db().Prepare("UPDATE location SET uuid = ? WHERE id = ?"));
    fix.Bind(1, loc_uuid).Bind(2, loc.id.value());
    ES_RETURN_IF_ERROR(fix.Run());
    ES_RETURN_IF_ERROR(txn.Commit());
  }
  loc.record.uuid = loc_uuid;
  std::vector<EntryRecord> rows(entries);
  for (int i = 0; i < entries; ++i) {
    EntryRecord& e = rows[i];
    e.uuid = DeviceEntryUuid(uuid, i);
    e.parent = i == 0 ? Uuid::Nil() : rows[0].uuid;
    e.location = loc_uuid;
    e.name = i == 0 ? "data" : "file-" + std::to_string(i) + ".txt";
    e.extension = i == 0 ? "" : "txt";
    e.kind = i == 0 ? EntryKind::kDir : EntryKind::kFile;
    e.size = static_cast<uint64_t>(i) * 100;
    e.inode = static_cast<uint64_t>(i) + 1000;
    e.modified_ns = 1'700'000'000'000'000'000 + i;
    e.created_ns = e.modified_ns;
    e.accessed_ns = e.modified_ns;
  }
  ES_RETURN_IF_ERROR(tm.CommitBulkEntries(loc, rows).status());
  return lib;
}

Result<std::string> SmallSnapshot(Library& lib, const std::string& path) {
  ES_RETURN_IF_ERROR(ExportSnapshot(lib, lib.local_device(), path).status());
  sqlite3* db = nullptr;
  const bool shrunk =
      sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
      sqlite3_exec(db, "PRAGMA page_size = 512; VACUUM;", nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(db);
  if (!shrunk) return Internal("cannot rewrite " + path + " with small pages");
  ES_RETURN_IF_ERROR(InspectSnapshot(path).status());
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::string ScratchRoot() {
  if (::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return std::filesystem::temp_directory_path().string();
}

}  // namespace entrysync::fuzz
