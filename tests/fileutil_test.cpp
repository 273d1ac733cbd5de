// Atomic writes and the small file helpers. The property that matters: a failed write (missing
// folder, full disk) throws a RuntimeError naming the file and leaves neither a half-written
// target nor a temporary file behind, and an existing target keeps its old content.
#include "gancu/fileutil.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>

#include "gancu/check.h"
#include "io_test_util.h"

namespace gancu {
namespace {

using testing_io::read_raw;
using testing_io::TempDir;
using testing_io::throws_with;
using testing_io::write_raw;

TEST(AtomicWrite, WritesAndReplaces) {
  TempDir dir;
  const std::string p = dir / "a.bin";
  atomic_write(p, std::string("first"));
  EXPECT_EQ(read_file(p), (std::vector<uint8_t>{'f', 'i', 'r', 's', 't'}));
  atomic_write(p, std::vector<uint8_t>{1, 2});
  EXPECT_EQ(read_file(p), (std::vector<uint8_t>{1, 2}));
  atomic_write(p, std::vector<uint8_t>{});
  EXPECT_TRUE(read_file(p).empty());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"a.bin"});
}

TEST(AtomicWrite, MissingFolderLeavesNothing) {
  TempDir dir;
  const std::string p = dir / "no/such/dir/out.png";
  EXPECT_TRUE(throws_with<RuntimeError>([&] { atomic_write(p, std::string("x")); },
                                        {p, "directory", "does not exist"}));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicWrite, UncommittedFileLeavesNothing) {
  TempDir dir;
  const std::string p = dir / "b.bin";
  {
    AtomicFile f(p);
    f.write("abc", 3);
    EXPECT_TRUE(file_exists(f.temp_path()));
    EXPECT_FALSE(file_exists(p));
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicWrite, TargetThatIsADirectory) {
  TempDir dir;
  make_dirs(dir / "d");
  EXPECT_TRUE(throws_with<RuntimeError>([&] { atomic_write(dir / "d", std::string("x")); }, {dir / "d"}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"d"});
}

// A full disk, simulated with a file-size limit: writes past it fail with EFBIG exactly where a
// full disk fails with ENOSPC (in fwrite, fflush or fclose), without needing a small file system.
TEST(AtomicWrite, FullDiskKeepsTheOldFileAndLeavesNoTemp) {
  TempDir dir;
  const std::string p = dir / "checkpoint.safetensors";
  write_raw(p, {'o', 'l', 'd'});
  rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 10000;
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the process
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::vector<uint8_t> big(1 << 20, 0xAB);
  const auto result =
      throws_with<RuntimeError>([&] { atomic_write(p, big); }, {p, "File too large", "unchanged"});
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(result);
  EXPECT_EQ(read_raw(p), (std::vector<uint8_t>{'o', 'l', 'd'}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"checkpoint.safetensors"});
}

TEST(MakeDirs, NestedExistingAndBlocked) {
  TempDir dir;
  make_dirs(dir / "a/b/c");
  EXPECT_TRUE(dir_exists(dir / "a/b/c"));
  make_dirs(dir / "a/b/c");  // already there: fine
  make_dirs(dir / "a/b/c/");
  write_raw(dir / "file", {1});
  EXPECT_TRUE(throws_with<RuntimeError>([&] { make_dirs(dir / "file/sub"); },
                                        {dir / "file/sub", "exists and is not a directory"}));
}

TEST(DirEntries, NamesWithoutDotsAndNothingForAMissingFolderOrAFile) {
  TempDir dir;
  ASSERT_TRUE(dir_entries(dir.path()).has_value());
  EXPECT_TRUE(dir_entries(dir.path())->empty());
  EXPECT_TRUE(dir_is_empty(dir.path()));
  make_dirs(dir / "sub");
  write_raw(dir / "file", {1});
  auto names = *dir_entries(dir.path());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"file", "sub"}));
  EXPECT_FALSE(dir_is_empty(dir.path()));
  EXPECT_TRUE(dir_is_empty(dir / "sub"));
  // Neither a missing folder nor a file counts as an empty folder.
  EXPECT_FALSE(dir_entries(dir / "none").has_value());
  EXPECT_FALSE(dir_entries(dir / "file").has_value());
  EXPECT_FALSE(dir_is_empty(dir / "none"));
  EXPECT_FALSE(dir_is_empty(dir / "file"));
}

TEST(ReadFile, MissingAndDirectory) {
  TempDir dir;
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_file(dir / "none"); }, {dir / "none", "No such file"}));
  EXPECT_TRUE(throws_with<RuntimeError>([&] { read_file(dir.path()); }, {dir.path(), "is a directory"}));
  EXPECT_FALSE(file_exists(dir.path()));
  EXPECT_TRUE(dir_exists(dir.path()));
}

TEST(PathParts, BasenameAndDirname) {
  EXPECT_EQ(path_basename("a/b/c.gz"), "c.gz");
  EXPECT_EQ(path_basename("c"), "c");
  EXPECT_EQ(path_dirname("a/b/c.gz"), "a/b");
  EXPECT_EQ(path_dirname("c"), ".");
  EXPECT_EQ(path_dirname("/c"), "/");
}

}  // namespace
}  // namespace gancu
