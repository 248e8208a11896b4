#include "store/export.h"

#include <algorithm>
#include <vector>

#include "base/hash.h"

namespace entrysync {
namespace {

struct Node {
  Uuid uuid;
  Uuid parent;
  std::string name;
};

void AppendEscaped(std::string* out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\t':
        *out += "\\t";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\\':
        *out += "\\\\";
        break;
      default:
        *out += c;
    }
  }
}

// The path of `r` relative to its location root, from the sorted node list.
std::string PathOf(const std::vector<Node>& nodes, const EntryRecord& r) {
  if (r.parent.is_nil()) return ".";
  std::vector<const std::string*> parts{&r.name};
  Uuid p = r.parent;
  for (size_t guard = 0; guard < nodes.size() + 1; ++guard) {
    auto it = std::lower_bound(nodes.begin(), nodes.end(), p,
                               [](const Node& n, const Uuid& u) { return n.uuid < u; });
    if (it == nodes.end() || it->uuid != p) {
      parts.push_back(nullptr);  // parent not held here (partially loaded)
      break;
    }
    if (it->parent.is_nil()) break;  // reached the location root
    parts.push_back(&it->name);
    p = it->parent;
  }
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (!path.empty()) path += '/';
    path += *it ? **it : std::string("?");
  }
  return path;
}

}  // namespace

Status ExportOwner(Library& lib, DeviceRowId owner, const std::function<void(const std::string&)>& line) {
  std::vector<Node> nodes;
  ES_RETURN_IF_ERROR(lib.ScanOwnerByUuid(owner, [&](EntryRecord&& r) {
    nodes.push_back({r.uuid, r.parent, std::move(r.name)});
    return true;
  }));
  std::string out;
  return lib.ScanOwnerByUuid(owner, [&](EntryRecord&& r) {
    out.clear();
    out += r.uuid.ToString();
    out += '\t';
    out += r.parent.is_nil() ? "-" : r.parent.ToString();
    out += '\t';
    out += r.location.ToString();
    out += '\t';
    AppendEscaped(&out, PathOf(nodes, r));
    out += '\t';
    out += EntryKindName(r.kind);
    for (int64_t v : {static_cast<int64_t>(r.size), static_cast<int64_t>(r.inode), r.created_ns,
                      r.modified_ns, r.accessed_ns}) {
      out += '\t';
      out += std::to_string(v);
    }
    out += '\t';
    AppendEscaped(&out, r.extension);
    out += '\t';
    out += r.content_hash.empty() ? "-" : HexEncode(r.content_hash.data(), r.content_hash.size());
    out += '\t';
    out += std::to_string(r.seq.value());
    out += '\t';
    out += r.deleted ? '1' : '0';
    line(out);
    return true;
  });
}

Result<Digest> DigestOwner(Library& lib, DeviceRowId owner) {
  Sha256 h;
  Digest d;
  ES_RETURN_IF_ERROR(ExportOwner(lib, owner, [&](const std::string& l) {
    h.Update(l);
    h.Update("\n", 1);
    d.entries++;
    if (l.back() == '0') d.live++;
  }));
  d.sha256_hex = h.FinishHex();
  return d;
}

}  // namespace entrysync
