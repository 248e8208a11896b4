#include "net/pipe.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "net/io_thread.h"

namespace entrysync {
namespace {

using namespace std::chrono_literals;

DeviceId Id(uint8_t b) {
  DeviceId id;
  id.bytes.fill(b);
  return id;
}

// Each end delivers on its own io thread, as two nodes would.
std::pair<std::unique_ptr<ByteStream>, std::unique_ptr<ByteStream>> Pipe(PipeOptions o = {}) {
  static IoThread io_a("pipe-a"), io_b("pipe-b");
  return MakePipe(io_a.context().get_executor(), io_b.context().get_executor(), Id(1), Id(2), o);
}

// Collects what a stream delivers; checks callbacks never overlap.
class Sink {
 public:
  ByteStream::DataHandler OnData() {
    return [this](std::string_view s) {
      EXPECT_FALSE(in_callback_.exchange(true));
      {
        std::lock_guard<std::mutex> l(mu_);
        EXPECT_FALSE(closed_.has_value()) << "data after close";
        data_.append(s);
        ++chunks_;
      }
      cv_.notify_all();
      in_callback_ = false;
    };
  }
  ByteStream::CloseHandler OnClosed() {
    return [this](Status s) {
      EXPECT_FALSE(in_callback_.exchange(true));
      {
        std::lock_guard<std::mutex> l(mu_);
        EXPECT_FALSE(closed_.has_value()) << "closed twice";
        closed_ = s;
      }
      cv_.notify_all();
      in_callback_ = false;
    };
  }
  bool WaitBytes(size_t n, std::chrono::milliseconds t = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, t, [&] { return data_.size() >= n; });
  }
  std::optional<Status> WaitClosed(std::chrono::milliseconds t = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, t, [&] { return closed_.has_value(); });
    return closed_;
  }
  std::string data() {
    std::lock_guard<std::mutex> l(mu_);
    return data_;
  }
  size_t chunks() {
    std::lock_guard<std::mutex> l(mu_);
    return chunks_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string data_;
  size_t chunks_ = 0;
  std::optional<Status> closed_;
  std::atomic<bool> in_callback_{false};
};

TEST(PipeTest, DeliversInOrderBothWays) {
  Sink sa, sb;
  auto [a, b] = Pipe();
  EXPECT_EQ(a->RemoteId(), Id(2));
  EXPECT_EQ(b->RemoteId(), Id(1));
  EXPECT_EQ(a->Describe(), "pipe");
  // Written before Start: kept.
  a->Write("hello ");
  a->Start(sa.OnData(), sa.OnClosed());
  b->Start(sb.OnData(), sb.OnClosed());
  std::string expect_b = "hello ", expect_a;
  for (int i = 0; i < 5000; ++i) {
    std::string m = std::to_string(i) + ",";
    a->Write(m);
    expect_b += m;
    b->Write(m + m);
    expect_a += m + m;
  }
  ASSERT_TRUE(sb.WaitBytes(expect_b.size()));
  ASSERT_TRUE(sa.WaitBytes(expect_a.size()));
  EXPECT_EQ(sb.data(), expect_b);
  EXPECT_EQ(sa.data(), expect_a);
  EXPECT_EQ(a->BytesSent(), expect_b.size());
  EXPECT_EQ(b->BytesReceived(), expect_b.size());
  EXPECT_EQ(b->BytesSent(), expect_a.size());
  // Delivered means no longer pending (give the thread a moment to account).
  for (int i = 0; i < 100 && a->PendingWriteBytes() != 0; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(a->PendingWriteBytes(), 0u);
}

TEST(PipeTest, CloseFlushesAndClosesBothEnds) {
  Sink sa, sb;
  auto [a, b] = Pipe();
  a->Start(sa.OnData(), sa.OnClosed());
  b->Start(sb.OnData(), sb.OnClosed());
  std::string big(1 << 20, 'x');
  a->Write(big);
  a->Close();
  a->Close();  // idempotent
  a->Write("dropped");
  b->Write("dropped too");
  auto cb = sb.WaitClosed();
  auto ca = sa.WaitClosed();
  ASSERT_TRUE(ca && cb);
  EXPECT_TRUE(ca->ok());
  EXPECT_TRUE(cb->ok());
  EXPECT_EQ(sb.data(), big);
  EXPECT_EQ(sa.data(), "");
}

TEST(PipeTest, ClosedBeforeStartStillReportsClose) {
  Sink sa, sb;
  auto [a, b] = Pipe();
  a->Write("abc");
  b->Close();
  a->Start(sa.OnData(), sa.OnClosed());
  b->Start(sb.OnData(), sb.OnClosed());
  ASSERT_TRUE(sa.WaitClosed());
  ASSERT_TRUE(sb.WaitClosed());
  EXPECT_EQ(sb.data(), "abc");
}

TEST(PipeTest, ConcurrentWritersKeepEachWriteWhole) {
  Sink sb;
  auto [a, b] = Pipe();
  b->Start(sb.OnData(), sb.OnClosed());
  constexpr int kThreads = 8, kPerThread = 2000;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        char rec[16];
        snprintf(rec, sizeof rec, "%c%07d;", 'a' + t, i);
        a->Write(std::string(rec, 9));
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_TRUE(sb.WaitBytes(size_t{kThreads} * kPerThread * 9));
  std::string got = sb.data();
  ASSERT_EQ(got.size(), size_t{kThreads} * kPerThread * 9);
  int next[kThreads] = {0};
  for (size_t off = 0; off < got.size(); off += 9) {
    int t = got[off] - 'a';
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    EXPECT_EQ(std::stoi(got.substr(off + 1, 7)), next[t]++);
    EXPECT_EQ(got[off + 8], ';');
  }
}

TEST(PipeTest, MaxChunkSplitsDeliveries) {
  Sink sb;
  auto [a, b] = Pipe(PipeOptions{.max_chunk = 3});
  b->Start(sb.OnData(), sb.OnClosed());
  a->Write("abcdefgh");
  ASSERT_TRUE(sb.WaitBytes(8));
  EXPECT_EQ(sb.data(), "abcdefgh");
  EXPECT_EQ(sb.chunks(), 3u);
}

TEST(PipeTest, DestroyWhileDataInFlight) {
  for (int round = 0; round < 20; ++round) {
    Sink sa;
    std::atomic<size_t> got{0};
    auto [a, b] = Pipe();
    a->Start(sa.OnData(), sa.OnClosed());
    b->Start(
        [&](std::string_view s) {
          got += s.size();
          std::this_thread::sleep_for(10us);
        },
        [](Status) {});
    for (int i = 0; i < 200; ++i) a->Write(std::string(4096, 'z'));
    if (round % 2) {
      b.reset();  // the reader goes away mid-stream
      auto c = sa.WaitClosed();
      ASSERT_TRUE(c.has_value());
      EXPECT_TRUE(c->ok());
    }
    // Otherwise both ends are destroyed with data queued.
  }
}

TEST(PipeTest, EndMayBeDestroyedFromItsOwnHandler) {
  Sink sa;
  auto [a, b_owned] = Pipe();
  std::unique_ptr<ByteStream> b = std::move(b_owned);
  std::promise<void> destroyed;
  a->Start(sa.OnData(), sa.OnClosed());
  b->Start(
      [&](std::string_view) {
        b.reset();  // the handler runs inside b: deferred cleanup
        destroyed.set_value();
      },
      [](Status) {});
  a->Write("x");
  a->Write("y");  // may be delivered to nobody: b is gone
  ASSERT_EQ(destroyed.get_future().wait_for(10s), std::future_status::ready);
  auto c = sa.WaitClosed();
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->ok());
}

TEST(PipeTest, CutClosesBothEndsWithAnError) {
  Sink sa, sb;
  auto [a, b] = Pipe();
  a->Start(sa.OnData(), sa.OnClosed());
  b->Start(sb.OnData(), sb.OnClosed());
  CutPipe(*a);
  auto ca = sa.WaitClosed();
  auto cb = sb.WaitClosed();
  ASSERT_TRUE(ca && cb);
  EXPECT_FALSE(ca->ok());
  EXPECT_FALSE(cb->ok());
}

TEST(PipeTest, WriterHearsWhenItsBytesAreTaken) {
  Sink sb;
  std::atomic<int> writable{0};
  auto [a, b] = Pipe();
  a->Start([](std::string_view) {}, [](Status) {}, [&] { ++writable; });
  a->Write("abc");
  a->Write("def");
  b->Start(sb.OnData(), sb.OnClosed());
  ASSERT_TRUE(sb.WaitBytes(6));
  for (int i = 0; i < 1000 && writable.load() < 2; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(writable.load(), 2);
  EXPECT_EQ(a->PendingWriteBytes(), 0u);
}

}  // namespace
}  // namespace entrysync
