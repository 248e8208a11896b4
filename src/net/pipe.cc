#include "net/pipe.h"

#include <asio/post.hpp>
#include <atomic>
#include <deque>
#include <mutex>
#include <string>

#include "net/handler_slot.h"

namespace entrysync {
namespace {

// State shared by both ends. Each end's handlers run on its executor;
// deliveries are posted there one chunk at a time.
struct PipeCore {
  struct End {
    asio::any_io_executor exec;
    // Bytes written by the other end, not yet delivered to this end.
    std::deque<std::string> inbound;
    size_t inbound_offset = 0;  // consumed prefix of inbound.front()
    size_t inbound_bytes = 0;
    bool started = false;
    bool scheduled = false;  // a delivery is posted
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> received{0};
    net::HandlerSlot slot;
  };

  explicit PipeCore(PipeOptions o) : options(o) {}

  const PipeOptions options;
  std::mutex mu;
  bool closed = false;  // guarded by mu; set by Close or Cut on either end
  Status close_status;  // guarded by mu; OK for Close, an error for Cut
  End ends[2];          // fields above `sent` guarded by mu
};

void Deliver(const std::shared_ptr<PipeCore>& core, int side);

// REQUIRES: core->mu held.
void Schedule(const std::shared_ptr<PipeCore>& core, int side) {
  PipeCore::End& e = core->ends[side];
  if (!e.started || e.scheduled) return;
  if (e.inbound.empty() && !core->closed) return;
  e.scheduled = true;
  asio::post(e.exec, [core, side] { Deliver(core, side); });
}

// Hands one chunk (or the close) to end `side`'s handlers, on its executor.
void Deliver(const std::shared_ptr<PipeCore>& core, int side) {
  PipeCore::End& e = core->ends[side];
  std::unique_lock<std::mutex> lock(core->mu);
  e.scheduled = false;
  if (e.inbound.empty()) {
    if (!core->closed) return;
    Status why = core->close_status;
    lock.unlock();
    e.slot.Closed(why);
    return;
  }
  std::string& front = e.inbound.front();
  size_t n = front.size() - e.inbound_offset;
  if (core->options.max_chunk != 0 && n > core->options.max_chunk) n = core->options.max_chunk;
  std::string chunk;
  if (e.inbound_offset == 0 && n == front.size()) {
    chunk = std::move(front);
    e.inbound.pop_front();
  } else {
    chunk = front.substr(e.inbound_offset, n);
    e.inbound_offset += n;
    if (e.inbound_offset == front.size()) {
      e.inbound.pop_front();
      e.inbound_offset = 0;
    }
  }
  lock.unlock();
  e.slot.Data(chunk);
  lock.lock();
  e.inbound_bytes -= n;
  Schedule(core, side);
  PipeCore::End& writer = core->ends[1 - side];
  if (writer.started && !core->closed)
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
    PipeCore::End& e = core_->ends[side_];
    e.slot.Set(std::move(on_data), std::move(on_closed), std::move(on_writable));
    std::lock_guard<std::mutex> lock(core_->mu);
    if (e.started) return;
    e.started = true;
    Schedule(core_, side_);
  }

  void Write(std::string bytes) override {
    if (bytes.empty()) return;
    const int other = 1 - side_;
    const size_t n = bytes.size();
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      if (core_->closed) return;
      core_->ends[other].inbound.push_back(std::move(bytes));
      core_->ends[other].inbound_bytes += n;
      Schedule(core_, other);
    }
    core_->ends[side_].sent.fetch_add(n, std::memory_order_relaxed);
    core_->ends[other].received.fetch_add(n, std::memory_order_relaxed);
  }

  size_t PendingWriteBytes() const override {
    std::lock_guard<std::mutex> lock(core_->mu);
    return core_->ends[1 - side_].inbound_bytes;
  }

  void Close() override { Shut(Status::Ok(), /*drop_in_flight=*/false); }

  void Cut() { Shut(IOError("pipe cut"), /*drop_in_flight=*/true); }

  DeviceId RemoteId() const override { return remote_; }
  uint64_t BytesSent() const override { return core_->ends[side_].sent.load(std::memory_order_relaxed); }
  uint64_t BytesReceived() const override {
    return core_->ends[side_].received.load(std::memory_order_relaxed);
  }
  std::string Describe() const override { return "pipe"; }

 private:
  void Shut(Status why, bool drop_in_flight) {
    std::lock_guard<std::mutex> lock(core_->mu);
    if (core_->closed) return;
    core_->closed = true;
    core_->close_status = std::move(why);
    for (int s = 0; s < 2; ++s) {
      if (drop_in_flight) {
        core_->ends[s].inbound.clear();
        core_->ends[s].inbound_offset = 0;
        core_->ends[s].inbound_bytes = 0;
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
