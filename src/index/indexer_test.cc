#include "index/indexer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "base/test_util.h"

namespace entrysync {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

class IndexerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lib = Library::Create(lib_dir_.path(), "me", std::nullopt);
    ASSERT_TRUE(lib.ok());
    lib_ = std::move(*lib);
    tm_ = std::make_unique<TransactionManager>(*lib_, bus_);
    bus_.Subscribe([this](const Event& e) {
      if (std::holds_alternative<BulkIndexComplete>(e))
        bulk_events_++;
      else
        change_events_++;
    });
    root_ = tree_.Sub("root");
    fs::create_directories(root_ + "/docs/deep");
    WriteFile(root_ + "/a.txt", "hello");
    WriteFile(root_ + "/docs/report.PDF", "pdf");
    WriteFile(root_ + "/docs/deep/x.tar.gz", "x");
  }

  Result<IndexReport> Add(Env* env = DefaultEnv()) {
    Indexer ix(*lib_, *tm_, env);
    return ix.AddLocation(root_, {});
  }

  Result<IndexReport> Rescan(Env* env = DefaultEnv()) {
    auto loc = lib_->FindLocalLocationByPath(*DefaultEnv()->RealPath(root_));
    if (!loc.ok()) return loc.status();
    Indexer ix(*lib_, *tm_, env);
    return ix.Rescan(*loc, {});
  }

  // rel path -> entry, live entries only.
  std::map<std::string, EntryRecord> Snapshot() {
    auto loc = lib_->FindLocalLocationByPath(*DefaultEnv()->RealPath(root_));
    auto rows = lib_->LoadLocationEntries(loc->id, false);
    std::map<Uuid, EntryRecord> by_uuid;
    for (auto& r : *rows) by_uuid[r.uuid] = r;
    std::map<std::string, EntryRecord> out;
    for (auto& [u, r] : by_uuid) {
      std::string path = r.parent.is_nil() ? "." : r.name;
      for (Uuid p = r.parent; !p.is_nil() && !by_uuid[p].parent.is_nil(); p = by_uuid[p].parent)
        path = by_uuid[p].name + "/" + path;
      out[path] = r;
    }
    return out;
  }

  TempDir lib_dir_, tree_;
  std::string root_;
  std::unique_ptr<Library> lib_;
  EventBus bus_;
  std::unique_ptr<TransactionManager> tm_;
  int bulk_events_ = 0, change_events_ = 0;
};

TEST_F(IndexerTest, IndexesEveryEntryWithMetadata) {
  auto r = Add();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->entries, 6u);  // root, a.txt, docs, report.PDF, deep, x.tar.gz
  EXPECT_TRUE(r->bulk);
  EXPECT_EQ(bulk_events_, 1);
  EXPECT_EQ(change_events_, 0);
  auto snap = Snapshot();
  ASSERT_EQ(snap.size(), 6u);
  EXPECT_EQ(snap["a.txt"].size, 5u);
  EXPECT_EQ(snap["a.txt"].extension, "txt");
  EXPECT_EQ(snap["docs/report.PDF"].extension, "pdf");
  EXPECT_EQ(snap["docs/deep/x.tar.gz"].extension, "gz");
  EXPECT_EQ(snap["docs"].kind, EntryKind::kDir);
  EXPECT_EQ(snap["."].name, "root");
  EXPECT_NE(snap["a.txt"].inode, 0u);
  EXPECT_GT(snap["a.txt"].modified_ns, 0);
  // Parents come first in seq order.
  EXPECT_LT(snap["docs"].seq, snap["docs/deep"].seq);
  EXPECT_LT(snap["docs/deep"].seq, snap["docs/deep/x.tar.gz"].seq);
}

TEST_F(IndexerTest, RescanWithNothingChangedAssignsNoSeq) {
  ASSERT_TRUE(Add().ok());
  Seq before = lib_->LocalDevice()->max_seq;
  auto r = Rescan();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->added + r->modified + r->deleted, 0u);
  EXPECT_EQ(r->unchanged, 6u);
  EXPECT_EQ(lib_->LocalDevice()->max_seq, before);
  EXPECT_EQ(change_events_, 0);
}

TEST_F(IndexerTest, RescanFindsAddsModifiesDeletesAndKeepsUuidOnRename) {
  ASSERT_TRUE(Add().ok());
  auto before = Snapshot();
  WriteFile(root_ + "/new.md", "new");
  WriteFile(root_ + "/a.txt", "hello, longer now");
  fs::rename(root_ + "/docs/report.PDF", root_ + "/renamed.pdf");
  fs::remove_all(root_ + "/docs/deep");
  auto r = Rescan();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->added, 1u);
  // a.txt (size), report (moved), docs (mtime changed by the removal).
  EXPECT_GE(r->modified, 2u);
  EXPECT_EQ(r->deleted, 2u);  // deep and its child: the subtree
  EXPECT_FALSE(r->bulk);
  EXPECT_EQ(change_events_, static_cast<int>(r->added + r->modified + r->deleted));
  auto after = Snapshot();
  EXPECT_EQ(after["renamed.pdf"].uuid, before["docs/report.PDF"].uuid);
  EXPECT_EQ(after["a.txt"].uuid, before["a.txt"].uuid);
  EXPECT_GT(after["a.txt"].seq, before["a.txt"].seq);
  EXPECT_EQ(after["a.txt"].size, 17u);
  EXPECT_EQ(after.count("docs/deep"), 0u);
  auto dead = lib_->FindEntry(before["docs/deep/x.tar.gz"].uuid);
  ASSERT_TRUE(dead.ok() && dead->has_value());
  EXPECT_TRUE((*dead)->deleted);
  // The root, untouched... only its mtime changed; unchanged rows keep seqs.
  EXPECT_EQ(after.count("new.md"), 1u);
}

TEST_F(IndexerTest, MovedFolderKeepsUuidsOfItsSubtree) {
  ASSERT_TRUE(Add().ok());
  auto before = Snapshot();
  fs::create_directories(root_ + "/archive");
  fs::rename(root_ + "/docs", root_ + "/archive/docs2");
  auto r = Rescan();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted, 0u);
  auto after = Snapshot();
  EXPECT_EQ(after["archive/docs2"].uuid, before["docs"].uuid);
  EXPECT_EQ(after["archive/docs2/deep/x.tar.gz"].uuid, before["docs/deep/x.tar.gz"].uuid);
  // Children of a moved folder did not change: same seq.
  EXPECT_EQ(after["archive/docs2/deep/x.tar.gz"].seq, before["docs/deep/x.tar.gz"].seq);
}

TEST_F(IndexerTest, SymlinkLoopsAreRecordedNotFollowed) {
  fs::create_directory_symlink(root_, root_ + "/docs/loop");
  fs::create_directory_symlink("..", root_ + "/docs/deep/up");
  fs::create_symlink("/nonexistent/target", root_ + "/dangling");
  auto r = Add();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->entries, 9u);
  auto snap = Snapshot();
  EXPECT_EQ(snap["docs/loop"].kind, EntryKind::kSymlink);
  EXPECT_EQ(snap["dangling"].kind, EntryKind::kSymlink);
}

TEST_F(IndexerTest, OddNamesSurvive) {
  std::vector<std::string> names = {
      "spaces in name.txt", "ünïcödé 日本語.md",         "line\nbreak", "tab\there", ".hidden", "trailing.",
      "emoji 🎉.png",        "quote\"s and 'apostrophes'"};
  for (auto& n : names) WriteFile(root_ + "/" + n, n);
  auto r = Add();
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto snap = Snapshot();
  for (auto& n : names) EXPECT_EQ(snap.count(n), 1u) << n;
  EXPECT_EQ(snap[".hidden"].extension, "");
  EXPECT_EQ(snap["trailing."].extension, "");
  EXPECT_EQ(snap["emoji 🎉.png"].extension, "png");
  auto again = Rescan();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->added + again->modified + again->deleted, 0u);
}

// Fails to list one folder, as an unreadable folder does.
class UnreadableEnv : public EnvWrapper {
 public:
  UnreadableEnv(Env* t, std::string bad) : EnvWrapper(t), bad_(std::move(bad)) {}
  Status ListDir(const std::string& path, std::vector<std::string>* names) override {
    if (path.size() >= bad_.size() && path.compare(path.size() - bad_.size(), bad_.size(), bad_) == 0)
      return PermissionDenied("list " + path + ": Permission denied");
    return EnvWrapper::ListDir(path, names);
  }

 private:
  std::string bad_;
};

TEST_F(IndexerTest, UnreadableFolderIsReportedAndItsContentsKept) {
  ASSERT_TRUE(Add().ok());
  UnreadableEnv env(DefaultEnv(), "/docs");
  auto r = Rescan(&env);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_NE(r->errors[0].find("Permission denied"), std::string::npos);
  EXPECT_EQ(r->deleted, 0u);
  EXPECT_EQ(Snapshot().size(), 6u);
}

TEST_F(IndexerTest, UnreadableFolderOnFirstIndexIsReportedNotFatal) {
  if (geteuid() == 0) {
    UnreadableEnv env(DefaultEnv(), "/docs");
    auto r = Add(&env);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->errors.size(), 1u);
    EXPECT_EQ(r->entries, 3u);  // root, a.txt, docs
    return;
  }
  chmod((root_ + "/docs").c_str(), 0);
  auto r = Add();
  chmod((root_ + "/docs").c_str(), 0755);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->errors.size(), 1u);
}

// Removes a folder right before it is listed: a folder removed mid-walk.
class VanishingEnv : public EnvWrapper {
 public:
  VanishingEnv(Env* t, std::string victim) : EnvWrapper(t), victim_(std::move(victim)) {}
  Status ListDir(const std::string& path, std::vector<std::string>* names) override {
    if (path.ends_with("/docs")) fs::remove_all(victim_);
    return EnvWrapper::ListDir(path, names);
  }

 private:
  std::string victim_;
};

TEST_F(IndexerTest, FolderRemovedMidWalkIsSkipped) {
  VanishingEnv env(DefaultEnv(), root_ + "/docs");
  auto r = Add(&env);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->errors.empty());
  EXPECT_EQ(r->entries, 3u);  // root, a.txt, docs (listed before it vanished)
}

TEST_F(IndexerTest, MissingFolderFailsAndStoresNothing) {
  Indexer ix(*lib_, *tm_, DefaultEnv());
  auto r = ix.AddLocation(tree_.Sub("missing"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_TRUE(lib_->ListLocations(std::nullopt)->empty());
  auto file = ix.AddLocation(root_ + "/a.txt", {});
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("not a folder"), std::string::npos);
  ASSERT_TRUE(Add().ok());
  auto twice = Add();
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), Code::kAlreadyExists);
}

TEST_F(IndexerTest, HundredThousandFiles) {
  for (int d = 0; d < 100; ++d) {
    std::string dir = root_ + "/d" + std::to_string(d);
    fs::create_directory(dir);
    for (int f = 0; f < 1000; ++f) WriteFile(dir + "/f" + std::to_string(f) + ".dat", "");
  }
  uint64_t last_progress = 0;
  Indexer ix(*lib_, *tm_, DefaultEnv());
  IndexOptions opts;
  opts.progress = [&](uint64_t n) { last_progress = n; };
  auto r = ix.AddLocation(root_, opts);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->entries, 100106u);
  EXPECT_EQ(last_progress, 100106u);
  EXPECT_EQ(bulk_events_, 1);
  EXPECT_EQ(change_events_, 0);
  EXPECT_EQ(*lib_->CountEntries(lib_->local_device(), false), 100106u);
  // Remove a whole folder of 1000 files: above the threshold, one bulk commit.
  fs::remove_all(root_ + "/d7");
  auto loc = lib_->FindLocalLocationByPath(*DefaultEnv()->RealPath(root_));
  auto again = ix.Rescan(*loc, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->deleted, 1001u);
  EXPECT_TRUE(again->bulk);
  EXPECT_EQ(bulk_events_, 2);
}

}  // namespace
}  // namespace entrysync
