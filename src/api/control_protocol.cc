#include "api/control_protocol.h"

#include <nlohmann/json.hpp>

namespace entrysync {

using json = nlohmann::json;

namespace {

constexpr ControlOp kOps[] = {ControlOp::kAddLocation, ControlOp::kRescan, ControlOp::kPair,
                              ControlOp::kUnpair, ControlOp::kImportSnapshot};

std::optional<Code> ParseCode(const std::string& name) {
  for (int c = static_cast<int>(Code::kOk); c <= static_cast<int>(Code::kInternal); ++c)
    if (name == CodeName(static_cast<Code>(c))) return static_cast<Code>(c);
  return std::nullopt;
}

// Argument `key` of a request: a string, or InvalidArgument naming it.
Result<std::string> Text(const json& j, const char* key, ControlOp op) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string())
    return InvalidArgument(std::string(ControlOpName(op)) + " needs \"" + key + "\" (a string)");
  return it->get<std::string>();
}

template <class Id>
Result<Id> IdArg(const json& j, const char* key, ControlOp op) {
  ES_ASSIGN_OR_RETURN(std::string text, Text(j, key, op));
  auto id = Id::Parse(text);
  if (!id) return InvalidArgument(std::string(ControlOpName(op)) + ": \"" + key + "\" is not an id: " + text);
  return *id;
}

// Reads the arguments of `r.op` from `j` into `r`.
Status DecodeArgs(const json& j, ControlRequest& r) {
  const ControlOp op = r.op;
  auto text = [&](const char* key, std::string& out) -> Status {
    ES_ASSIGN_OR_RETURN(out, Text(j, key, op));
    return Status::Ok();
  };
  auto device = [&]() -> Status {
    ES_ASSIGN_OR_RETURN(r.device, IdArg<DeviceId>(j, "device_id", op));
    return Status::Ok();
  };
  switch (op) {
    case ControlOp::kAddLocation:
      return text("path", r.path);
    case ControlOp::kRescan: {
      ES_ASSIGN_OR_RETURN(r.location, IdArg<Uuid>(j, "location", op));
      return Status::Ok();
    }
    case ControlOp::kPair:
      ES_RETURN_IF_ERROR(text("name", r.name));
      ES_RETURN_IF_ERROR(device());
      return j.contains("address") ? text("address", r.address) : Status::Ok();
    case ControlOp::kUnpair:
      if (j.contains("purge")) {
        if (!j["purge"].is_boolean())
          return InvalidArgument(std::string(ControlOpName(op)) + ": 'purge' must be true or false");
        r.purge = j["purge"].get<bool>();
      }
      return device();
    case ControlOp::kImportSnapshot: {
      ES_RETURN_IF_ERROR(text("path", r.path));
      if (!j.contains("sha256")) return Status::Ok();
      std::string sha;
      ES_RETURN_IF_ERROR(text("sha256", sha));
      r.sha256 = sha;
      return Status::Ok();
    }
  }
  return Status::Ok();
}

json LocationJson(const Location& l) {
  return {{"uuid", l.uuid.ToString()},
          {"owner", l.owner.ToString()},
          {"owner_name", l.owner_name},
          {"root_path", l.root_path},
          {"name", l.name}};
}

Location LocationOf(const json& j) {
  return Location{.uuid = Uuid::Parse(j.at("uuid").get<std::string>()).value(),
                  .owner = Uuid::Parse(j.at("owner").get<std::string>()).value(),
                  .owner_name = j.at("owner_name").get<std::string>(),
                  .root_path = j.at("root_path").get<std::string>(),
                  .name = j.at("name").get<std::string>()};
}

json ValueJson(const ScanReport& r) {
  return {{"location", LocationJson(r.location)},
          {"entries", r.entries},
          {"added", r.added},
          {"modified", r.modified},
          {"deleted", r.deleted},
          {"unchanged", r.unchanged},
          {"bulk", r.bulk},
          {"max_seq", r.max_seq.value()},
          {"walk_seconds", r.walk_seconds},
          {"commit_seconds", r.commit_seconds},
          {"warnings", r.warnings}};
}

json ValueJson(const Device& d) {
  return {{"uuid", d.uuid.ToString()},
          {"name", d.name},
          {"device_id", d.device_id ? json(d.device_id->ToString()) : json(nullptr)},
          {"address", d.address},
          {"is_local", d.is_local},
          {"paired", d.paired}};
}

json ValueJson(const SnapshotImport& s) {
  const SnapshotSummary& m = s.snapshot;
  return {{"snapshot",
           {{"owner", m.owner.ToString()},
            {"owner_name", m.owner_name},
            {"epoch", m.epoch.value()},
            {"max_seq", m.max_seq.value()},
            {"entries", m.entries},
            {"locations", m.locations},
            {"size_bytes", m.size_bytes},
            {"sha256", m.sha256},
            {"library_id", m.library_id.ToString()},
            {"exported_by", m.exported_by.ToString()}}},
          {"rows_written", s.rows_written},
          {"rows_replaced", s.rows_replaced},
          {"seconds", s.seconds}};
}

json ValueJson(std::monostate) { return json::object(); }

ScanReport ScanReportOf(const json& j) {
  return ScanReport{.location = LocationOf(j.at("location")),
                    .entries = j.at("entries").get<uint64_t>(),
                    .added = j.at("added").get<uint64_t>(),
                    .modified = j.at("modified").get<uint64_t>(),
                    .deleted = j.at("deleted").get<uint64_t>(),
                    .unchanged = j.at("unchanged").get<uint64_t>(),
                    .bulk = j.at("bulk").get<bool>(),
                    .max_seq = Seq(j.at("max_seq").get<int64_t>()),
                    .walk_seconds = j.at("walk_seconds").get<double>(),
                    .commit_seconds = j.at("commit_seconds").get<double>(),
                    .warnings = j.at("warnings").get<std::vector<std::string>>()};
}

Device DeviceOf(const json& j) {
  Device d{.uuid = Uuid::Parse(j.at("uuid").get<std::string>()).value(),
           .name = j.at("name").get<std::string>(),
           .device_id = std::nullopt,
           .address = j.at("address").get<std::string>(),
           .is_local = j.at("is_local").get<bool>(),
           .paired = j.at("paired").get<bool>()};
  if (!j.at("device_id").is_null())
    d.device_id = DeviceId::Parse(j.at("device_id").get<std::string>()).value();
  return d;
}

SnapshotImport SnapshotImportOf(const json& j) {
  const json& m = j.at("snapshot");
  SnapshotSummary s{.owner = Uuid::Parse(m.at("owner").get<std::string>()).value(),
                    .owner_name = m.at("owner_name").get<std::string>(),
                    .epoch = Epoch(m.at("epoch").get<uint64_t>()),
                    .max_seq = Seq(m.at("max_seq").get<int64_t>()),
                    .entries = m.at("entries").get<uint64_t>(),
                    .locations = m.at("locations").get<uint64_t>(),
                    .size_bytes = m.at("size_bytes").get<uint64_t>(),
                    .sha256 = m.at("sha256").get<std::string>(),
                    .library_id = Uuid::Parse(m.at("library_id").get<std::string>()).value(),
                    .exported_by = Uuid::Parse(m.at("exported_by").get<std::string>()).value()};
  return SnapshotImport{.snapshot = s,
                        .rows_written = j.at("rows_written").get<uint64_t>(),
                        .rows_replaced = j.at("rows_replaced").get<uint64_t>(),
                        .seconds = j.at("seconds").get<double>()};
}

// A result's value for `op`. Throws (json or std::bad_optional_access) when
// the line does not hold one.
ControlValue ValueOf(const json& j, ControlOp op) {
  switch (op) {
    case ControlOp::kAddLocation:
    case ControlOp::kRescan:
      return ScanReportOf(j);
    case ControlOp::kPair:
      return DeviceOf(j);
    case ControlOp::kImportSnapshot:
      return SnapshotImportOf(j);
    case ControlOp::kUnpair:
      break;
  }
  return std::monostate{};
}

}  // namespace

const char* ControlOpName(ControlOp op) {
  switch (op) {
    case ControlOp::kAddLocation:
      return "add_location";
    case ControlOp::kRescan:
      return "rescan";
    case ControlOp::kPair:
      return "pair";
    case ControlOp::kUnpair:
      return "unpair";
    case ControlOp::kImportSnapshot:
      return "import_snapshot";
  }
  return "?";
}

ControlRequest AddLocationRequest(std::string path) {
  ControlRequest r;
  r.op = ControlOp::kAddLocation;
  r.path = std::move(path);
  return r;
}

ControlRequest RescanRequest(const Uuid& location) {
  ControlRequest r;
  r.op = ControlOp::kRescan;
  r.location = location;
  return r;
}

ControlRequest PairRequest(std::string name, const DeviceId& device, std::string address) {
  ControlRequest r;
  r.op = ControlOp::kPair;
  r.name = std::move(name);
  r.device = device;
  r.address = std::move(address);
  return r;
}

ControlRequest UnpairRequest(const DeviceId& device, bool purge) {
  ControlRequest r;
  r.op = ControlOp::kUnpair;
  r.device = device;
  r.purge = purge;
  return r;
}

ControlRequest ImportSnapshotRequest(std::string path, std::optional<std::string> sha256) {
  ControlRequest r;
  r.op = ControlOp::kImportSnapshot;
  r.path = std::move(path);
  r.sha256 = std::move(sha256);
  return r;
}

Result<std::string> EncodeRequest(const ControlRequest& r) {
  json j{{"op", ControlOpName(r.op)}};
  switch (r.op) {
    case ControlOp::kAddLocation:
      j["path"] = r.path;
      break;
    case ControlOp::kRescan:
      j["location"] = r.location.ToString();
      break;
    case ControlOp::kPair:
      j["name"] = r.name;
      j["device_id"] = r.device.ToString();
      j["address"] = r.address;
      break;
    case ControlOp::kUnpair:
      j["device_id"] = r.device.ToString();
      if (r.purge) j["purge"] = true;
      break;
    case ControlOp::kImportSnapshot:
      j["path"] = r.path;
      if (r.sha256) j["sha256"] = *r.sha256;
      break;
  }
  try {
    return j.dump() + "\n";
  } catch (const json::type_error&) {
    return InvalidArgument(std::string(ControlOpName(r.op)) + ": an argument is not UTF-8 text: " + r.path +
                           r.name);
  }
}

Result<ControlRequest> DecodeRequest(std::string_view line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("control request is not JSON");
  if (!j.is_object()) return InvalidArgument("control request is not a JSON object");
  auto op_it = j.find("op");
  if (op_it == j.end() || !op_it->is_string()) return InvalidArgument("control request has no \"op\"");
  ControlRequest r;
  const std::string op = op_it->get<std::string>();
  bool known = false;
  for (ControlOp o : kOps)
    if (op == ControlOpName(o)) r.op = o, known = true;
  if (!known) return InvalidArgument("unknown control op '" + op + "'");
  ES_RETURN_IF_ERROR(DecodeArgs(j, r));
  if ((r.op == ControlOp::kAddLocation || r.op == ControlOp::kImportSnapshot) &&
      (r.path.empty() || r.path.front() != '/'))
    return InvalidArgument(std::string(ControlOpName(r.op)) + ": \"path\" must be absolute: " + r.path);
  return r;
}

ControlReply ProgressReply(uint64_t entries) {
  return ControlReply{.kind = ControlReply::Kind::kProgress, .entries = entries, .value = {}, .error = {}};
}

ControlReply ResultReply(ControlValue value) {
  return ControlReply{
      .kind = ControlReply::Kind::kResult, .entries = 0, .value = std::move(value), .error = {}};
}

ControlReply ErrorReply(Status error) {
  return ControlReply{
      .kind = ControlReply::Kind::kError, .entries = 0, .value = {}, .error = std::move(error)};
}

std::string EncodeReply(const ControlReply& r) {
  json j;
  switch (r.kind) {
    case ControlReply::Kind::kProgress:
      j["progress"] = {{"entries", r.entries}};
      break;
    case ControlReply::Kind::kResult:
      j["result"] = std::visit([](const auto& v) { return ValueJson(v); }, r.value);
      break;
    case ControlReply::Kind::kError:
      j["error"] = {{"code", CodeName(r.error.code())}, {"message", r.error.message()}};
      break;
  }
  // Paths need not be UTF-8: replace what is not rather than throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<ControlReply> DecodeReply(std::string_view line, ControlOp op) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Corruption("the daemon's control reply is not a JSON object");
  try {
    if (j.contains("progress")) return ProgressReply(j["progress"].at("entries").get<uint64_t>());
    if (j.contains("result")) return ResultReply(ValueOf(j["result"], op));
    if (j.contains("error")) {
      auto code = ParseCode(j["error"].at("code").get<std::string>());
      std::string message = j["error"].at("message").get<std::string>();
      if (!code || *code == Code::kOk)
        return Corruption("the daemon's control reply has an unknown error code");
      return ErrorReply(Status(*code, message));
    }
  } catch (const std::exception& e) {
    return Corruption(std::string("the daemon's reply to ") + ControlOpName(op) +
                      " is malformed: " + e.what());
  }
  return Corruption("the daemon's control reply is neither progress, result nor error");
}

}  // namespace entrysync
