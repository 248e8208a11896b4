#include "synthetic_tree.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <unordered_map>

#include "index/indexer.h"  // ExtensionOf

namespace entrysync::bench {
namespace {

enum Theme { kPhotos, kDocs, kSource, kMusic, kSystem, kThemeCount };

constexpr std::array<const char*, 48> kWords = {
    "foo",     "bar",    "alpha",   "beta",    "client",  "server", "sync",    "index",   "parser",  "config",
    "utils",   "core",   "network", "storage", "cache",   "image",  "render",  "stream",  "buffer",  "thread",
    "event",   "queue",  "widget",  "report",  "summary", "budget", "invoice", "meeting", "holiday", "family",
    "project", "draft",  "archive", "backup",  "music",   "video",  "camera",  "travel",  "school",  "work",
    "kernel",  "driver", "module",  "plugin",  "schema",  "query",  "vector",  "matrix"};

constexpr int64_t kNsPerSec = 1'000'000'000;
constexpr int64_t kEpoch2018 = 1514764800;  // 2018-01-01 UTC, seconds

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  uint64_t U(uint64_t lo, uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  double F() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  double Normal(double mu, double sigma) { return std::normal_distribution<double>(mu, sigma)(rng_); }
  const char* Word() { return kWords[U(0, kWords.size() - 1)]; }
  std::string Cap(const char* w) {
    std::string s(w);
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
    return s;
  }

  std::string FileName(Theme t, uint64_t& counter) {
    char buf[160];
    uint64_t n = ++counter;
    switch (t) {
      case kPhotos:
        switch (U(0, 5)) {
          case 0:
          case 1:
            std::snprintf(buf, sizeof buf, "IMG_%04llu.jpg", ull(n));
            break;
          case 2:
            std::snprintf(buf, sizeof buf, "IMG_%04llu.HEIC", ull(n));
            break;
          case 3:
            std::snprintf(buf, sizeof buf, "DSC_%04llu.NEF", ull(n));
            break;
          case 4:
            std::snprintf(buf, sizeof buf, "PXL_2023%02llu%02llu_%02llu%02llu%02llu%03llu.jpg", ull(U(1, 12)),
                          ull(U(1, 28)), ull(U(0, 23)), ull(U(0, 59)), ull(U(0, 59)), ull(n % 1000));
            break;
          default:
            std::snprintf(buf, sizeof buf, "Screenshot 2023-%02llu-%02llu at %02llu.%02llu.%02llu.png",
                          ull(U(1, 12)), ull(U(1, 28)), ull(U(0, 23)), ull(U(0, 59)), ull(n % 60));
        }
        break;
      case kDocs:
        switch (U(0, 6)) {
          case 0:
            std::snprintf(buf, sizeof buf, "%s-final (%llu).docx", Word(), ull(n));
            break;
          case 1:
            std::snprintf(buf, sizeof buf, "Invoice 20%02llu-%04llu.pdf", ull(U(18, 25)), ull(n));
            break;
          case 2:
            std::snprintf(buf, sizeof buf, "%s notes %llu.md", Cap(Word()).c_str(), ull(n));
            break;
          case 3:
            std::snprintf(buf, sizeof buf, "%s_%s_q%llu_%llu.xlsx", Word(), Word(), ull(U(1, 4)), ull(n));
            break;
          case 4:
            std::snprintf(buf, sizeof buf, "scan%04llu.pdf", ull(n));
            break;
          case 5:
            std::snprintf(buf, sizeof buf, "%s draft v%llu.odt", Cap(Word()).c_str(), ull(n));
            break;
          default:
            std::snprintf(buf, sizeof buf, "%s.txt", Word());
            break;
        }
        break;
      case kSource:
        switch (U(0, 9)) {
          case 0:
          case 1:
            std::snprintf(buf, sizeof buf, "src_%s_%s_test.cc", Word(), Word());
            break;
          case 2:
          case 3:
            std::snprintf(buf, sizeof buf, "%s_%s%llu.h", Word(), Word(), ull(n));
            break;
          case 4:
          case 5:
            std::snprintf(buf, sizeof buf, "%s_%s%llu.cc", Word(), Word(), ull(n));
            break;
          case 6:
            std::snprintf(buf, sizeof buf, "%s%llu.py", Word(), ull(n));
            break;
          case 7:
            std::snprintf(buf, sizeof buf, "%s.%s.%llu.o", Word(), Word(), ull(n));
            break;
          case 8:
            std::snprintf(buf, sizeof buf, "%sIndex%llu.js", Word(), ull(n));
            break;
          default: {
            static constexpr const char* kFixed[] = {"Makefile",   "CMakeLists.txt", "README.md",
                                                     ".gitignore", "LICENSE",        "package.json"};
            std::snprintf(buf, sizeof buf, "%s", kFixed[U(0, 5)]);
          }
        }
        break;
      case kMusic:
        if (U(0, 15) == 0) {
          std::snprintf(buf, sizeof buf, "cover.jpg");
        } else {
          std::snprintf(buf, sizeof buf, "%02llu - %s %s.%s", ull(n % 30 + 1), Cap(Word()).c_str(),
                        Cap(Word()).c_str(), U(0, 3) ? "mp3" : "flac");
        }
        break;
      default:
        switch (U(0, 5)) {
          case 0:
            std::snprintf(buf, sizeof buf, "lib%s%s.so.%llu", Word(), Word(), ull(U(0, 9)));
            break;
          case 1:
            std::snprintf(buf, sizeof buf, "%s-%llu.%llu.%llu.tar.gz", Word(), ull(U(0, 9)), ull(U(0, 20)),
                          ull(n));
            break;
          case 2:
            std::snprintf(buf, sizeof buf, "%s%llu.conf", Word(), ull(n));
            break;
          case 3:
            std::snprintf(buf, sizeof buf, "%s-%s%llu", Word(), Word(), ull(n));
            break;
          case 4:
            std::snprintf(buf, sizeof buf, "%s%llu.1.gz", Word(), ull(n));
            break;
          default:
            std::snprintf(buf, sizeof buf, "%s_%s%llu.py", Word(), Word(), ull(n));
            break;
        }
    }
    return buf;
  }

  std::string DirName(Theme t, int depth, uint64_t& counter) {
    char buf[128];
    uint64_t n = ++counter;
    switch (t) {
      case kPhotos:
        if (U(0, 1))
          std::snprintf(buf, sizeof buf, "20%02llu-%02llu %s", ull(U(10, 25)), ull(U(1, 12)),
                        Cap(Word()).c_str());
        else
          std::snprintf(buf, sizeof buf, "%s", U(0, 1) ? "Camera" : "Edited");
        break;
      case kDocs:
        std::snprintf(buf, sizeof buf, "%s %llu", Cap(Word()).c_str(), ull(n));
        break;
      case kSource: {
        static constexpr const char* kFixed[] = {"src",          "include", "tests", "build",
                                                 "node_modules", "lib",     "docs",  "third_party"};
        if (U(0, 2) == 0)
          std::snprintf(buf, sizeof buf, "%s", kFixed[U(0, 7)]);
        else
          std::snprintf(buf, sizeof buf, "%s_%s", Word(), Word());
        break;
      }
      case kMusic:
        std::snprintf(buf, sizeof buf, "%s %s (%llu)", Cap(Word()).c_str(), Cap(Word()).c_str(),
                      ull(1970 + U(0, 54)));
        break;
      default:
        std::snprintf(buf, sizeof buf, "%s%llu", Word(), ull(n));
        break;
    }
    if (n > 1 && buf[0] != '\0' && U(0, 3) == 0) {  // keep sibling folder names mostly distinct
      std::string s = std::string(buf) + "-" + std::to_string(n);
      return s;
    }
    return buf;
  }

  uint64_t FileSize(Theme t) {
    if (U(0, 49) == 0) return 0;
    static constexpr double kMu[kThemeCount] = {14.9, 11.3, 8.7, 15.6, 10.0};  // ln(bytes)
    static constexpr double kSigma[kThemeCount] = {0.6, 1.6, 1.3, 0.5, 2.0};
    double v = std::exp(Normal(kMu[t], kSigma[t]));
    return static_cast<uint64_t>(std::min(v, 6e10));
  }

 private:
  static unsigned long long ull(uint64_t v) { return v; }
  std::mt19937_64 rng_;
};

struct Pending {
  Uuid uuid;
  uint64_t budget;  // entries below this folder
  int depth;
  Theme theme;
  int64_t base_s;  // folder's era, seconds
};

}  // namespace

std::vector<EntryRecord> MakeSyntheticTree(uint64_t n, uint64_t seed) {
  std::vector<EntryRecord> rows;
  if (n == 0) return rows;
  rows.reserve(n);
  Gen g(seed);
  uint64_t inode = 2 + g.U(0, 1000);
  constexpr int kMaxDepth = 12;

  auto times = [&](EntryRecord& r, int64_t base_s) {
    int64_t m = (base_s + static_cast<int64_t>(g.U(0, 400 * 86400))) * kNsPerSec +
                static_cast<int64_t>(g.U(0, kNsPerSec - 1));
    r.modified_ns = m;
    r.created_ns =
        m + static_cast<int64_t>(g.U(0, 3600)) * kNsPerSec + static_cast<int64_t>(g.U(0, 999'999'999));
    r.accessed_ns = r.created_ns + static_cast<int64_t>(g.U(0, 90 * 86400)) * kNsPerSec;
  };

  EntryRecord root;
  root.uuid = NewUuidV7();
  root.name = "home";
  root.kind = EntryKind::kDir;
  root.size = 4096;
  root.inode = inode;
  times(root, kEpoch2018);
  rows.push_back(root);

  std::vector<Pending> stack{{root.uuid, n - 1, 0, kSystem, kEpoch2018}};
  uint64_t name_counter = g.U(0, 5000);
  std::vector<uint8_t> is_dir;
  std::vector<size_t> dir_rows;
  std::vector<double> weights;
  while (!stack.empty()) {
    Pending f = stack.back();
    stack.pop_back();
    if (f.budget == 0) continue;
    uint64_t c, k;  // children listed, of which folders
    if (f.budget <= 200 || f.depth >= kMaxDepth) {
      c = f.budget;  // a leaf folder: everything below it is here
      k = 0;
    } else {
      c = 20 + static_cast<uint64_t>(180 * std::pow(g.F(), 1.5));
      c = std::min<uint64_t>(c, f.budget);
      uint64_t lo = f.depth < 2 ? 6 : f.depth < 6 ? 2 : 1;
      uint64_t hi = f.depth < 2 ? 20 : f.depth < 6 ? 8 : 3;
      k = std::min<uint64_t>(g.U(lo, hi), c);
    }
    uint64_t rest = f.budget - c;  // spread over the k child folders
    is_dir.assign(c, 0);
    std::fill(is_dir.begin(), is_dir.begin() + static_cast<ptrdiff_t>(k), 1);
    std::shuffle(is_dir.begin(), is_dir.end(), std::mt19937_64(g.U(0, ~0ULL)));
    dir_rows.clear();
    for (uint64_t i = 0; i < c; ++i) {
      EntryRecord r;
      r.uuid = NewUuidV7();
      r.parent = f.uuid;
      inode += 1 + (g.U(0, 7) == 0 ? g.U(1, 200) : 0);
      r.inode = inode;
      if (is_dir[i]) {
        r.kind = EntryKind::kDir;
        r.name = g.DirName(f.theme, f.depth + 1, name_counter);
        r.size = 4096;
        dir_rows.push_back(rows.size());
      } else {
        r.kind = g.U(0, 199) == 0 ? EntryKind::kSymlink : EntryKind::kFile;
        r.name = g.FileName(f.theme, name_counter);
        r.size = r.kind == EntryKind::kSymlink ? r.name.size() + 8 : g.FileSize(f.theme);
      }
      r.extension = ExtensionOf(r.name, r.kind);
      times(r, f.base_s);
      rows.push_back(std::move(r));
    }
    // Skewed split of `rest` over the child folders (log-normal weights).
    weights.clear();
    double sum = 0;
    for (uint64_t i = 0; i < k; ++i) sum += weights.emplace_back(std::exp(g.Normal(0, 1.2)));
    std::vector<Pending> children;
    uint64_t given = 0;
    for (uint64_t i = 0; i < k; ++i) {
      uint64_t b = i + 1 == k ? rest - given : static_cast<uint64_t>(rest * (weights[i] / sum));
      b = std::min(b, rest - given);
      given += b;
      Theme t = g.U(0, 9) < 7 ? f.theme : static_cast<Theme>(g.U(0, kThemeCount - 1));
      int64_t base = f.base_s + static_cast<int64_t>(g.U(0, 200 * 86400));
      children.push_back({rows[dir_rows[i]].uuid, b, f.depth + 1, t, base});
    }
    // Walk child folders in listing order, like the indexer.
    for (auto it = children.rbegin(); it != children.rend(); ++it) stack.push_back(*it);
  }
  return rows;
}

TreeStats DescribeTree(const std::vector<EntryRecord>& rows) {
  TreeStats s;
  std::unordered_map<Uuid, int> depth;
  std::unordered_map<Uuid, uint64_t> children;
  double name_len = 0;
  for (const EntryRecord& r : rows) {
    int d = r.parent.is_nil() ? 0 : depth[r.parent] + 1;
    if (r.kind == EntryKind::kDir) {
      ++s.dirs;
      depth[r.uuid] = d;
    } else {
      ++s.files;
    }
    if (!r.parent.is_nil()) ++children[r.parent];
    s.max_depth = std::max(s.max_depth, d);
    name_len += static_cast<double>(r.name.size());
  }
  if (!children.empty()) s.avg_children = static_cast<double>(rows.size() - 1) / children.size();
  if (!rows.empty()) s.avg_name_len = name_len / static_cast<double>(rows.size());
  return s;
}

}  // namespace entrysync::bench
