// CheckLibraryIntegrity on a sound library and on damaged ones.
#include "store/integrity.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/event_bus.h"
#include "base/test_util.h"
#include "store/library.h"
#include "store/transaction_manager.h"

namespace entrysync {
namespace {

namespace fs = std::filesystem;

// A library of `n` entries, closed (its WAL checkpointed into the file).
std::string MakeLibrary(const testing::TempDir& t, int n) {
  std::string dir = t.Sub("lib");
  auto lib = Library::Create(dir, "here", std::nullopt);
  EXPECT_TRUE(lib.ok()) << lib.status().message();
  EventBus bus;
  TransactionManager tm(**lib, bus);
  auto loc = tm.AddLocation("/data", "data");
  EXPECT_TRUE(loc.ok());
  std::vector<EntryRecord> rows(n);
  for (int i = 0; i < n; ++i) {
    rows[i].uuid = NewUuidV7();
    rows[i].name = "file-" + std::to_string(i) + ".txt";
  }
  EXPECT_TRUE(tm.CommitBulkEntries(*loc, rows).ok());
  return dir;
}

// Overwrites `len` bytes at `offset` of the library's file.
void Damage(const std::string& dir, uint64_t offset, size_t len, char with) {
  std::fstream f(dir + "/" + Library::kDbFile, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  std::string junk(len, with);
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

TEST(IntegrityTest, ASoundLibraryPasses) {
  testing::TempDir t;
  std::string dir = MakeLibrary(t, 2000);
  auto r = CheckLibraryIntegrity(dir);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->complete);
  EXPECT_NE(r->summary.find("quick_check ok"), std::string::npos) << r->summary;
}

TEST(IntegrityTest, DamagedPagesAreOneLineOfCorruption) {
  testing::TempDir t;
  std::string dir = MakeLibrary(t, 5000);
  uint64_t size = fs::file_size(dir + "/" + Library::kDbFile);
  ASSERT_GT(size, 40u * 4096);
  // The b-tree page headers of a run of pages in the middle of the file.
  for (uint64_t page = size / 4096 / 2; page < size / 4096 / 2 + 8; ++page)
    Damage(dir, page * 4096, 12, '\x7f');
  auto r = CheckLibraryIntegrity(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().message();
  EXPECT_NE(r.status().message().find("library " + dir + " is damaged"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
}

TEST(IntegrityTest, NoLibraryIsNotFound) {
  testing::TempDir t;
  EXPECT_EQ(CheckLibraryIntegrity(t.Sub("none")).status().code(), Code::kNotFound);
}

TEST(IntegrityTest, AnExhaustedBudgetIsNotDamage) {
  testing::TempDir t;
  std::string dir = MakeLibrary(t, 20000);
  auto r = CheckLibraryIntegrity(dir, IntegrityOptions{std::chrono::milliseconds(0), 3});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->complete);
}

}  // namespace
}  // namespace entrysync
