#include "api/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "api/control_server.h"

namespace entrysync {

namespace {

constexpr int kConnectTimeoutSec = 5;

// Closes the fd when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<ControlReply> CallDaemon(const DaemonRef& daemon, const ControlRequest& request,
                                const std::function<void(uint64_t)>& progress) {
  ES_ASSIGN_OR_RETURN(std::string line, EncodeRequest(request));
  const std::string path = ControlServer::SocketPath(daemon.library_dir);
  const std::string who =
      "the daemon (pid " + std::to_string(daemon.pid) + ") that holds library " + daemon.library_dir;
  if (path.empty())
    return IOError(who + " cannot be reached: the path of control.sock is too long for a socket");
  auto no_answer = [&](const std::string& why) {
    return IOError(who + " does not answer on " + path + ": " + why);
  };

  Fd sock{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (sock.fd < 0) return no_answer(std::strerror(errno));
  // For a Unix socket, the send timeout bounds connect too (a full backlog).
  timeval tv{kConnectTimeoutSec, 0};
  ::setsockopt(sock.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int rc;
  do {
    rc = ::connect(sock.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return no_answer(errno == EAGAIN ? "timed out" : std::strerror(errno));

  size_t at = 0;
  while (at < line.size()) {
    ssize_t n = ::send(sock.fd, line.data() + at, line.size() - at, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return no_answer(n < 0 && errno == EAGAIN ? "timed out" : std::strerror(errno));
    at += static_cast<size_t>(n);
  }

  const std::string op = ControlOpName(request.op);
  std::string buffer;
  char chunk[16 * 1024];
  for (;;) {
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      ES_ASSIGN_OR_RETURN(ControlReply reply,
                          DecodeReply(std::string_view(buffer).substr(0, nl), request.op));
      buffer.erase(0, nl + 1);
      if (reply.final()) return reply;
      if (progress) progress(reply.entries);
    }
    if (buffer.size() > kMaxControlReply) return Corruption(who + " sent a reply line longer than 16 MiB");
    ssize_t got = ::recv(sock.fd, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      return Aborted(who + " closed the control connection before it answered " + op +
                     " (it may or may not have done it)");
    buffer.append(chunk, static_cast<size_t>(got));
  }
}

}  // namespace entrysync
