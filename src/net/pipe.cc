#include "net/pipe.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "net/handler_slot.h"

namespace entrysync {
namespace {

// State shared by both ends and their delivery threads.
struct PipeCore {
  struct End {
    // Bytes written by the other end, not yet delivered to this end.
    std::deque<std::string> inbound;
    size_t inbound_offset = 0;  // consumed prefix of inbound.front()
    size_t inbound_bytes = 0;
    bool started = false;
    bool stop = false;  // the delivery thread must exit
    std::condition_variable cv;
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> received{0};
    net::HandlerSlot slot;
  };

  explicit PipeCore(PipeOptions o) : options(o) {}

  const PipeOptions options;
  std::mutex mu;
  bool closed = false;  // guarded by mu; set by Close on either end
  End ends[2];          // fields above `cv` guarded by mu
};

// Delivers to end `side` until it is closed or stopped.
void DeliveryLoop(std::shared_ptr<PipeCore> core, int side) {
  PipeCore::End& e = core->ends[side];
  std::unique_lock<std::mutex> lock(core->mu);
  for (;;) {
    e.cv.wait(lock, [&] { return e.stop || !e.inbound.empty() || core->closed; });
    if (e.stop) return;
    if (e.inbound.empty()) break;  // closed and drained
    std::string& front = e.inbound.front();
    size_t n = front.size() - e.inbound_offset;
    if (core->options.max_chunk != 0 && n > core->options.max_chunk) {
      n = core->options.max_chunk;
    }
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
  }
  lock.unlock();
  e.slot.Closed(Status::Ok());
}

class PipeEnd final : public ByteStream {
 public:
  PipeEnd(std::shared_ptr<PipeCore> core, int side, DeviceId remote)
      : core_(std::move(core)), side_(side), remote_(remote) {}

  ~PipeEnd() override {
    PipeCore::End& e = core_->ends[side_];
    e.slot.Detach();
    Close();
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      e.stop = true;
    }
    e.cv.notify_all();
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();  // destroyed from its own handler; it exits soon
      } else {
        thread_.join();
      }
    }
  }

  void Start(DataHandler on_data, CloseHandler on_closed) override {
    PipeCore::End& e = core_->ends[side_];
    e.slot.Set(std::move(on_data), std::move(on_closed));
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      if (e.started) return;
      e.started = true;
    }
    thread_ = std::thread(DeliveryLoop, core_, side_);
  }

  void Write(std::string bytes) override {
    if (bytes.empty()) return;
    PipeCore::End& other = core_->ends[1 - side_];
    const size_t n = bytes.size();
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      if (core_->closed) return;
      other.inbound.push_back(std::move(bytes));
      other.inbound_bytes += n;
    }
    core_->ends[side_].sent.fetch_add(n, std::memory_order_relaxed);
    other.received.fetch_add(n, std::memory_order_relaxed);
    other.cv.notify_one();
  }

  size_t PendingWriteBytes() const override {
    std::lock_guard<std::mutex> lock(core_->mu);
    return core_->ends[1 - side_].inbound_bytes;
  }

  void Close() override {
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      if (core_->closed) return;
      core_->closed = true;
    }
    core_->ends[0].cv.notify_all();
    core_->ends[1].cv.notify_all();
  }

  DeviceId RemoteId() const override { return remote_; }
  uint64_t BytesSent() const override { return core_->ends[side_].sent.load(std::memory_order_relaxed); }
  uint64_t BytesReceived() const override {
    return core_->ends[side_].received.load(std::memory_order_relaxed);
  }
  std::string Describe() const override { return "pipe"; }

 private:
  const std::shared_ptr<PipeCore> core_;
  const int side_;
  const DeviceId remote_;
  std::thread thread_;
};

}  // namespace

std::pair<std::unique_ptr<ByteStream>, std::unique_ptr<ByteStream>> MakePipe(DeviceId a_id, DeviceId b_id,
                                                                             PipeOptions options) {
  auto core = std::make_shared<PipeCore>(options);
  return {std::make_unique<PipeEnd>(core, 0, b_id), std::make_unique<PipeEnd>(core, 1, a_id)};
}

}  // namespace entrysync
