// What the libFuzzer harnesses in fuzz/ share: typed reads from the fuzz
// input, frames with correct checksums, the table of message types, the
// checks every decoded message goes through, and the fixed identities of
// the devices the session and snapshot harnesses simulate.
//
// Message types are enumerated, never listed: KnownMessageTypes() asks
// IsKnownMessageType() for every byte value and NewMessage() finds each
// type's protobuf class by the name MessageTypeName() gives it. A type
// added to proto/frame.h (and entrysync.proto) is fuzzed with no edit here.
//
// Thread safety: none needed; a fuzzer runs one input at a time.
#pragma once

#include <google/protobuf/message.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "entrysync/status.h"
#include "entrysync/types.h"
#include "proto/frame.h"
#include "store/library.h"

namespace entrysync::fuzz {

// Aborts (a finding for libFuzzer) with `what` on stderr unless `cond`.
void Check(bool cond, const char* what);

// Pulls typed values out of the fuzz input; zeros once it is exhausted.
class Source {
 public:
  explicit Source(std::string_view s) : s_(s) {}
  bool empty() const { return s_.empty(); }
  size_t size() const { return s_.size(); }
  uint8_t U8() {
    if (s_.empty()) return 0;
    auto v = static_cast<uint8_t>(s_[0]);
    s_.remove_prefix(1);
    return v;
  }
  uint16_t U16() { return static_cast<uint16_t>((U8() << 8) | U8()); }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | U8();
    return v;
  }
  // At most `n` bytes (fewer when the input ends).
  std::string_view Bytes(size_t n) {
    std::string_view out = s_.substr(0, std::min(n, s_.size()));
    s_.remove_prefix(out.size());
    return out;
  }
  // A length byte (mod max + 1), then that many bytes.
  std::string Str(size_t max) { return std::string(Bytes(U8() % (max + 1))); }
  std::string_view Rest() { return Bytes(s_.size()); }

 private:
  std::string_view s_;
};

// Every type byte the frame decoder accepts, in increasing order.
const std::vector<MessageType>& KnownMessageTypes();

// `type` when the decoder accepts it, else a known type chosen by it (so
// an input's first byte always names a type, and a known byte keeps its
// meaning when types are appended).
MessageType AnyMessageType(uint8_t type);

// A new, empty message of the class that frames of `type` carry: the
// message of entrysync.proto named MessageTypeName(type). Aborts when the
// proto has none (a type added to frame.h without its message).
std::unique_ptr<google::protobuf::Message> NewMessage(MessageType type);

// The wire bytes of one frame: length, type byte, `payload` as given, and
// a correct CRC-32.
std::string FrameOf(uint8_t type, std::string_view payload);

// Recomputes the CRC of every complete frame in `stream` (a sequence of
// frames, possibly cut short) in place, so that mutated bytes still pass the
// checksum and reach the message parsers.
void FixFrameChecksums(uint8_t* stream, size_t size);

// Parses `frame`'s payload as its type's message and puts everything in it
// through the wire-to-internal conversions of proto/convert.h (uuids,
// device ids, codecs, strategies, entries, locations, errors) and the batch
// openers, checking their contracts: what converts converts back to the
// same bytes, what is refused is refused with Protocol, and a parsed
// message serializes canonically. Aborts on a broken contract.
void CheckFrame(const Frame& frame);

// Fixed identities of the simulated devices (session_fuzzer, snapshot_fuzzer
// and the seeds fuzz_seeds writes for them): the library, this device
// ("beta", whose session is fuzzed) and its paired peer ("alpha", whose
// bytes the fuzzer writes).
Uuid LibraryId();
Uuid BetaUuid();
DeviceId BetaId();
Epoch BetaEpoch();
Uuid AlphaUuid();
DeviceId AlphaId();
Epoch AlphaEpoch();

// Creates a library of LibraryId() in `dir` (which must not hold one) whose
// own device is `name` with `uuid`, `id` and `epoch`, holding `entries`
// entries of its own (a folder and its files, uuids derived from `uuid`) in
// one location at /data. Deterministic: the same arguments make the same
// rows, so seeds written by fuzz_seeds name rows the harnesses hold.
Result<std::unique_ptr<Library>> MakeDeviceLibrary(const std::string& dir, const std::string& name,
                                                   const Uuid& uuid, const DeviceId& id, Epoch epoch,
                                                   int entries);

// A snapshot of `lib`'s own rows written at `path` (ExportSnapshot), then
// rewritten with 512-byte pages (small inputs for a fuzzer; readers take any
// page size). Returns the file's bytes; fails when it does not inspect.
Result<std::string> SmallSnapshot(Library& lib, const std::string& path);

// The uuids of the rows MakeDeviceLibrary makes for device `device`: its
// location, and its entry number `i` (0 = the location's root folder).
Uuid DeviceLocationUuid(const Uuid& device);
Uuid DeviceEntryUuid(const Uuid& device, int i);

// A folder for scratch files: /dev/shm when it is writable (SQLite on
// tmpfs: no disk I/O per input), else the system's temporary folder.
std::string ScratchRoot();

}  // namespace entrysync::fuzz
