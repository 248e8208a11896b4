#include "net/pipe.h"

#include <asio/post.hpp>
#include <atomic>
#include <deque>
#include <string>

#include "base/mutex.h"
#include "net/handler_slot.h"

namespace entrysync {
namespace {

// State shared by both ends. Each end's handlers run on its executor;
// deliveries are posted there one chunk at a time.
struct PipeCore {
  // One end: where its handlers run, and its byte counts.
  struct End {
    asio::any_io_executor exec;  // set before either end is used
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> received{0};
    net::HandlerSlot slot;
  };
  // Bytes written by the other end, not yet delivered to this end.
  struct Inbound {
    std::deque<std::string> chunks;
    size_t offset = 0;  // consumed prefix of chunks.front()
    size_t bytes = 0;
    bool started = false;    // this end's Start ran
    bool scheduled = false;  // a delivery is posted
  };

  explicit PipeCore(PipeOptions o) : options(o) {}

  const PipeOptions options;
  End ends[2];
  Mutex mu;
  bool closed GUARDED_BY(mu) = false;  // set by Close or Cut on either end
  Status close_status GUARDED_BY(mu);  // OK for Close, an error for Cut
  Inbound inbound[2] GUARDED_BY(mu);   // by end
};

void Deliver(const std::shared_ptr<PipeCore>& core, int side);

void Schedule(const std::shared_ptr<PipeCore>& core, int side) REQUIRES(core->mu) {
  PipeCore::Inbound& in = core->inbound[side];
  if (!in.started || in.scheduled) return;
  if (in.chunks.empty() && !core->closed) return;
  in.scheduled = true;
  asio::post(core->ends[side].exec, [core, side] { Deliver(core, side); });
}

// Hands one chunk (or the close) to end `side`'s handlers, on its executor.
void Deliver(const std::shared_ptr<PipeCore>& core, int side) EXCLUDES(core->mu) {
  PipeCore::End& e = core->ends[side];
  MutexLock lock(core->mu);
  PipeCore::Inbound& in = core->inbound[side];
  in.scheduled = false;
  if (in.chunks.empty()) {
    if (!core->closed) return;
    Status why = core->close_status;
    lock.Unlock();
    e.slot.Closed(why);
    return;
  }
  std::string& front = in.chunks.front();
  size_t n = front.size() - in.offset;
  if (core->options.max_chunk != 0 && n > core->options.max_chunk) n = core->options.max_chunk;
  std::string chunk;
  if (in.offset == 0 && n == front.size()) {
    chunk = std::move(front);
    in.chunks.pop_front();
  } else {
    chunk = front.substr(in.offset, n);
    in.offset += n;
    if (in.offset == front.size()) {
      in.chunks.pop_front();
      in.offset = 0;
    }
  }
  lock.Unlock();
  e.slot.Data(chunk);
  lock.Lock();
  in.bytes -= n;
  Schedule(core, side);
  PipeCore::End& writer = core->ends[1 - side];
  if (core->inbound[1 - side].started && !core->closed)
    asio::post(writer.exec, [core, side] { core->ends[1 - side].slot.Writable(); });
}

}  // namespace

class PipeEnd final : public ByteStream {
 public:
  PipeEnd(std::shared_ptr<PipeCore> core, int side, DeviceId remote)
      : core_(std::move(core)), side_(side), remote_(remote) {}

  ~PipeEnd() override {
    core_->ends[side_].slot.Detach();
    Close();
  }

  using ByteStream::Start;
  void Start(DataHandler on_data, CloseHandler on_closed, WritableHandler on_writable) override {
    core_->ends[side_].slot.Set(std::move(on_data), std::move(on_closed), std::move(on_writable));
    MutexLock lock(core_->mu);
    PipeCore::Inbound& in = core_->inbound[side_];
    if (in.started) return;
    in.started = true;
    Schedule(core_, side_);
  }

  void Write(std::string bytes) override {
    if (bytes.empty()) return;
    const int other = 1 - side_;
    const size_t n = bytes.size();
    {
      MutexLock lock(core_->mu);
      if (core_->closed) return;
      core_->inbound[other].chunks.push_back(std::move(bytes));
      core_->inbound[other].bytes += n;
      Schedule(core_, other);
    }
    core_->ends[side_].sent.fetch_add(n, std::memory_order_relaxed);
    core_->ends[other].received.fetch_add(n, std::memory_order_relaxed);
  }

  size_t PendingWriteBytes() const override {
    MutexLock lock(core_->mu);
    return core_->inbound[1 - side_].bytes;
  }

  void Close() override { Shut(Status::Ok(), /*drop_in_flight=*/false); }

  void Abort(const Status& why) override {
    Shut(why.ok() ? Aborted("pipe aborted") : why, /*drop_in_flight=*/true);
  }

  void Cut() { Shut(IOError("pipe cut"), /*drop_in_flight=*/true); }

  DeviceId RemoteId() const override { return remote_; }
  uint64_t BytesSent() const override { return core_->ends[side_].sent.load(std::memory_order_relaxed); }
  uint64_t BytesReceived() const override {
    return core_->ends[side_].received.load(std::memory_order_relaxed);
  }
  std::string Describe() const override { return "pipe"; }

 private:
  void Shut(Status why, bool drop_in_flight) {
    MutexLock lock(core_->mu);
    if (core_->closed) return;
    core_->closed = true;
    core_->close_status = std::move(why);
    for (int s = 0; s < 2; ++s) {
      if (drop_in_flight) {
        core_->inbound[s].chunks.clear();
        core_->inbound[s].offset = 0;
        core_->inbound[s].bytes = 0;
      }
      Schedule(core_, s);
    }
  }

  const std::shared_ptr<PipeCore> core_;
  const int side_;
  const DeviceId remote_;
};

std::pair<std::unique_ptr<ByteStream>, std::unique_ptr<ByteStream>> MakePipe(asio::any_io_executor a_exec,
                                                                             asio::any_io_executor b_exec,
                                                                             DeviceId a_id, DeviceId b_id,
                                                                             PipeOptions options) {
  auto core = std::make_shared<PipeCore>(options);
  core->ends[0].exec = std::move(a_exec);
  core->ends[1].exec = std::move(b_exec);
  return {std::make_unique<PipeEnd>(core, 0, b_id), std::make_unique<PipeEnd>(core, 1, a_id)};
}

void CutPipe(ByteStream& end) { static_cast<PipeEnd&>(end).Cut(); }

}  // namespace entrysync
