#include "index/indexer.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <unordered_map>
#include <utility>

namespace entrysync {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string BaseName(const std::string& path) {
  if (path == "/") return "/";
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// One item found on disk.
struct Found {
  std::string path;
  Uuid parent;
  std::string name;
  FileStat stat;
};

// Matches what the walk finds against the stored entries of a location.
class Matcher {
 public:
  explicit Matcher(std::vector<EntryRecord> existing) : old_(std::move(existing)) {
    matched_.assign(old_.size(), false);
    for (size_t i = 0; i < old_.size(); ++i) {
      by_path_.emplace(PathKey(old_[i].parent, old_[i].name), i);
      by_inode_.emplace(old_[i].inode, i);
      children_.emplace(old_[i].parent, i);
    }
  }

  // The stored entry that `f` continues, or -1 for a new one. Prefers the
  // same path with the same inode, then the same inode elsewhere (a move or
  // rename), then the same path with a new inode (a replaced file).
  ptrdiff_t Match(const Found& f) {
    auto path_it = by_path_.find(PathKey(f.parent, f.name));
    if (path_it != by_path_.end()) {
      size_t i = path_it->second;
      if (!matched_[i] && old_[i].inode == f.stat.inode && old_[i].kind == f.stat.kind) return Take(i);
    }
    auto [lo, hi] = by_inode_.equal_range(f.stat.inode);
    for (auto it = lo; it != hi; ++it) {
      size_t i = it->second;
      if (!matched_[i] && old_[i].kind == f.stat.kind) return Take(i);
    }
    if (path_it != by_path_.end() && !matched_[path_it->second] && old_[path_it->second].kind == f.stat.kind)
      return Take(path_it->second);
    return -1;
  }

  // Keeps the stored subtree under `folder` as it is (it cannot be read now).
  void KeepSubtree(const Uuid& folder) {
    std::vector<Uuid> stack{folder};
    while (!stack.empty()) {
      Uuid u = stack.back();
      stack.pop_back();
      auto [lo, hi] = children_.equal_range(u);
      for (auto it = lo; it != hi; ++it) {
        if (matched_[it->second]) continue;
        matched_[it->second] = true;
        kept_.push_back(it->second);
        stack.push_back(old_[it->second].uuid);
      }
    }
  }

  const EntryRecord& old(size_t i) const { return old_[i]; }
  size_t kept() const { return kept_.size(); }

  // Stored live entries nothing on disk matched: they were removed.
  std::vector<EntryRecord> Unmatched() const {
    std::vector<EntryRecord> out;
    for (size_t i = 0; i < old_.size(); ++i)
      if (!matched_[i]) out.push_back(old_[i]);
    return out;
  }

 private:
  static std::string PathKey(const Uuid& parent, const std::string& name) {
    std::string k(reinterpret_cast<const char*>(parent.bytes.data()), 16);
    k += name;
    return k;
  }
  size_t Take(size_t i) {
    matched_[i] = true;
    return i;
  }

  std::vector<EntryRecord> old_;
  std::vector<bool> matched_;
  std::vector<size_t> kept_;
  std::unordered_map<std::string, size_t> by_path_;
  std::unordered_multimap<uint64_t, size_t> by_inode_;
  std::unordered_multimap<Uuid, size_t> children_;
};

EntryRecord ToRecord(const Uuid& uuid, const Found& f) {
  EntryRecord r;
  r.uuid = uuid;
  r.parent = f.parent;
  r.name = f.name;
  r.extension = ExtensionOf(f.name, f.stat.kind);
  r.kind = f.stat.kind;
  r.size = f.stat.size;
  r.inode = f.stat.inode;
  r.created_ns = f.stat.created_ns;
  r.modified_ns = f.stat.modified_ns;
  r.accessed_ns = f.stat.accessed_ns;
  return r;
}

// True when what matters for sync differs. Access times are not compared:
// reading a file is not a change worth a seq.
bool Differs(const EntryRecord& a, const EntryRecord& b) {
  return a.parent != b.parent || a.name != b.name || a.kind != b.kind || a.size != b.size ||
         a.inode != b.inode || a.created_ns != b.created_ns || a.modified_ns != b.modified_ns;
}

// Walks the tree under `root_path` depth-first, parents before children.
// `visit` returns the uuid given to a found item (so its children can refer
// to it); `unreadable` is told of folders whose listing failed.
class Walker {
 public:
  Walker(Env* env, const IndexOptions& opts, std::vector<std::string>* errors)
      : env_(env), opts_(opts), errors_(errors) {}

  Status Walk(const std::string& root_path, const std::function<Uuid(const Found&)>& visit,
              const std::function<void(const Uuid&)>& unreadable) {
    Found root;
    root.path = root_path;
    root.parent = Uuid::Nil();
    root.name = BaseName(root_path);
    ES_RETURN_IF_ERROR(env_->Stat(root_path, &root.stat));
    if (root.stat.kind != EntryKind::kDir) return InvalidArgument(root_path + " is not a folder");
    std::vector<std::pair<std::string, Uuid>> stack;  // folders to list
    Uuid root_uuid = visit(root);
    seen_++;
    visited_.insert({root.stat.device, root.stat.inode});
    stack.emplace_back(root_path, root_uuid);
    std::vector<std::string> names;
    while (!stack.empty()) {
      auto [dir, dir_uuid] = std::move(stack.back());
      stack.pop_back();
      Status s = env_->ListDir(dir, &names);
      if (!s.ok()) {
        if (s.code() != Code::kNotFound) {
          errors_->push_back(s.message());
          unreadable(dir_uuid);
        }
        continue;  // a folder removed mid-walk simply has no children now
      }
      std::string prefix = dir == "/" ? "/" : dir + "/";
      size_t first_child_dir = stack.size();
      for (std::string& name : names) {
        Found f;
        f.path = prefix + name;
        if (!env_->Stat(f.path, &f.stat).ok()) continue;  // vanished since listed
        f.parent = dir_uuid;
        f.name = std::move(name);
        if (f.stat.kind == EntryKind::kDir && !visited_.insert({f.stat.device, f.stat.inode}).second) {
          errors_->push_back("skipped " + f.path + ": folder already visited (loop)");
          continue;
        }
        Uuid u = visit(f);
        if (++seen_ % 4096 == 0 && opts_.progress) opts_.progress(seen_);
        if (f.stat.kind == EntryKind::kDir) stack.emplace_back(std::move(f.path), u);
      }
      // Visit child folders in listing order.
      std::reverse(stack.begin() + static_cast<ptrdiff_t>(first_child_dir), stack.end());
    }
    if (opts_.progress) opts_.progress(seen_);
    return Status::Ok();
  }

 private:
  Env* env_;
  const IndexOptions& opts_;
  std::vector<std::string>* errors_;
  uint64_t seen_ = 0;
  std::set<std::pair<uint64_t, uint64_t>> visited_;
};

}  // namespace

std::string ExtensionOf(const std::string& name, EntryKind kind) {
  if (kind == EntryKind::kDir) return "";
  size_t dot = name.find_last_of('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == name.size()) return "";
  std::string ext = name.substr(dot + 1);
  for (char& c : ext)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return ext;
}

Result<IndexReport> Indexer::AddLocation(const std::string& path, const IndexOptions& options) {
  auto real = env_->RealPath(path);
  if (!real.ok()) return real.status();
  FileStat st;
  ES_RETURN_IF_ERROR(env_->Stat(*real, &st));
  if (st.kind != EntryKind::kDir) return InvalidArgument(*real + " is not a folder");
  if (lib_.FindLocalLocationByPath(*real).ok()) return AlreadyExists(*real + " is already a location");

  IndexReport report;
  auto t0 = Clock::now();
  std::vector<EntryRecord> rows;
  Walker walker(env_, options, &report.errors);
  ES_RETURN_IF_ERROR(walker.Walk(
      *real,
      [&](const Found& f) {
        rows.push_back(ToRecord(NewUuidV7(), f));
        return rows.back().uuid;
      },
      [](const Uuid&) {}));
  report.walk_seconds = Since(t0);

  // The location row and its entries are two transactions; a failure of the
  // second leaves an empty location that a rescan fills.
  ES_ASSIGN_OR_RETURN(report.location, tm_.AddLocation(*real, BaseName(*real)));
  auto t1 = Clock::now();
  ES_ASSIGN_OR_RETURN(BulkIndexComplete ev, tm_.CommitBulkEntries(report.location, rows));
  report.commit_seconds = Since(t1);
  report.bulk = true;
  report.added = report.entries = rows.size();
  report.max_seq = ev.max_seq;
  return report;
}

Result<IndexReport> Indexer::Rescan(const LocationInfo& location, const IndexOptions& options) {
  if (location.owner != lib_.local_device())
    return InvalidArgument(location.record.root_path + " is a location of another device");
  IndexReport report;
  report.location = location;
  auto t0 = Clock::now();
  ES_ASSIGN_OR_RETURN(std::vector<EntryRecord> existing, lib_.LoadLocationEntries(location.id, false));
  Matcher matcher(std::move(existing));
  std::vector<EntryRecord> changes;
  uint64_t live = 0;
  Walker walker(env_, options, &report.errors);
  ES_RETURN_IF_ERROR(walker.Walk(
      location.record.root_path,
      [&](const Found& f) {
        ++live;
        ptrdiff_t i = matcher.Match(f);
        if (i < 0) {
          changes.push_back(ToRecord(NewUuidV7(), f));
          report.added++;
          return changes.back().uuid;
        }
        const EntryRecord& old = matcher.old(static_cast<size_t>(i));
        EntryRecord now = ToRecord(old.uuid, f);
        if (Differs(old, now)) {
          changes.push_back(std::move(now));
          report.modified++;
        } else {
          report.unchanged++;
        }
        return old.uuid;
      },
      [&](const Uuid& folder) { matcher.KeepSubtree(folder); }));
  report.unchanged += matcher.kept();
  live += matcher.kept();
  for (EntryRecord& gone : matcher.Unmatched()) {
    gone.deleted = true;
    changes.push_back(std::move(gone));
    report.deleted++;
  }
  report.walk_seconds = Since(t0);
  report.entries = live;

  auto t1 = Clock::now();
  if (changes.size() > options.bulk_threshold) {
    ES_ASSIGN_OR_RETURN(BulkIndexComplete ev, tm_.CommitBulkEntries(location, changes));
    report.bulk = true;
    report.max_seq = ev.max_seq;
  } else if (!changes.empty()) {
    ES_ASSIGN_OR_RETURN(report.max_seq, tm_.CommitChanges(location, changes));
  } else {
    report.max_seq = lib_.LocalDevice()->max_seq;
  }
  report.commit_seconds = Since(t1);
  return report;
}

}  // namespace entrysync
