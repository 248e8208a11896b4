// Commit notices: how a daemon hears that another process committed to its
// library, without polling.
//
// A running daemon binds a Unix datagram socket at LIBRARY/notify.sock.
// Every Library connection of any process sends it one byte after each
// commit (from SQLite's WAL hook, so the commit is visible by then); a
// daemon's own connection does not (Library::SetCommitNotices(false)). No
// daemon, no socket: the send fails at once and nothing happens.
#pragma once

#include <string>

namespace entrysync {

// LIBRARY/notify.sock as an absolute path; "" when that path does not fit a
// Unix socket address (then no notices are sent or received).
std::string CommitNoticePath(const std::string& library_dir);

// Sends one notice, best effort and without blocking. Thread-compatible:
// each Library owns one CommitNotifier.
class CommitNotifier {
 public:
  explicit CommitNotifier(std::string path) : path_(std::move(path)) {}
  ~CommitNotifier();
  CommitNotifier(const CommitNotifier&) = delete;
  CommitNotifier& operator=(const CommitNotifier&) = delete;

  void Notify();

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace entrysync
