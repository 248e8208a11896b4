// The control channel's messages: what a process sends the daemon that owns
// its library (LIBRARY/control.sock), and what the daemon answers. The
// format is written down in docs/control.md: newline-delimited JSON, one
// request per line; for each request zero or more progress lines, then one
// result or error line.
//
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "entrysync/info.h"
#include "entrysync/status.h"
#include "entrysync/types.h"

namespace entrysync {

// The longest request line the daemon reads (newline excluded); a longer one
// is refused and ends the connection.
inline constexpr size_t kMaxControlRequest = size_t{64} * 1024;
// The longest reply line a client reads (a ScanReport's warnings may be many).
inline constexpr size_t kMaxControlReply = size_t{16} * 1024 * 1024;

// The Engine write calls a daemon runs for another process.
enum class ControlOp { kAddLocation, kRescan, kPair, kUnpair, kImportSnapshot };
// "add_location", "rescan", "pair", "unpair", "import_snapshot".
const char* ControlOpName(ControlOp op);

struct ControlRequest {
  ControlOp op = ControlOp::kRescan;
  std::string path;                   // add_location, import_snapshot: absolute
  Uuid location;                      // rescan
  std::string name;                   // pair
  DeviceId device;                    // pair, unpair
  std::string address;                // pair ("" = none)
  std::optional<std::string> sha256;  // import_snapshot
  bool purge = false;                 // unpair: delete the device's rows too
};

// Requests of each kind.
ControlRequest AddLocationRequest(std::string path);
ControlRequest RescanRequest(const Uuid& location);
ControlRequest PairRequest(std::string name, const DeviceId& device, std::string address);
ControlRequest UnpairRequest(const DeviceId& device, bool purge = false);
ControlRequest ImportSnapshotRequest(std::string path, std::optional<std::string> sha256);

// One line, newline included. InvalidArgument when a text argument is not
// UTF-8 (JSON cannot carry it).
Result<std::string> EncodeRequest(const ControlRequest& request);
// `line` without its newline. InvalidArgument naming what is wrong: not
// JSON, not an object, an unknown "op", a missing or malformed argument.
Result<ControlRequest> DecodeRequest(std::string_view line);

// What a call returns: nothing (unpair), or the Engine call's value.
using ControlValue = std::variant<std::monostate, ScanReport, Device, SnapshotImport>;

// One reply line: progress (entries walked so far), or the final result or
// error.
struct ControlReply {
  enum class Kind { kProgress, kResult, kError };
  Kind kind = Kind::kResult;
  uint64_t entries = 0;  // kProgress
  ControlValue value;    // kResult
  Status error;          // kError: not OK
  bool final() const { return kind != Kind::kProgress; }
};

ControlReply ProgressReply(uint64_t entries);
ControlReply ResultReply(ControlValue value);
// REQUIRES: !error.ok().
ControlReply ErrorReply(Status error);

// One line, newline included; text that is not UTF-8 (a path) has its bad
// bytes replaced by U+FFFD.
std::string EncodeReply(const ControlReply& reply);
// `line` without its newline; `op` is the request's, which says what a
// result holds. Corruption naming what is wrong when the line is not a reply
// to `op`.
Result<ControlReply> DecodeReply(std::string_view line, ControlOp op);

}  // namespace entrysync
