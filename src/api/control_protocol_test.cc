// The control channel: its messages, and a server and client on a real Unix
// socket in a temp folder, with a handler standing in for the Engine.
#include "api/control_protocol.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "api/control_client.h"
#include "api/control_server.h"
#include "base/test_util.h"

namespace entrysync {
namespace {

ScanReport SampleReport() {
  ScanReport r;
  r.location = Location{.uuid = NewUuidV7(),
                        .owner = NewUuidV7(),
                        .owner_name = "alpha",
                        .root_path = "/data/a b",
                        .name = "a b"};
  r.entries = 12;
  r.added = 3;
  r.modified = 2;
  r.deleted = 1;
  r.unchanged = 6;
  r.bulk = true;
  r.max_seq = Seq(42);
  r.walk_seconds = 0.25;
  r.commit_seconds = 0.5;
  r.warnings = {"cannot read /data/a b/x: permission denied"};
  return r;
}

DeviceId SampleId() { return *DeviceId::Parse(std::string(64, 'a')); }

TEST(ControlProtocolTest, RequestsRoundTrip) {
  std::vector<ControlRequest> requests = {
      AddLocationRequest("/data/new"),
      RescanRequest(NewUuidV7()),
      PairRequest("beta", SampleId(), "127.0.0.1:7000"),
      UnpairRequest(SampleId()),
      ImportSnapshotRequest("/tmp/a.snap", std::string(64, 'f')),
  };
  for (const auto& r : requests) {
    auto line = EncodeRequest(r);
    ASSERT_TRUE(line.ok()) << line.status().ToString();
    ASSERT_EQ(line->back(), '\n');
    EXPECT_EQ(line->find('\n'), line->size() - 1);
    auto back = DecodeRequest(std::string_view(*line).substr(0, line->size() - 1));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->op, r.op);
    EXPECT_EQ(back->path, r.path);
    EXPECT_EQ(back->location, r.location);
    EXPECT_EQ(back->name, r.name);
    EXPECT_EQ(back->device, r.device);
    EXPECT_EQ(back->address, r.address);
    EXPECT_EQ(back->sha256, r.sha256);
  }
}

TEST(ControlProtocolTest, BadRequestsAreRefusedWithTheReason) {
  struct Case {
    const char* line;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {"{not json", "not JSON"},
           {"[1,2]", "not a JSON object"},
           {"{}", "no \"op\""},
           {R"({"op":"format_disk"})", "unknown control op 'format_disk'"},
           {R"({"op":"rescan"})", "rescan needs \"location\""},
           {R"({"op":"rescan","location":"nope"})", "not an id: nope"},
           {R"({"op":"unpair","device_id":7})", "unpair needs \"device_id\""},
           {R"({"op":"add_location","path":"relative/dir"})", "must be absolute"},
       }) {
    auto r = DecodeRequest(c.line);
    ASSERT_FALSE(r.ok()) << c.line;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << c.line;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << c.line << " -> " << r.status().message();
  }
  // Text JSON cannot carry is refused before anything is sent.
  auto bad = EncodeRequest(AddLocationRequest("/data/\xff"));
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
}

TEST(ControlProtocolTest, RepliesRoundTrip) {
  auto strip = [](const std::string& s) { return s.substr(0, s.size() - 1); };
  auto progress = DecodeReply(strip(EncodeReply(ProgressReply(4096))), ControlOp::kRescan);
  ASSERT_TRUE(progress.ok());
  EXPECT_FALSE(progress->final());
  EXPECT_EQ(progress->entries, 4096u);

  ScanReport r = SampleReport();
  auto scan = DecodeReply(strip(EncodeReply(ResultReply(r))), ControlOp::kRescan);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  const auto& got = std::get<ScanReport>(scan->value);
  EXPECT_EQ(got.location.uuid, r.location.uuid);
  EXPECT_EQ(got.location.root_path, r.location.root_path);
  EXPECT_EQ(got.added, 3u);
  EXPECT_EQ(got.max_seq, Seq(42));
  EXPECT_TRUE(got.bulk);
  EXPECT_EQ(got.warnings, r.warnings);

  Device d;
  d.uuid = NewUuidV7();
  d.name = "beta";
  d.device_id = SampleId();
  d.address = "h:1";
  d.paired = true;
  auto dev = DecodeReply(strip(EncodeReply(ResultReply(d))), ControlOp::kPair);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_EQ(std::get<Device>(dev->value).device_id, d.device_id);
  EXPECT_TRUE(std::get<Device>(dev->value).paired);

  SnapshotImport si;
  si.snapshot.owner = NewUuidV7();
  si.snapshot.epoch = Epoch(0xFFFFFFFFFFFFFFF0ull);
  si.snapshot.sha256 = std::string(64, 'c');
  si.rows_written = 10;
  auto imp = DecodeReply(strip(EncodeReply(ResultReply(si))), ControlOp::kImportSnapshot);
  ASSERT_TRUE(imp.ok()) << imp.status().ToString();
  EXPECT_EQ(std::get<SnapshotImport>(imp->value).snapshot.epoch, si.snapshot.epoch);
  EXPECT_EQ(std::get<SnapshotImport>(imp->value).rows_written, 10u);

  auto err =
      DecodeReply(strip(EncodeReply(ErrorReply(NotFound("location x is unknown")))), ControlOp::kRescan);
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->kind, ControlReply::Kind::kError);
  EXPECT_EQ(err->error.code(), Code::kNotFound);
  EXPECT_EQ(err->error.message(), "location x is unknown");

  EXPECT_EQ(DecodeReply("{\"result\":{}}", ControlOp::kRescan).status().code(), Code::kCorruption);
  EXPECT_EQ(DecodeReply("garbage", ControlOp::kRescan).status().code(), Code::kCorruption);
  EXPECT_EQ(DecodeReply(R"({"error":{"code":"weird","message":"m"}})", ControlOp::kRescan).status().code(),
            Code::kCorruption);
}

// A raw client: sends `text`, returns every line the server sends until it
// closes the connection or `lines` lines arrived.
std::vector<std::string> RawExchange(const std::string& socket_path, const std::string& text, size_t lines) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, socket_path.c_str());
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  size_t at = 0;
  while (at < text.size()) {
    ssize_t n = ::send(fd, text.data() + at, text.size() - at, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close on an oversized line
    at += static_cast<size_t>(n);
  }
  std::vector<std::string> out;
  std::string buf;
  char chunk[4096];
  while (out.size() < lines) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      out.push_back(buf.substr(0, nl));
      buf.erase(0, nl + 1);
    }
  }
  ::close(fd);
  return out;
}

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ControlServer::Start(tmp_.path(), [this](const ControlRequest& r, const auto& progress) {
      handled_.push_back(r.op);
      if (r.op == ControlOp::kUnpair) return ErrorReply(NotFound("no device " + r.device.ToShortString()));
      progress(4096);
      progress(8192);
      return ResultReply(SampleReport());
    });
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }

  testing::TempDir tmp_;
  std::vector<ControlOp> handled_;  // on the server's thread; read after Stop
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlServerTest, SocketIsOwnerOnlyAndRemovedOnStop) {
  struct stat st {};
  ASSERT_EQ(::stat(server_->path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(server_->path(), tmp_.Sub("control.sock"));
  server_->Stop();
  EXPECT_NE(::stat(tmp_.Sub("control.sock").c_str(), &st), 0);
}

TEST_F(ControlServerTest, ReplacesAStaleSocket) {
  server_.reset();  // as if killed: leave a file behind
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, tmp_.Sub("control.sock").c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);  // nobody listens on it now
  SetUp();
  auto reply = CallDaemon({tmp_.path(), 1}, RescanRequest(NewUuidV7()), nullptr);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->kind, ControlReply::Kind::kResult);
}

TEST_F(ControlServerTest, ClientGetsProgressThenTheResultOrTheError) {
  std::vector<uint64_t> seen;
  auto reply =
      CallDaemon({tmp_.path(), 1}, RescanRequest(NewUuidV7()), [&](uint64_t n) { seen.push_back(n); });
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(seen, (std::vector<uint64_t>{4096, 8192}));
  EXPECT_EQ(std::get<ScanReport>(reply->value).max_seq, Seq(42));

  auto refused = CallDaemon({tmp_.path(), 1}, UnpairRequest(SampleId()), nullptr);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->error.code(), Code::kNotFound);
  EXPECT_EQ(refused->error.message(), "no device " + SampleId().ToShortString());
}

TEST_F(ControlServerTest, BadLinesGetErrorsAndTheConnectionGoesOn) {
  std::string rescan = *EncodeRequest(RescanRequest(NewUuidV7()));
  auto lines = RawExchange(server_->path(), "{oops\n{\"op\":\"format_disk\"}\n" + rescan, 5);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_NE(lines[0].find("\"code\":\"invalid argument\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("not JSON"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("unknown control op 'format_disk'"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("\"progress\""), std::string::npos) << lines[2];
  EXPECT_NE(lines[4].find("\"result\""), std::string::npos) << lines[4];
  server_->Stop();
  EXPECT_EQ(handled_, std::vector<ControlOp>{ControlOp::kRescan});
}

TEST_F(ControlServerTest, OversizedLineIsRefusedAndEndsTheConnection) {
  std::string huge(kMaxControlRequest + 10, 'x');
  auto lines = RawExchange(server_->path(), huge + "\n", 2);
  ASSERT_EQ(lines.size(), 1u);  // the error, then the server closed
  EXPECT_NE(lines[0].find("control request longer than 65536 bytes"), std::string::npos) << lines[0];
  server_->Stop();
  EXPECT_TRUE(handled_.empty());
}

TEST(ControlClientTest, NoDaemonListeningIsOneLineNamingPidAndSocket) {
  testing::TempDir tmp;
  auto r = CallDaemon({tmp.path(), 4242}, RescanRequest(NewUuidV7()), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIOError);
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("pid 4242"), std::string::npos) << m;
  EXPECT_NE(m.find(tmp.Sub("control.sock")), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

}  // namespace
}  // namespace entrysync
