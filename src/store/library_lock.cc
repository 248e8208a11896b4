#include "store/library_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace entrysync {
namespace {

std::string LockPath(const std::string& dir) { return (std::filesystem::path(dir) / "lock").string(); }

std::optional<LockHolder> ReadHolder(int fd) {
  char buf[256];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  LockHolder h;
  if (n <= 0) return h;
  buf[n] = '\0';
  char* rest = nullptr;
  h.pid = static_cast<int>(std::strtol(buf, &rest, 10));
  if (rest && *rest == ' ') h.what = std::string(rest + 1);
  while (!h.what.empty() && h.what.back() == '\n') h.what.pop_back();
  return h;
}

std::string Describe(const std::optional<LockHolder>& h) {
  if (!h || h->pid <= 0) return "another process";
  return "pid " + std::to_string(h->pid) + (h->what.empty() ? "" : " (" + h->what + ")");
}

}  // namespace

Result<std::unique_ptr<LibraryLock>> LibraryLock::Acquire(const std::string& dir, const std::string& what) {
  std::string path = LockPath(dir);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IOError("cannot open " + path + ": " + std::generic_category().message(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::optional<LockHolder> h = ReadHolder(fd);
    ::close(fd);
    if (err == EWOULDBLOCK) return Aborted("library " + dir + " is in use by " + Describe(h));
    return IOError("cannot lock " + path + ": " + std::generic_category().message(err));
  }
  std::string text = std::to_string(::getpid()) + " " + what + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    int err = errno;
    ::close(fd);
    return IOError("cannot write " + path + ": " + std::generic_category().message(err));
  }
  return std::unique_ptr<LibraryLock>(new LibraryLock(fd));
}

std::optional<LockHolder> LibraryLock::Holder(const std::string& dir) {
  int fd = ::open(LockPath(dir).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<LockHolder> h;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    h = ReadHolder(fd);
    if (!h) h = LockHolder{};
  }
  ::close(fd);  // drops our shared lock, if we got it
  return h;
}

LibraryLock::~LibraryLock() {
  // The pid stays in the file: harmless, Holder trusts the lock, not the text.
  ::close(fd_);
}

}  // namespace entrysync
