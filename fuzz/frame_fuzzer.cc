// libFuzzer harness for the frame decoder and every message parser.
//
// Input: byte 0 chooses the feeding chunk size; the rest is a byte stream
// from a hostile peer, exactly as it would arrive. Properties checked: no
// crash/UB/leak; errors are sticky; every decoded frame re-encodes to a frame
// that decodes to the same type and payload; every frame's message goes
// through CheckFrame (fuzz_common.h: the conversions of proto/convert.h and
// the batch openers).
//
// Checksums: a mutation almost never keeps a frame's CRC-32 right, so on
// plain mutation the decoder stops at "checksum mismatch" and the parsers
// behind it are never reached (measured: 7 of 13 types never decoded). The
// custom mutator below mutates as libFuzzer would, then recomputes the CRC
// of every complete frame in the stream; one mutation in eight is left as
// it is, so the mismatch path stays covered. We chose a mutator over
// "the harness frames a type byte + payload" (that is message_fuzzer) so
// that this harness's inputs stay literal wire bytes: a crash file is the
// stream that caused it, and the length and type checks still see
// arbitrary bytes.
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "proto/frame.h"

namespace es = entrysync;
using es::fuzz::Check;

namespace {

constexpr size_t kMaxFrame = 64 << 10;

}  // namespace

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  size = LLVMFuzzerMutate(data, size, max_size);
  if (size > 1 && std::minstd_rand(seed)() % 8 != 0) es::fuzz::FixFrameChecksums(data + 1, size - 1);
  return size;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in string fields is expected here; keep the log quiet.
  google::protobuf::SetLogHandler(nullptr);
  (void)es::fuzz::KnownMessageTypes();  // aborts at once if a type has no message
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  es::FrameDecoder decoder(kMaxFrame);
  bool failed = false;
  while (!in.empty() && !failed) {
    const size_t n = std::min(chunk, in.size());
    decoder.Feed(in.substr(0, n));
    in.remove_prefix(n);
    while (true) {
      auto next = decoder.Next();
      if (!next.ok()) {
        failed = true;
        Check(!next.status().message().empty(), "decoder errors have a message");
        Check(decoder.Next().status().message() == next.status().message(), "decoder errors are sticky");
        break;
      }
      if (!next->has_value()) break;
      const es::Frame& f = **next;
      Check(f.payload.size() + 5 <= kMaxFrame, "decoded frames respect the limit");
      es::fuzz::CheckFrame(f);
      // Re-encoding the raw payload must decode to the same frame.
      es::FrameDecoder again;
      again.Feed(es::fuzz::FrameOf(static_cast<uint8_t>(f.type), f.payload));
      auto r = again.Next();
      Check(r.ok() && r->has_value() && (*r)->type == f.type && (*r)->payload == f.payload,
            "a frame re-encodes to itself");
    }
  }
  (void)decoder.Finish();
  return 0;
}
