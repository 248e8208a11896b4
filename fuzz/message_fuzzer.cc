// libFuzzer harness for every message type's payload: the protobuf parser
// and the conversions into internal records (proto/convert.h: uuids, device
// ids, codecs, strategies, entry kinds, error codes; Entry, Location, Error;
// the StateBatch openers), Hello and the requests included.
//
// Input: byte 0 is the frame type (a byte the decoder does not know picks a
// known type, fuzz::AnyMessageType), the rest the payload. The harness
// frames it itself, with a correct length and CRC-32, so every input reaches
// the parser of its type, whatever the mutation did: the type comes from the
// table of known types, so a type appended to proto/frame.h is fuzzed too.
// Properties: the correctly framed input decodes to exactly that frame;
// then fuzz::CheckFrame's contracts (what converts round-trips, what is
// refused is refused with Protocol, canonical re-serialization).
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.h"
#include "proto/frame.h"

namespace es = entrysync;
using es::fuzz::Check;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  (void)es::fuzz::KnownMessageTypes();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const es::MessageType type = es::fuzz::AnyMessageType(data[0]);
  const std::string_view payload(reinterpret_cast<const char*>(data) + 1, size - 1);

  es::FrameDecoder decoder;
  decoder.Feed(es::fuzz::FrameOf(static_cast<uint8_t>(type), payload));
  auto next = decoder.Next();
  Check(next.ok() && next->has_value(), "a correctly framed message decodes");
  const es::Frame& f = **next;
  Check(f.type == type && f.payload == payload, "the decoded frame is the one framed");
  Check(decoder.Finish().ok(), "nothing is left after one frame");
  es::fuzz::CheckFrame(f);
  return 0;
}
