#include "proto/frame.h"

#include <google/protobuf/message_lite.h>

#include <climits>
#include <exception>

#include "base/hash.h"

namespace entrysync {
namespace {

constexpr size_t kMinFrameBytes = 5;  // type + CRC, empty payload

void PutU32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

}  // namespace

bool IsKnownMessageType(uint8_t type) {
  return type >= static_cast<uint8_t>(MessageType::kHello) &&
         type <= static_cast<uint8_t>(MessageType::kSnapshotChunk);
}

std::string MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kHello:
      return "Hello";
    case MessageType::kStateChange:
      return "StateChange";
    case MessageType::kStateBatch:
      return "StateBatch";
    case MessageType::kStateRequest:
      return "StateRequest";
    case MessageType::kCredit:
      return "Credit";
    case MessageType::kBulkIndexComplete:
      return "BulkIndexComplete";
    case MessageType::kCurrent:
      return "Current";
    case MessageType::kPing:
      return "Ping";
    case MessageType::kPong:
      return "Pong";
    case MessageType::kError:
      return "Error";
    case MessageType::kSnapshotOffer:
      return "SnapshotOffer";
    case MessageType::kSnapshotRequest:
      return "SnapshotRequest";
    case MessageType::kSnapshotChunk:
      return "SnapshotChunk";
  }
  return "type " + std::to_string(static_cast<unsigned>(type));
}

std::string EncodeFrame(MessageType type, const google::protobuf::MessageLite& message) {
  std::string out;
  const size_t payload_size = message.ByteSizeLong();
  if (payload_size > INT_MAX - kFrameOverhead) return out;
  out.reserve(kFrameOverhead + payload_size);
  PutU32(&out, static_cast<uint32_t>(1 + payload_size + 4));
  out.push_back(static_cast<char>(type));
  try {
    if (!message.AppendToString(&out)) return std::string();
  } catch (const std::exception&) {
    return std::string();
  }
  const uint32_t crc = Crc32(out.data() + 4, out.size() - 4);
  PutU32(&out, crc);
  return out;
}

void FrameDecoder::Feed(std::string_view bytes) {
  if (!error_.ok()) return;
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= buf_.size() / 2)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes.data(), bytes.size());
}

Status FrameDecoder::Fail(Status s) {
  error_ = std::move(s);
  buf_.clear();
  buf_.shrink_to_fit();
  pos_ = 0;
  return error_;
}

Result<std::optional<Frame>> FrameDecoder::Next() {
  if (!error_.ok()) return error_;
  const size_t avail = buf_.size() - pos_;
  if (avail < 4) return std::optional<Frame>();
  const char* p = buf_.data() + pos_;
  const uint32_t len = GetU32(p);
  if (len > max_frame_bytes_) {
    return Fail(ProtocolError("frame of " + std::to_string(len) + " bytes exceeds limit " +
                              std::to_string(max_frame_bytes_)));
  }
  if (len < kMinFrameBytes) {
    return Fail(ProtocolError("frame of " + std::to_string(len) + " bytes is shorter than the minimum 5"));
  }
  if (avail < 5) return std::optional<Frame>();
  const uint8_t type = static_cast<uint8_t>(p[4]);
  if (!IsKnownMessageType(type)) {
    return Fail(ProtocolError("unknown message type " + std::to_string(type)));
  }
  if (avail - 4 < len) return std::optional<Frame>();
  const uint32_t want = GetU32(p + 4 + len - 4);
  const uint32_t got = Crc32(p + 4, len - 4);
  if (want != got) {
    return Fail(Corruption("frame checksum mismatch (type " +
                           MessageTypeName(static_cast<MessageType>(type)) + ", " + std::to_string(len) +
                           " bytes)"));
  }
  Frame frame;
  frame.type = static_cast<MessageType>(type);
  frame.payload.assign(p + 5, len - 5);
  pos_ += 4 + size_t{len};
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return std::optional<Frame>(std::move(frame));
}

Status FrameDecoder::Finish() {
  if (!error_.ok()) return error_;
  const size_t avail = buf_.size() - pos_;
  if (avail == 0) return Status::Ok();
  std::string detail;
  if (avail < 4) {
    detail = "have " + std::to_string(avail) + " of 4 length bytes";
  } else {
    detail =
        "have " + std::to_string(avail - 4) + " of " + std::to_string(GetU32(buf_.data() + pos_)) + " bytes";
  }
  return Fail(Corruption("truncated: stream ended inside a frame (" + detail + ")"));
}

Status CheckFrameType(const Frame& frame, MessageType expected) {
  if (frame.type == expected) return Status::Ok();
  return ProtocolError("expected " + MessageTypeName(expected) + " frame, got " +
                       MessageTypeName(frame.type));
}

Status ParsePayload(const Frame& frame, google::protobuf::MessageLite* message) {
  bool ok = false;
  try {
    ok = frame.payload.size() <= INT_MAX &&
         message->ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()));
  } catch (const std::exception&) {
    ok = false;
  }
  if (!ok) {
    message->Clear();
    return Corruption("undecodable " + MessageTypeName(frame.type) + " payload (" +
                      std::to_string(frame.payload.size()) + " bytes)");
  }
  return Status::Ok();
}

}  // namespace entrysync
