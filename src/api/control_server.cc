#include "api/control_server.h"

#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

namespace entrysync {

namespace {

constexpr int kIdleMs = 30'000;        // between two requests of one connection
constexpr int kSendTimeoutSec = 10;    // a client that stops reading its replies
constexpr char kTmpSuffix[] = ".new";  // bound here, then renamed into place

bool Fits(const std::string& path) { return path.size() < sizeof(sockaddr_un{}.sun_path); }

// Writes all of `text`; false when the client went away or stopped reading.
bool WriteAll(int fd, const std::string& text) {
  size_t at = 0;
  while (at < text.size()) {
    ssize_t n = ::send(fd, text.data() + at, text.size() - at, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

// The peer's pid when its uid may use this daemon (its own user, or root).
std::optional<pid_t> Allowed(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
  if (cred.uid == ::getuid() || cred.uid == 0) return cred.pid;
  spdlog::warn("control: refused a connection from uid {} (pid {})", cred.uid, cred.pid);
  return std::nullopt;
}

Status Fail(const std::string& what, const std::string& path) {
  return IOError("control socket " + path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

std::string ControlServer::SocketPath(const std::string& library_dir) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(library_dir, ec);
  std::string path = ((ec ? std::filesystem::path(library_dir) : dir) / "control.sock").string();
  return Fits(path + kTmpSuffix) ? path : "";
}

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& library_dir,
                                                            ControlHandler handler) {
  std::string path = SocketPath(library_dir);
  if (path.empty())
    return InvalidArgument("the path of " + library_dir + "/control.sock is too long for a socket");
  // Bound under another name, made owner-only, then renamed over whatever a
  // killed daemon left: no client ever sees a socket with wider permissions.
  std::string tmp = path + kTmpSuffix;
  ::unlink(tmp.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail("socket", path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, tmp.c_str(), tmp.size() + 1);
  auto fail = [&](const char* what) {
    Status s = Fail(what, path);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return fail("bind");
  if (::chmod(tmp.c_str(), 0600) != 0) return fail("chmod");
  if (::listen(fd, 64) != 0) return fail("listen");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename");
  int wake = ::eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    Status s = Fail("eventfd", path);
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  }
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(path), fd, wake, std::move(handler)));
}

ControlServer::ControlServer(std::string path, int listen_fd, int wake_fd, ControlHandler handler)
    : path_(std::move(path)), listen_fd_(listen_fd), wake_fd_(wake_fd), handler_(std::move(handler)) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) dev_ = st.st_dev, ino_ = st.st_ino;
  thread_ = std::thread([this] { Run(); });
}

ControlServer::~ControlServer() { Stop(); }

void ControlServer::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;  // an eventfd write of 1 cannot fail short of overflow
  thread_.join();
  if (OwnsFile()) ::unlink(path_.c_str());
  ::close(listen_fd_);
  ::close(wake_fd_);
}

bool ControlServer::OwnsFile() const {
  struct stat st {};
  return ::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
}

void ControlServer::Run() {
  pthread_setname_np(pthread_self(), "es-control");
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("control: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      spdlog::error("control: {} stopped listening", path_);
      return;
    }
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the client gave up meanwhile
    if (auto pid = Allowed(fd)) Serve(fd, *pid);
    ::close(fd);
  }
}

void ControlServer::Serve(int fd, int pid) {
  timeval tv{kSendTimeoutSec, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string buffer, line;
  bool open = true;  // false once a reply could not be written
  while (open && ReadLine(fd, buffer, line)) {
    auto request = DecodeRequest(line);
    if (!request.ok()) {
      open = WriteAll(fd, EncodeReply(ErrorReply(request.status())));
      continue;
    }
    auto progress = [&](uint64_t entries) {
      if (open) open = WriteAll(fd, EncodeReply(ProgressReply(entries)));
    };
    ControlReply reply = handler_(*request, progress);
    spdlog::info("control: {} for pid {}: {}", ControlOpName(request->op), pid,
                 reply.kind == ControlReply::Kind::kError ? reply.error.message() : "done");
    if (open) open = WriteAll(fd, EncodeReply(reply));
  }
}

bool ControlServer::ReadLine(int fd, std::string& buffer, std::string& line) {
  for (;;) {
    size_t nl = buffer.find('\n');
    size_t length = nl == std::string::npos ? buffer.size() : nl;
    if (length > kMaxControlRequest) {
      WriteAll(fd, EncodeReply(ErrorReply(InvalidArgument("control request longer than " +
                                                          std::to_string(kMaxControlRequest) + " bytes"))));
      return false;
    }
    if (nl != std::string::npos) {
      line.assign(buffer, 0, nl);
      buffer.erase(0, nl + 1);
      return true;
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, kIdleMs);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || fds[1].revents) return false;  // idle, or Stop
    char chunk[16 * 1024];
    ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(got));
  }
}

}  // namespace entrysync
