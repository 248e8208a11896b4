// ControlServer: the daemon's end of the control channel (docs/control.md).
//
// Listens on the Unix stream socket LIBRARY/control.sock (mode 0600) and
// serves requests one at a time on one thread of its own, whatever the
// number of clients: a long request (a rescan of a large folder) makes the
// next client wait in the socket's backlog. A connection may carry several
// requests, one after another. Connections from another user (SO_PEERCRED)
// are closed unread, unless from root. A request line longer than
// kMaxControlRequest is answered with an error and ends the connection; a
// line that does not decode is answered with an error and the connection
// goes on. A connection idle for 30 s between requests is closed.
//
// Thread safety: Start, Stop and the destructor may be called from any one
// thread (not the server's); the handler runs on the server's thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "api/control_protocol.h"

namespace entrysync {

// Runs one request; calls `progress` for each progress line to send, and
// returns the final reply (a result or an error). Runs on the server's
// thread.
using ControlHandler =
    std::function<ControlReply(const ControlRequest& request, const std::function<void(uint64_t)>& progress)>;

class ControlServer {
 public:
  // LIBRARY/control.sock as an absolute path; "" when it does not fit a Unix
  // socket address.
  static std::string SocketPath(const std::string& library_dir);

  // Creates LIBRARY/control.sock (replacing a file left there: REQUIRES the
  // caller holds the library's process lock, which proves nobody serves it)
  // and starts serving with `handler`. IOError naming the socket when it
  // cannot be created.
  static Result<std::unique_ptr<ControlServer>> Start(const std::string& library_dir, ControlHandler handler);

  // Stop: waits for a request in progress to finish, closes the socket and
  // removes its file (unless another daemon replaced it since). Idempotent.
  ~ControlServer();
  void Stop();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }

 private:
  ControlServer(std::string path, int listen_fd, int wake_fd, ControlHandler handler);
  // Whether the file at path_ is still the socket this server made.
  bool OwnsFile() const;
  void Run();
  // Serves one connection from process `pid` until it ends, it fails, or
  // Stop. Logs each request and its outcome.
  void Serve(int fd, int pid);
  // Reads one line into `line`: true on a line; false on the end of the
  // connection, an idle timeout, Stop, or a line too long (answered).
  bool ReadLine(int fd, std::string& buffer, std::string& line);

  const std::string path_;
  const int listen_fd_;
  const int wake_fd_;  // an eventfd: readable once Stop was called
  dev_t dev_ = 0;      // the socket file's, as made
  ino_t ino_ = 0;
  const ControlHandler handler_;
  std::thread thread_;
};

}  // namespace entrysync
