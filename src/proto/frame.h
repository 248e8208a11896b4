// Frame codec: the unit every entrysync message travels in.
//
//   u32 big-endian L | u8 type | protobuf payload | u32 big-endian CRC-32
//
// L counts every byte after the length field (type + payload + CRC), so
// L >= 5. The CRC-32 (zlib polynomial, base/hash.h) covers type + payload.
// See docs/wire-format.md for the full description.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "entrysync/status.h"
#include "proto/entrysync.pb.h"

namespace google::protobuf {
class MessageLite;
}

namespace entrysync {

// The type byte of a frame. Values are part of the wire format: never
// renumber, only append.
enum class MessageType : uint8_t {
  kHello = 1,
  kStateChange = 2,
  kStateBatch = 3,
  kStateRequest = 4,
  kCredit = 5,
  kBulkIndexComplete = 6,
  kCurrent = 7,  // "SyncDone": you have everything up to seq N
  kPing = 8,
  kPong = 9,
  kError = 10,
  kSnapshotOffer = 11,
  kSnapshotRequest = 12,
  kSnapshotChunk = 13,
};

// True for the values listed in MessageType.
bool IsKnownMessageType(uint8_t type);
// "Hello", "StateBatch", ...; "type 77" for unknown values.
std::string MessageTypeName(MessageType type);

// Bytes of a frame besides the payload: length (4) + type (1) + CRC (4).
inline constexpr size_t kFrameOverhead = 9;
// Default limit on L (the bytes after the length field).
inline constexpr size_t kDefaultMaxFrameBytes = 8 << 20;

// Maps each wire message class to its type byte.
template <class M>
struct MessageTypeOf;
#define ES_FRAME_MESSAGE(Msg)                                 \
  template <>                                                 \
  struct MessageTypeOf<wire::Msg> {                           \
    static constexpr MessageType value = MessageType::k##Msg; \
  }
ES_FRAME_MESSAGE(Hello);
ES_FRAME_MESSAGE(StateChange);
ES_FRAME_MESSAGE(StateBatch);
ES_FRAME_MESSAGE(StateRequest);
ES_FRAME_MESSAGE(Credit);
ES_FRAME_MESSAGE(BulkIndexComplete);
ES_FRAME_MESSAGE(Current);
ES_FRAME_MESSAGE(Ping);
ES_FRAME_MESSAGE(Pong);
ES_FRAME_MESSAGE(Error);
ES_FRAME_MESSAGE(SnapshotOffer);
ES_FRAME_MESSAGE(SnapshotRequest);
ES_FRAME_MESSAGE(SnapshotChunk);
#undef ES_FRAME_MESSAGE

// One decoded frame: its type and the raw (still serialized) payload.
struct Frame {
  MessageType type = MessageType::kPing;
  std::string payload;
};

// Serializes `message` into a complete frame of type `type`.
// Never fails for messages produced by this program (protobuf refuses only
// messages over 2 GiB, which would exceed any frame limit; the result is then
// empty). The caller must not send frames larger than the peer's limit:
// check `size() - 4 <= limit` if a message may be large.
std::string EncodeFrame(MessageType type, const google::protobuf::MessageLite& message);

// Typed convenience: the type byte comes from the message class.
template <class M>
std::string EncodeFrame(const M& message) {
  return EncodeFrame(MessageTypeOf<M>::value, message);
}

// Incremental frame decoder: Feed() bytes as they arrive, then call Next()
// until it yields no frame.
//
// Errors are sticky: once Next() has returned an error, every later call
// returns the same error and Feed() discards its input. Error statuses:
//   Protocol   "frame of 9999999 bytes exceeds limit 8388608",
//              "frame of 3 bytes is shorter than the minimum 5",
//              "unknown message type 77"
//   Corruption "frame checksum mismatch" (type StateBatch, 1234 bytes)
//   Corruption "truncated: stream ended inside a frame (...)" from Finish().
// The length and the type are checked as soon as their bytes arrive, so a
// peer cannot make the decoder buffer a bad frame.
//
// Memory: buffers at most one frame plus whatever was fed beyond it.
// Not thread-safe; one decoder per connection direction.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame_bytes = kDefaultMaxFrameBytes) : max_frame_bytes_(max_frame_bytes) {}

  // Appends bytes (copied). Ignored once the decoder is in error.
  void Feed(std::string_view bytes);

  // The next complete frame, std::nullopt when more bytes are needed, or the
  // (sticky) error.
  Result<std::optional<Frame>> Next();

  // Call at end of stream: OK when no partial frame is buffered, else the
  // (sticky) Corruption "truncated: ..." error. Also returns an earlier error.
  Status Finish();

  // Bytes fed but not yet returned as frames.
  size_t buffered() const { return buf_.size() - pos_; }
  bool failed() const { return !error_.ok(); }

 private:
  Status Fail(Status s);

  size_t max_frame_bytes_;
  std::string buf_;
  size_t pos_ = 0;  // start of unconsumed bytes in buf_
  Status error_;
};

// Parses a frame's payload as message T.
// Fails with Protocol "expected Hello frame, got Ping" when the type differs
// and Corruption "undecodable StateBatch payload (123 bytes)" when protobuf
// rejects the bytes. Never throws.
template <class M>
Result<M> ParseMessage(const Frame& frame);

// Untyped form: parses into `*message` (cleared first) without checking the
// frame type. Same Corruption error as above.
Status ParsePayload(const Frame& frame, google::protobuf::MessageLite* message);

// ---- implementation details ----

Status CheckFrameType(const Frame& frame, MessageType expected);

template <class M>
Result<M> ParseMessage(const Frame& frame) {
  ES_RETURN_IF_ERROR(CheckFrameType(frame, MessageTypeOf<M>::value));
  M message;
  ES_RETURN_IF_ERROR(ParsePayload(frame, &message));
  return message;
}

}  // namespace entrysync
