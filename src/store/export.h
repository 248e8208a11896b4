// Canonical export and digest of one owner's entries.
//
// The export is one line per entry (tombstones included), sorted by uuid,
// tab-separated, with tabs, newlines and backslashes in text escaped as
// \t, \n and \\:
//   uuid parent location path kind size inode created_ns modified_ns
//   accessed_ns extension content_hash seq deleted
// `parent` is "-" for a location root; `path` is relative to the location
// root ("." for the root itself). Two libraries hold the same rows of an
// owner exactly when their exports, and so their digests, are equal.
#pragma once

#include <functional>
#include <string>

#include "store/library.h"

namespace entrysync {

// Calls `line` for each export line (without the trailing newline).
Status ExportOwner(Library& lib, DeviceRowId owner, const std::function<void(const std::string&)>& line);

struct Digest {
  std::string sha256_hex;  // SHA-256 of the export, every line ending in '\n'
  uint64_t entries = 0;    // lines hashed (tombstones included)
  uint64_t live = 0;       // of which not deleted
};
Result<Digest> DigestOwner(Library& lib, DeviceRowId owner);

}  // namespace entrysync
