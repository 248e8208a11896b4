// The records entrysync moves between devices.
#pragma once

#include <cstdint>
#include <string>

#include "entrysync/export.h"
#include "entrysync/types.h"

namespace entrysync {

enum class EntryKind : uint8_t { kFile = 0, kDir = 1, kSymlink = 2 };

ENTRYSYNC_EXPORT const char* EntryKindName(EntryKind kind);  // "file", "dir", "symlink"

// One file, folder or symlink as owned by one device. The owner is implied by
// context (the batch or table the record belongs to).
struct EntryRecord {
  Uuid uuid;
  Uuid parent;    // Nil for the root entry of a location
  Uuid location;  // uuid of the location the entry belongs to
  std::string name;
  std::string extension;  // without the dot; empty when none
  EntryKind kind = EntryKind::kFile;
  uint64_t size = 0;
  uint64_t inode = 0;
  int64_t created_ns = 0;  // nanoseconds since the Unix epoch
  int64_t modified_ns = 0;
  int64_t accessed_ns = 0;
  std::string content_hash;  // empty when not computed
  Seq seq;
  bool deleted = false;

  bool operator==(const EntryRecord&) const = default;
};

// One indexed folder of one owner.
struct LocationRecord {
  Uuid uuid;
  std::string root_path;  // absolute path on the owner's device
  std::string name;
  Seq seq;
  bool deleted = false;

  bool operator==(const LocationRecord&) const = default;
};

}  // namespace entrysync
