// Env: the filesystem as the indexer sees it.
//
// The indexer walks through this narrow interface so tests can inject faults
// (a folder that vanishes mid-walk, an unreadable folder) with EnvWrapper.
// Implementations must be thread-safe for concurrent calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "entrysync/record.h"
#include "entrysync/status.h"

namespace entrysync {

struct FileStat {
  EntryKind kind = EntryKind::kFile;
  uint64_t size = 0;
  uint64_t inode = 0;
  uint64_t device = 0;     // st_dev: identifies the filesystem
  int64_t created_ns = 0;  // birth time where the filesystem has it, else ctime
  int64_t modified_ns = 0;
  int64_t accessed_ns = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  // lstat-like: never follows a symlink. NotFound when the path is gone.
  virtual Status Stat(const std::string& path, FileStat* out) = 0;
  // The names in a folder, without "." and "..". NotFound when the folder is
  // gone, PermissionDenied when it cannot be read.
  virtual Status ListDir(const std::string& path, std::vector<std::string>* names) = 0;
  // Absolute canonical path (symlinks resolved). NotFound when missing.
  virtual Result<std::string> RealPath(const std::string& path) = 0;
};

// The real filesystem. Never null; lives forever.
Env* DefaultEnv();

// Forwards every call to a target Env; override one method to inject a fault.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Status Stat(const std::string& path, FileStat* out) override { return target_->Stat(path, out); }
  Status ListDir(const std::string& path, std::vector<std::string>* names) override {
    return target_->ListDir(path, names);
  }
  Result<std::string> RealPath(const std::string& path) override { return target_->RealPath(path); }

 private:
  Env* target_;
};

}  // namespace entrysync
