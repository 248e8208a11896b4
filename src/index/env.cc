#include "index/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

namespace entrysync {
namespace {

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " " + path + ": " + std::generic_category().message(err);
  if (err == ENOENT || err == ENOTDIR) return NotFound(msg);
  if (err == EACCES || err == EPERM) return PermissionDenied(msg);
  return IOError(msg);
}

int64_t Ns(const struct statx_timestamp& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

class PosixEnv : public Env {
 public:
  Status Stat(const std::string& path, FileStat* out) override {
    struct statx sx;
    if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0)
      return ErrnoStatus("stat", path, errno);
    if (S_ISDIR(sx.stx_mode))
      out->kind = EntryKind::kDir;
    else if (S_ISLNK(sx.stx_mode))
      out->kind = EntryKind::kSymlink;
    else
      out->kind = EntryKind::kFile;
    out->size = out->kind == EntryKind::kDir ? 0 : sx.stx_size;
    out->inode = sx.stx_ino;
    out->device = (static_cast<uint64_t>(sx.stx_dev_major) << 32) | sx.stx_dev_minor;
    out->created_ns =
        (sx.stx_mask & STATX_BTIME) && sx.stx_btime.tv_sec != 0 ? Ns(sx.stx_btime) : Ns(sx.stx_ctime);
    out->modified_ns = Ns(sx.stx_mtime);
    out->accessed_ns = Ns(sx.stx_atime);
    return Status::Ok();
  }

  Status ListDir(const std::string& path, std::vector<std::string>* names) override {
    names->clear();
    std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(path.c_str()), closedir);
    if (!dir) return ErrnoStatus("list", path, errno);
    for (;;) {
      errno = 0;
      // One stream per call: glibc's readdir is safe on distinct streams.
      struct dirent* de = readdir(dir.get());  // NOLINT(concurrency-mt-unsafe)
      if (de == nullptr) {
        if (errno != 0) return ErrnoStatus("list", path, errno);
        break;
      }
      if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
      names->emplace_back(de->d_name);
    }
    return Status::Ok();
  }

  Result<std::string> RealPath(const std::string& path) override {
    std::unique_ptr<char, void (*)(void*)> p(realpath(path.c_str(), nullptr), free);
    if (!p) return ErrnoStatus("resolve", path, errno);
    return std::string(p.get());
  }
};

}  // namespace

Env* DefaultEnv() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

}  // namespace entrysync
