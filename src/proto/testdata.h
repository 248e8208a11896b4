// Realistic synthetic entry trees for tests and benchmarks (header-only).
//
// GenerateTree() emulates an indexer walking a home folder with
// std::filesystem::recursive_directory_iterator: entries come in walk order
// (a folder's children mixed files/subfolders, recursing into a subfolder as
// soon as it is met), uuids are NewUuidV7() taken in that order, every entry
// belongs to one location, seqs increase by one. Folders have a flavour
// (photos, documents, source code, music, downloads) that drives names,
// extensions, sizes and times:
//   * names like IMG_2041.jpg, "report-final (3).docx", bar_test.cc,
//     "07 - Blue Water.mp3", Makefile, .gitignore;
//   * sizes log-uniform per type (source 200 B..40 KB, photos 1..8 MB, ...);
//   * modified times clustered per folder over five years; 60% of folders
//     have full-nanosecond times, the rest whole seconds (archives, FAT,
//     rsync without -N); created = modified for 60% of files, else earlier;
//     accessed = modified for half, else later (both with random ns);
//   * inodes allocated close together within a folder.
// Names, sizes and times are deterministic for a given seed; uuids are not
// (they come from the clock).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "entrysync/record.h"
#include "entrysync/types.h"

namespace entrysync::testdata {

struct TreeOptions {
  size_t count = 10000;
  uint64_t seed = 42;
  Uuid location = Uuid::Nil();  // Nil: a fresh NewUuidV7()
  int64_t first_seq = 1;
  double hash_fraction = 0.0;                    // files that carry a 32-byte content hash
  int64_t now_ns = 1718000000LL * 1000000000LL;  // June 2024
};

namespace internal {

inline const std::vector<std::string>& Words() {
  static const std::vector<std::string> w = {
      "report",  "final",        "budget",   "notes",   "meeting", "invoice", "scan",     "draft",  "summary",
      "project", "client",       "review",   "plan",    "design",  "letter",  "contract", "backup", "photo",
      "holiday", "family",       "berlin",   "paris",   "summer",  "winter",  "school",   "work",   "taxes",
      "receipt", "presentation", "proposal", "minutes", "agenda",  "resume",  "cover",    "thesis"};
  return w;
}
inline const std::vector<std::string>& CodeWords() {
  static const std::vector<std::string> w = {
      "foo",    "bar",    "util",    "main",    "parser", "lexer", "buffer", "stream", "socket", "server",
      "client", "config", "options", "logging", "string", "path",  "file",   "hash",   "crc",    "thread",
      "pool",   "queue",  "frame",   "batch",   "codec",  "index", "store",  "sync",   "node"};
  return w;
}

inline std::string Capitalize(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

class Generator {
 public:
  explicit Generator(const TreeOptions& o) : o_(o), rng_(o.seed) {
    location_ = o.location.is_nil() ? NewUuidV7() : o.location;
  }

  std::vector<EntryRecord> Run() {
    out_.reserve(o_.count);
    EntryRecord root = MakeDir(Uuid::Nil(), "home", 0);
    out_.push_back(root);
    while (out_.size() < o_.count) Walk(out_.front().uuid, 1, Flavor::kMixed);
    out_.resize(o_.count);
    for (size_t i = 0; i < out_.size(); ++i) out_[i].seq = Seq(o_.first_seq + int64_t(i));
    return std::move(out_);
  }

 private:
  enum class Flavor { kMixed, kPhotos, kDocs, kCode, kMusic, kDownloads };

  uint64_t Rand(uint64_t lo, uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  uint64_t LogUniform(double lo, double hi) {
    return static_cast<uint64_t>(lo * std::pow(hi / lo, Uniform()));
  }
  template <class V>
  const auto& Pick(const V& v) {
    return v[Rand(0, v.size() - 1)];
  }

  EntryRecord MakeDir(const Uuid& parent, std::string name, int depth) {
    EntryRecord e;
    e.uuid = NewUuidV7();
    e.parent = parent;
    e.location = location_;
    e.name = std::move(name);
    e.kind = EntryKind::kDir;
    e.size = 4096;
    e.inode = NextInode(true);
    SetTimes(&e, dir_time_ns_);
    return e;
  }

  uint64_t NextInode(bool jump) {
    inode_ += jump ? Rand(100, 50000) : Rand(1, 3);
    return inode_;
  }

  void SetTimes(EntryRecord* e, int64_t base_ns) {
    int64_t m = base_ns + static_cast<int64_t>(LogUniform(1, 3.0 * 86400)) * 1000000000LL;
    if (ns_precision_) m += static_cast<int64_t>(Rand(0, 999999999));
    e->modified_ns = m;
    e->created_ns = Uniform() < 0.6 ? m : m - static_cast<int64_t>(LogUniform(1e9, 30.0 * 86400 * 1e9));
    e->accessed_ns = Uniform() < 0.5 ? m : m + static_cast<int64_t>(LogUniform(1e9, 90.0 * 86400 * 1e9));
  }

  std::string FileName(Flavor f, std::string* ext, uint64_t* size) {
    switch (f) {
      case Flavor::kPhotos: {
        *ext = photo_ext_;
        *size = LogUniform(800e3, 8e6);
        std::string n = photo_prefix_ + std::to_string(photo_counter_++);
        if (Uniform() < 0.03) n += " (1)";
        return n + "." + *ext;
      }
      case Flavor::kCode: {
        *size = LogUniform(200, 40e3);
        double r = Uniform();
        if (r < 0.03) {
          *ext = "";
          return "Makefile";
        }
        if (r < 0.06) {
          *ext = "txt";
          return "CMakeLists.txt";
        }
        if (r < 0.08) {
          *ext = "";
          return ".gitignore";
        }
        if (r < 0.10) {
          *ext = "md";
          return "README.md";
        }
        std::string base = Pick(CodeWords());
        if (Uniform() < 0.5) base += "_" + Pick(CodeWords());
        if (Uniform() < 0.3) base += "_test";
        *ext = Pick(std::vector<std::string>{"cc", "cc", "h", "h", "py", "go", "rs"});
        return base + "." + *ext;
      }
      case Flavor::kMusic: {
        *ext = "mp3";
        *size = LogUniform(2e6, 12e6);
        const int track = track_++;
        return (track < 10 ? "0" : "") + std::to_string(track) + " - " + Capitalize(Pick(Words())) + " " +
               Capitalize(Pick(Words())) + ".mp3";
      }
      case Flavor::kDownloads:
      case Flavor::kDocs:
      case Flavor::kMixed: {
        *ext = Pick(std::vector<std::string>{"pdf", "pdf", "docx", "xlsx", "txt", "md", "odt", "zip", "png",
                                             "jpg", "csv", "pptx"});
        *size = LogUniform(2e3, 5e6);
        std::string n = Pick(Words());
        double r = Uniform();
        if (r < 0.3) {
          n += "-" + Pick(Words());
        } else if (r < 0.5) {
          n = Capitalize(n) + " " + std::to_string(Rand(2015, 2024)) + "-" + (Rand(1, 12) < 10 ? "0" : "") +
              std::to_string(Rand(1, 12));
        } else if (r < 0.6) {
          n = "scan" + std::to_string(Rand(1, 999));
        }
        if (Uniform() < 0.1) n += " (" + std::to_string(Rand(1, 5)) + ")";
        return n + "." + *ext;
      }
    }
    return "x";
  }

  std::string DirName(Flavor f) {
    switch (f) {
      case Flavor::kCode:
        return Pick(std::vector<std::string>{"src", "include", "tests", "lib", "internal", "cmd", "docs"}) +
               (Uniform() < 0.5 ? "" : "_" + Pick(CodeWords()));
      case Flavor::kPhotos:
        return std::to_string(Rand(2015, 2024)) + "-0" + std::to_string(Rand(1, 9)) + "-" +
               std::to_string(Rand(10, 28)) + " " + Capitalize(Pick(Words()));
      default:
        return Capitalize(Pick(Words())) + (Uniform() < 0.3 ? " " + Pick(Words()) : "");
    }
  }

  // Emits a folder's children in walk order, recursing into subfolders.
  void Walk(const Uuid& dir, int depth, Flavor parent_flavor) {
    Flavor f = parent_flavor;
    if (f == Flavor::kMixed || Uniform() < 0.1) {
      f = static_cast<Flavor>(Rand(0, 5));
    }
    // Per-folder state.
    dir_time_ns_ = o_.now_ns - static_cast<int64_t>(Rand(0, 5LL * 365 * 86400)) * 1000000000LL;
    ns_precision_ = Uniform() < 0.6;
    photo_prefix_ = Pick(std::vector<std::string>{"IMG_", "IMG_", "DSC_", "PXL_2023"});
    photo_ext_ = Pick(std::vector<std::string>{"jpg", "jpg", "JPG", "heic", "png"});
    photo_counter_ = Rand(1, 9000);
    track_ = 1;
    inode_ += Rand(1000, 100000);

    const size_t files = f == Flavor::kPhotos ? Rand(10, 300) : LogUniform(2, 60);
    const size_t subdirs = depth >= 7 ? 0 : Rand(0, depth <= 2 ? 6 : 3);
    const size_t children = files + subdirs;
    size_t subdirs_left = subdirs;
    for (size_t i = 0; i < children && out_.size() < o_.count; ++i) {
      bool is_dir = subdirs_left > 0 && Rand(0, children - i - 1) < subdirs_left;
      if (is_dir) {
        --subdirs_left;
        EntryRecord d = MakeDir(dir, DirName(f), depth);
        const Uuid id = d.uuid;
        out_.push_back(std::move(d));
        // Save per-folder state across the recursion.
        auto saved =
            std::tuple(dir_time_ns_, ns_precision_, photo_prefix_, photo_ext_, photo_counter_, track_);
        Walk(id, depth + 1, f);
        std::tie(dir_time_ns_, ns_precision_, photo_prefix_, photo_ext_, photo_counter_, track_) = saved;
        inode_ += Rand(1000, 100000);
        continue;
      }
      EntryRecord e;
      e.uuid = NewUuidV7();
      e.parent = dir;
      e.location = location_;
      e.name = FileName(f, &e.extension, &e.size);
      e.kind = Uniform() < 0.005 ? EntryKind::kSymlink : EntryKind::kFile;
      if (e.kind == EntryKind::kSymlink) e.size = Rand(5, 60);
      e.inode = NextInode(false);
      SetTimes(&e, dir_time_ns_);
      if (Uniform() < o_.hash_fraction) {
        e.content_hash.resize(32);
        for (char& c : e.content_hash) c = static_cast<char>(Rand(0, 255));
      }
      out_.push_back(std::move(e));
    }
  }

  TreeOptions o_;
  std::mt19937_64 rng_;
  Uuid location_;
  std::vector<EntryRecord> out_;
  uint64_t inode_ = 1000000;
  int64_t dir_time_ns_ = 1600000000LL * 1000000000LL;
  bool ns_precision_ = true;
  std::string photo_prefix_ = "IMG_";
  std::string photo_ext_ = "jpg";
  uint64_t photo_counter_ = 1;
  int track_ = 1;
};

}  // namespace internal

// A realistic tree of `options.count` entries in walk order (see above).
inline std::vector<EntryRecord> GenerateTree(const TreeOptions& options) {
  return internal::Generator(options).Run();
}
inline std::vector<EntryRecord> GenerateTree(size_t count, uint64_t seed = 42) {
  TreeOptions o;
  o.count = count;
  o.seed = seed;
  return GenerateTree(o);
}

}  // namespace entrysync::testdata
