#include "store/library_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/test_util.h"

namespace entrysync {
namespace {

TEST(LibraryLockTest, OneOwnerAtATimeNamedByPid) {
  testing::TempDir dir;
  EXPECT_FALSE(LibraryLock::Holder(dir.path()).has_value());
  auto lock = LibraryLock::Acquire(dir.path(), "entrysync serve");
  ASSERT_TRUE(lock.ok()) << lock.status().message();
  auto holder = LibraryLock::Holder(dir.path());
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->pid, getpid());
  EXPECT_EQ(holder->what, "entrysync serve");
  auto second = LibraryLock::Acquire(dir.path(), "snapshot import");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kAborted);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(getpid()) + " (entrysync serve)"),
            std::string::npos)
      << second.status().message();
  lock->reset();
  EXPECT_FALSE(LibraryLock::Holder(dir.path()).has_value());
  EXPECT_TRUE(LibraryLock::Acquire(dir.path(), "again").ok());
}

TEST(LibraryLockTest, AKilledOwnerReleasesTheLock) {
  testing::TempDir dir;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = LibraryLock::Acquire(dir.path(), "child");
    char c = lock.ok() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    pause();
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto holder = LibraryLock::Holder(dir.path());
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->pid, child);
  EXPECT_FALSE(LibraryLock::Acquire(dir.path(), "parent").ok());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(LibraryLock::Holder(dir.path()).has_value());
  EXPECT_TRUE(LibraryLock::Acquire(dir.path(), "parent").ok());
  close(ready[0]);
  close(ready[1]);
}

}  // namespace
}  // namespace entrysync
