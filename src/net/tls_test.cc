#include "net/tls.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "base/hash.h"

namespace entrysync {
namespace {

using namespace std::chrono_literals;

uint8_t PatternByte(uint64_t i) {
  uint64_t x = i * 0x9E3779B97F4A7C15ULL;
  return static_cast<uint8_t>(x >> 56);
}

std::string Pattern(uint64_t offset, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(PatternByte(offset + i));
  return s;
}

// Receives a stream's data, checking it against Pattern (or keeping it).
class Sink {
 public:
  // `checksum_only`: keep a running CRC-32 instead of the bytes.
  explicit Sink(bool checksum_only = false) : checksum_only_(checksum_only) {}
  ByteStream::DataHandler OnData() {
    return [this](std::string_view s) {
      EXPECT_FALSE(in_callback_.exchange(true));
      {
        std::lock_guard<std::mutex> l(mu_);
        EXPECT_FALSE(closed_.has_value()) << "data after close";
        if (checksum_only_) {
          crc_ = Crc32(s.data(), s.size(), crc_);
        } else {
          data_.append(s);
        }
        count_ += s.size();
      }
      cv_.notify_all();
      in_callback_ = false;
    };
  }
  ByteStream::CloseHandler OnClosed() {
    return [this](const Status& s) {
      {
        std::lock_guard<std::mutex> l(mu_);
        EXPECT_FALSE(closed_.has_value()) << "closed twice";
        closed_ = s;
      }
      cv_.notify_all();
    };
  }
  bool WaitBytes(uint64_t n, std::chrono::milliseconds t = 60s) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, t, [&] { return count_ >= n; });
  }
  std::optional<Status> WaitClosed(std::chrono::milliseconds t = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, t, [&] { return closed_.has_value(); });
    return closed_;
  }
  uint64_t count() {
    std::lock_guard<std::mutex> l(mu_);
    return count_;
  }
  uint32_t crc() {
    std::lock_guard<std::mutex> l(mu_);
    return crc_;
  }
  std::string data() {
    std::lock_guard<std::mutex> l(mu_);
    return data_;
  }

 private:
  const bool checksum_only_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string data_;
  uint64_t count_ = 0;
  uint32_t crc_ = 0;
  std::optional<Status> closed_;
  std::atomic<bool> in_callback_{false};
};

// What a listener reported, collected across threads.
class ListenerEvents {
 public:
  void Accepted(std::unique_ptr<ByteStream> s) {
    std::lock_guard<std::mutex> l(mu_);
    accepted_.push_back(std::move(s));
    cv_.notify_all();
  }
  void Refused(Status s) {
    std::lock_guard<std::mutex> l(mu_);
    refused_.push_back(std::move(s));
    cv_.notify_all();
  }
  std::unique_ptr<ByteStream> WaitAccepted(std::chrono::milliseconds t = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, t, [&] { return !accepted_.empty(); })) return nullptr;
    auto s = std::move(accepted_.front());
    accepted_.erase(accepted_.begin());
    return s;
  }
  std::optional<Status> WaitRefused(std::chrono::milliseconds t = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, t, [&] { return !refused_.empty(); })) return std::nullopt;
    Status s = refused_.front();
    refused_.erase(refused_.begin());
    return s;
  }
  size_t accepted_count() {
    std::lock_guard<std::mutex> l(mu_);
    return accepted_.size();
  }
  // Every refusal reported so far (and forgets them).
  std::vector<Status> TakeRefused() {
    std::lock_guard<std::mutex> l(mu_);
    return std::exchange(refused_, {});
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<ByteStream>> accepted_;
  std::vector<Status> refused_;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = GenerateIdentity();
    auto c = GenerateIdentity();
    ASSERT_TRUE(s.ok() && c.ok());
    server_id_.emplace(*s);
    client_id_.emplace(*c);
  }

  // Listens on 127.0.0.1 accepting only `paired`.
  std::unique_ptr<TlsListener> Listen(DeviceId paired, TlsOptions opts = {}) {
    ListenOptions lo;
    lo.tls = opts;
    return Listen(paired, lo);
  }
  std::unique_ptr<TlsListener> Listen(DeviceId paired, ListenOptions opts) {
    auto l = TlsListener::Listen(
        io_, *server_id_, "127.0.0.1", 0,
        [paired](const DeviceId& id) { return id == paired ? Status::Ok() : PermissionDenied("not paired"); },
        [this](std::unique_ptr<ByteStream> s) { events_.Accepted(std::move(s)); },
        [this](Status s) { events_.Refused(std::move(s)); }, opts);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(l).value() : nullptr;
  }

  Result<std::unique_ptr<ByteStream>> Dial(uint16_t port, const DeviceId& expect, TlsOptions opts = {}) {
    return TlsDial(io_, *client_id_, "127.0.0.1", port, expect, opts);
  }

  IoThread io_;
  ListenerEvents events_;  // destroyed before io_: streams stop first
  std::optional<Identity> server_id_, client_id_;
};

TEST_F(TlsTest, ExchangeFiftyMegabytesBothWays) {
  constexpr uint64_t kTotal = 50ull << 20;
  constexpr size_t kChunk = 64 << 10;
  const std::string payload = Pattern(0, kTotal);
  const uint32_t payload_crc = Crc32(payload.data(), payload.size());
  // The client on its own loop, as a second node would be.
  IoThread client_io("es-io-client");
  Sink client_sink(true), server_sink(true);
  auto listener = Listen(client_id_->device_id());
  ASSERT_TRUE(listener);
  auto client = TlsDial(client_io, *client_id_, "127.0.0.1", listener->port(), server_id_->device_id());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto server = events_.WaitAccepted();
  ASSERT_TRUE(server);
  EXPECT_EQ(server->RemoteId(), client_id_->device_id());
  EXPECT_EQ((*client)->RemoteId(), server_id_->device_id());
  EXPECT_EQ((*client)->Describe(), "127.0.0.1:" + std::to_string(listener->port()));
  EXPECT_EQ(server->Describe().rfind("127.0.0.1:", 0), 0u);

  (*client)->Start(client_sink.OnData(), client_sink.OnClosed());
  server->Start(server_sink.OnData(), server_sink.OnClosed());

  auto t0 = std::chrono::steady_clock::now();
  auto pump = [&](ByteStream* s) {
    for (uint64_t off = 0; off < kTotal; off += kChunk) {
      // Keep a bounded amount queued, as a real producer would.
      while (s->PendingWriteBytes() > 64 * kChunk) std::this_thread::sleep_for(100us);
      s->Write(payload.substr(off, kChunk));
    }
  };
  std::thread w1(pump, client->get());
  std::thread w2(pump, server.get());
  w1.join();
  w2.join();
  ASSERT_TRUE(server_sink.WaitBytes(kTotal));
  ASSERT_TRUE(client_sink.WaitBytes(kTotal));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(server_sink.count(), kTotal);
  EXPECT_EQ(client_sink.count(), kTotal);
  EXPECT_EQ(server_sink.crc(), payload_crc);
  EXPECT_EQ(client_sink.crc(), payload_crc);
  EXPECT_GE((*client)->BytesSent(), kTotal);
  EXPECT_GE((*client)->BytesReceived(), kTotal);
  EXPECT_GE(server->BytesSent(), kTotal);
  EXPECT_GE(server->BytesReceived(), kTotal);
  std::printf(
      "[ perf     ] TLS loopback, both directions at once: %.0f MiB each way "
      "in %.2fs = %.0f MiB/s per direction (%.0f MiB/s total); TLS overhead "
      "%.2f%%\n",
      kTotal / 1048576.0, secs, kTotal / 1048576.0 / secs, 2 * kTotal / 1048576.0 / secs,
      100.0 * ((*client)->BytesSent() - kTotal) / kTotal);

  (*client)->Close();
  auto cs = client_sink.WaitClosed();
  auto ss = server_sink.WaitClosed();
  ASSERT_TRUE(cs && ss);
  EXPECT_TRUE(cs->ok()) << cs->ToString();
  EXPECT_TRUE(ss->ok()) << ss->ToString();
  EXPECT_EQ((*client)->PendingWriteBytes(), 0u);
  client->reset();  // before client_io goes
}

TEST_F(TlsTest, OneWayThroughput) {
  constexpr uint64_t kTotal = 200ull << 20;
  constexpr size_t kChunk = 64 << 10;  // a typical frame size
  const std::string chunk = Pattern(0, kChunk);
  IoThread client_io("es-io-client");
  Sink server_sink(true);
  auto listener = Listen(client_id_->device_id());
  ASSERT_TRUE(listener);
  auto client = TlsDial(client_io, *client_id_, "127.0.0.1", listener->port(), server_id_->device_id());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto server = events_.WaitAccepted();
  ASSERT_TRUE(server);
  server->Start(server_sink.OnData(), server_sink.OnClosed());
  (*client)->Start([](std::string_view) {}, [](const Status&) {});
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t off = 0; off < kTotal; off += kChunk) {
    while ((*client)->PendingWriteBytes() > 64 * kChunk) std::this_thread::sleep_for(50us);
    (*client)->Write(chunk);
  }
  ASSERT_TRUE(server_sink.WaitBytes(kTotal));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ perf     ] TLS loopback, one direction: %.0f MiB in %.2fs = %.0f MiB/s\n",
              kTotal / 1048576.0, secs, kTotal / 1048576.0 / secs);
  client->reset();
}

TEST_F(TlsTest, UnpairedClientIsRefusedOnBothEnds) {
  DeviceId someone_else;
  someone_else.bytes.fill(7);
  auto listener = Listen(someone_else);
  ASSERT_TRUE(listener);
  auto client = Dial(listener->port(), server_id_->device_id());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kPermissionDenied);
  EXPECT_NE(client.status().message().find("refused this device"), std::string::npos)
      << client.status().message();
  auto refused = events_.WaitRefused();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code(), Code::kPermissionDenied);
  EXPECT_NE(
      refused->message().find("presented device " + ShortDeviceId(client_id_->device_id()) + ": not paired"),
      std::string::npos)
      << refused->message();
  EXPECT_EQ(events_.accepted_count(), 0u);
  std::printf("[ info     ] client sees: %s\n[ info     ] server sees: %s\n",
              client.status().message().c_str(), refused->message().c_str());
}

TEST_F(TlsTest, WrongPinnedServerIsRefused) {
  auto listener = Listen(client_id_->device_id());
  ASSERT_TRUE(listener);
  DeviceId wrong;
  wrong.bytes.fill(9);
  auto client = Dial(listener->port(), wrong);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kPermissionDenied);
  EXPECT_NE(client.status().message().find("presented device " + ShortDeviceId(server_id_->device_id())),
            std::string::npos)
      << client.status().message();
  auto refused = events_.WaitRefused();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code(), Code::kPermissionDenied) << refused->message();
  EXPECT_NE(refused->message().find("expected another device"), std::string::npos);
  EXPECT_EQ(events_.accepted_count(), 0u);
  std::printf("[ info     ] client sees: %s\n[ info     ] server sees: %s\n",
              client.status().message().c_str(), refused->message().c_str());
}

TEST_F(TlsTest, GarbageAndSilentClientsDoNotHurtTheListener) {
  TlsOptions opts;
  opts.handshake_timeout = 500ms;
  auto listener = Listen(client_id_->device_id(), opts);
  ASSERT_TRUE(listener);
  asio::io_context raw_io;
  asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), listener->port());
  {
    asio::ip::tcp::socket s(raw_io);
    asio::error_code ec;
    s.connect(ep, ec);
    ASSERT_FALSE(ec);
    std::string junk = "GET / HTTP/1.0\r\n\r\n" + std::string(5000, '\x16');
    asio::write(s, asio::buffer(junk), ec);
    auto refused = events_.WaitRefused();
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code(), Code::kProtocol) << refused->message();
    std::printf("[ info     ] garbage client: %s\n", refused->message().c_str());
  }
  {
    asio::ip::tcp::socket s(raw_io);
    asio::error_code ec;
    s.connect(ep, ec);
    ASSERT_FALSE(ec);
    auto refused = events_.WaitRefused(5s);  // says nothing: times out
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code(), Code::kAborted) << refused->message();
  }
  {
    asio::ip::tcp::socket s(raw_io);
    asio::error_code ec;
    s.connect(ep, ec);
    ASSERT_FALSE(ec);
    s.close();  // hangs up at once
    auto refused = events_.WaitRefused();
    ASSERT_TRUE(refused);
  }
  // Still serving.
  auto client = Dial(listener->port(), server_id_->device_id());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE(events_.WaitAccepted());
}

TEST_F(TlsTest, CloseFlushesQueuedBytes) {
  Sink client_sink, server_sink;
  auto listener = Listen(client_id_->device_id());
  ASSERT_TRUE(listener);
  auto client = Dial(listener->port(), server_id_->device_id());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto server = events_.WaitAccepted();
  ASSERT_TRUE(server);
  // Written before Start, then closed at once: everything still arrives.
  const std::string payload = Pattern(0, 5 << 20);
  server->Write(payload.substr(0, 1 << 20));
  server->Write(payload.substr(1 << 20));
  server->Close();
  server->Write("dropped after close");
  server->Start(server_sink.OnData(), server_sink.OnClosed());
  (*client)->Start(client_sink.OnData(), client_sink.OnClosed());
  auto cs = client_sink.WaitClosed();
  auto ss = server_sink.WaitClosed();
  ASSERT_TRUE(cs && ss);
  EXPECT_TRUE(cs->ok()) << cs->ToString();
  EXPECT_TRUE(ss->ok()) << ss->ToString();
  EXPECT_TRUE(client_sink.data() == payload) << client_sink.data().size();
  EXPECT_EQ(server->PendingWriteBytes(), 0u);
}

TEST_F(TlsTest, DestroyingAStreamClosesThePeer) {
  Sink client_sink;
  auto listener = Listen(client_id_->device_id());
  ASSERT_TRUE(listener);
  auto client = Dial(listener->port(), server_id_->device_id());
  ASSERT_TRUE(client.ok());
  auto server = events_.WaitAccepted();
  ASSERT_TRUE(server);
  (*client)->Start(client_sink.OnData(), client_sink.OnClosed());
  server->Start([](std::string_view) {}, [](const Status&) { ADD_FAILURE(); });
  server->Write("bye");
  server.reset();  // detaches handlers: the failure above never runs
  auto cs = client_sink.WaitClosed();
  ASSERT_TRUE(cs);
  EXPECT_TRUE(cs->ok()) << cs->ToString();
  EXPECT_EQ(client_sink.data(), "bye");
}

TEST_F(TlsTest, HandlerMayWriteCloseAndDestroy) {
  auto listener = Listen(client_id_->device_id());
  ASSERT_TRUE(listener);
  auto client = Dial(listener->port(), server_id_->device_id());
  ASSERT_TRUE(client.ok());
  std::unique_ptr<ByteStream> server = events_.WaitAccepted();
  ASSERT_TRUE(server);
  // Echo server that closes after "quit" and drops itself on close.
  std::promise<void> server_gone;
  ByteStream* raw = server.get();
  raw->Start(
      [raw](std::string_view s) {
        raw->Write(std::string(s));
        if (s.find("quit") != std::string_view::npos) raw->Close();
      },
      [&](const Status&) {
        server.reset();
        server_gone.set_value();
      });
  Sink client_sink;
  (*client)->Start(client_sink.OnData(), client_sink.OnClosed());
  (*client)->Write("ping ");
  (*client)->Write("quit");
  auto cs = client_sink.WaitClosed();
  ASSERT_TRUE(cs);
  EXPECT_TRUE(cs->ok()) << cs->ToString();
  EXPECT_EQ(client_sink.data(), "ping quit");
  EXPECT_EQ(server_gone.get_future().wait_for(5s), std::future_status::ready);
}

TEST_F(TlsTest, AbortDropsWhatThePeerDidNotReadAndClosesAtOnce) {
  Sink server_sink, client_sink;  // before the streams: they are destroyed first
  auto listener = Listen(client_id_->device_id());
  ASSERT_TRUE(listener);
  auto client = Dial(listener->port(), server_id_->device_id());
  ASSERT_TRUE(client.ok());
  auto server = events_.WaitAccepted();
  ASSERT_TRUE(server);
  server->Start(server_sink.OnData(), server_sink.OnClosed());
  // The client never starts: it reads nothing, the kernel's buffers fill.
  for (int i = 0; i < 64; ++i) server->Write(Pattern(0, 256 << 10));
  auto end = std::chrono::steady_clock::now() + 10s;
  while (server->PendingWriteBytes() < (8u << 20) && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(10ms);
  ASSERT_GE(server->PendingWriteBytes(), 8u << 20);
  server->Abort(Aborted("peer is not reading"));
  server->Write("dropped");
  auto closed = server_sink.WaitClosed(2s);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->message(), "peer is not reading");
  EXPECT_EQ(server->PendingWriteBytes(), 0u);
  // The client finds the connection cut, not closed in order.
  (*client)->Start(client_sink.OnData(), client_sink.OnClosed());
  auto cs = client_sink.WaitClosed();
  ASSERT_TRUE(cs);
  EXPECT_FALSE(cs->ok());
  EXPECT_LT(client_sink.count(), 16u << 20);
}

TEST_F(TlsTest, DialErrors) {
  // Nothing listens on the port a closed listener had.
  uint16_t port;
  {
    auto listener = Listen(client_id_->device_id());
    ASSERT_TRUE(listener);
    port = listener->port();
  }
  std::this_thread::sleep_for(50ms);
  auto r = Dial(port, server_id_->device_id());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIOError) << r.status().message();
  EXPECT_EQ(r.status().message().rfind("dial 127.0.0.1:" + std::to_string(port), 0), 0u);

  auto taken = Listen(client_id_->device_id());
  ASSERT_TRUE(taken);
  auto again = TlsListener::Listen(
      io_, *server_id_, "127.0.0.1", taken->port(), [](const DeviceId&) { return Status::Ok(); },
      [](std::unique_ptr<ByteStream>) {}, [](const Status&) {});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kIOError);
}

TEST_F(TlsTest, ListenerStopAbandonsHandshakes) {
  auto listener = Listen(client_id_->device_id());
  ASSERT_TRUE(listener);
  asio::io_context raw_io;
  asio::ip::tcp::socket s(raw_io);
  asio::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), listener->port()}, ec);
  ASSERT_FALSE(ec);
  std::this_thread::sleep_for(20ms);
  listener->Stop();
  listener.reset();
  // The connection is closed by the server.
  char b;
  s.read_some(asio::buffer(&b, 1), ec);
  EXPECT_TRUE(ec);
}

TEST_F(TlsTest, TricklingClientIsCutAtTheHandshakeDeadline) {
  TlsOptions opts;
  opts.handshake_timeout = 500ms;
  auto listener = Listen(client_id_->device_id(), opts);
  ASSERT_TRUE(listener);
  asio::io_context raw_io;
  asio::ip::tcp::socket s(raw_io);
  asio::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), listener->port()}, ec);
  ASSERT_FALSE(ec);
  // A handshake record announcing 16000 bytes, then a byte every 50 ms:
  // each read makes progress, none completes the record.
  const auto start = std::chrono::steady_clock::now();
  asio::write(s, asio::buffer(std::string("\x16\x03\x01\x3e\x80", 5)), ec);
  std::optional<Status> refused;
  for (int i = 0; i < 40 && !refused; ++i) {
    asio::write(s, asio::buffer("\x01", 1), ec);
    refused = events_.WaitRefused(50ms);
  }
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code(), Code::kAborted) << refused->message();
  EXPECT_NE(refused->message().find("not done within 0.5s"), std::string::npos) << refused->message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

TEST_F(TlsTest, OverTheLimitTheOldestUnauthenticatedConnectionMakesRoom) {
  ListenOptions opts;
  opts.max_unauthenticated = 4;
  opts.reports_per_interval = 1000;
  auto listener = Listen(client_id_->device_id(), opts);
  ASSERT_TRUE(listener);
  asio::io_context raw_io;
  asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), listener->port());
  std::vector<asio::ip::tcp::socket> idle;
  for (int i = 0; i < 20; ++i) {
    idle.emplace_back(raw_io);
    asio::error_code ec;
    idle.back().connect(ep, ec);
    ASSERT_FALSE(ec);
  }
  for (int i = 0; i < 16; ++i) {
    auto refused = events_.WaitRefused();
    ASSERT_TRUE(refused) << i;
    EXPECT_EQ(refused->code(), Code::kAborted) << refused->message();
    EXPECT_NE(refused->message().find("closed to make room"), std::string::npos) << refused->message();
  }
  // The 16 oldest were closed by the server.
  for (int i = 0; i < 16; ++i) {
    char b;
    asio::error_code ec;
    idle[i].read_some(asio::buffer(&b, 1), ec);
    EXPECT_TRUE(ec) << i;
  }
  // Four idle connections hold every slot; a paired device still gets in.
  auto client = Dial(listener->port(), server_id_->device_id());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE(events_.WaitAccepted());
  auto refused = events_.WaitRefused();  // it took the slot of the oldest
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->message().find("closed to make room"), std::string::npos) << refused->message();
}

TEST_F(TlsTest, RefusalsAreReportedAFewAtATimeThenSummarized) {
  ListenOptions opts;
  opts.max_unauthenticated = 1;
  opts.reports_per_interval = 2;
  opts.report_interval = 1000ms;
  auto listener = Listen(client_id_->device_id(), opts);
  ASSERT_TRUE(listener);
  asio::io_context raw_io;
  asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), listener->port());
  std::vector<asio::ip::tcp::socket> idle;
  for (int i = 0; i < 30; ++i) {
    idle.emplace_back(raw_io);
    asio::error_code ec;
    idle.back().connect(ep, ec);
    ASSERT_FALSE(ec);
  }
  // 29 connections made room for a newer one. A few are reported in full,
  // the rest in a summary at the end of each interval.
  std::vector<Status> reports;
  bool summarized = false;
  auto end = std::chrono::steady_clock::now() + 10s;
  while (!summarized && std::chrono::steady_clock::now() < end) {
    auto r = events_.WaitRefused(100ms);
    if (!r) continue;
    reports.push_back(*r);
    summarized = r->message().rfind("and ", 0) == 0;
  }
  ASSERT_TRUE(summarized);
  const std::string& summary = reports.back().message();
  EXPECT_NE(summary.find("closed to make room (over 1 unauthenticated connections)"), std::string::npos)
      << summary;
  EXPECT_LE(reports.size(), 3u * 3) << summary;  // at most three intervals on a slow machine
}

TEST_F(TlsTest, OutOfDescriptorsTheListenerPausesInsteadOfSpinning) {
  ListenOptions opts;
  opts.reports_per_interval = 100000;  // every accept error reported: they are counted below
  opts.tls.handshake_timeout = 30s;
  auto listener = Listen(client_id_->device_id(), opts);
  ASSERT_TRUE(listener);
  asio::io_context raw_io;
  asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), listener->port());
  std::vector<asio::ip::tcp::socket> waiting;
  for (int i = 0; i < 20; ++i) {
    waiting.emplace_back(raw_io);
    asio::error_code ec;
    waiting.back().open(asio::ip::tcp::v4(), ec);
    ASSERT_FALSE(ec);
  }
  // No descriptor left beyond a few: the listener accepts some, then fails.
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int highest = waiting.back().native_handle();
  struct rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(highest) + 4;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  for (auto& s : waiting) {
    asio::error_code ec;
    s.connect(ep, ec);  // the kernel's backlog takes them
    ASSERT_FALSE(ec);
  }
  struct rusage before {
  }, after{};
  getrusage(RUSAGE_SELF, &before);
  std::this_thread::sleep_for(1600ms);
  getrusage(RUSAGE_SELF, &after);
  auto cpu = [](const struct rusage& r) {
    return std::chrono::seconds(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           std::chrono::microseconds(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
  };
  std::vector<Status> errors;
  for (Status& st : events_.TakeRefused())
    if (st.message().find("accept on port") != std::string::npos) errors.push_back(st);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  // Paused 100, 200, 400, 800 ms: a handful of failures, no spinning.
  ASSERT_GE(errors.size(), 2u);
  EXPECT_LE(errors.size(), 8u) << errors.back().message();
  EXPECT_NE(errors.front().message().find("accepting again in 100ms"), std::string::npos)
      << errors.front().message();
  EXPECT_LT(cpu(after) - cpu(before), 500ms);
  // Descriptors again: the listener accepts (within the longest pause).
  waiting.clear();
  auto client = Dial(listener->port(), server_id_->device_id());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE(events_.WaitAccepted());
}

}  // namespace
}  // namespace entrysync
