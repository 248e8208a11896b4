#include "store/commit_notice.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace entrysync {

std::string CommitNoticePath(const std::string& library_dir) {
  std::error_code ec;
  std::string path = (std::filesystem::absolute(library_dir, ec) / "notify.sock").lexically_normal().string();
  if (ec || path.size() >= sizeof(sockaddr_un::sun_path)) return "";
  return path;
}

CommitNotifier::~CommitNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

void CommitNotifier::Notify() {
  if (path_.empty()) return;
  if (fd_ < 0) fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  char c = 'c';
  // ENOENT/ECONNREFUSED: no daemon. EAGAIN: it has notices queued already.
  (void)::sendto(fd_, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
}

}  // namespace entrysync
