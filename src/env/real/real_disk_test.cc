// Proves RealDisk against the real filesystem, in a fresh mkdtemp directory
// under /tmp that each test removes: appends round-trip (including writes
// large enough to need several write(2) calls), Size is tracked, atomic
// writes leave no temp file, truncate/remove/list/mkdir -p behave like their
// POSIX counterparts, and errors carry the syscall, the path, strerror and the
// documented code (ENOSPC is real, from /dev/full). Also proves RealEnv's
// clock and random source, and that asking it for a missing Timers or
// Network aborts with a clear message.
#include "env/real/real_disk.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "env/real/real_env.h"

namespace bw::env {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RealDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bw_real_disk_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string Read(const std::string& path) {
    auto data = disk_.ReadFile(path);
    EXPECT_TRUE(data.ok()) << data.status();
    return data.ok() ? *data : std::string("<error>");
  }

  std::string dir_;
  RealDisk disk_;
};

TEST_F(RealDiskTest, ReadAtReadsAPieceAndStopsWhereTheFileEnds) {
  const std::string path = Path("wal");
  auto wal = disk_.OpenAppend(path);
  ASSERT_TRUE(wal.ok()) << wal.status();
  ASSERT_TRUE((*wal)->Append("hello world").ok());
  auto mid = disk_.ReadAt(path, 6, 3);
  ASSERT_TRUE(mid.ok()) << mid.status();
  EXPECT_EQ(*mid, "wor");
  auto tail = disk_.ReadAt(path, 8, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, "rld");
  auto past = disk_.ReadAt(path, 50, 4);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, "");
  auto missing = disk_.ReadAt(Path("missing"), 0, 1);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
}

TEST_F(RealDiskTest, AppendSyncReadRoundTrip) {
  const std::string path = Path("wal");
  {
    auto wal = disk_.OpenAppend(path);
    ASSERT_TRUE(wal.ok()) << wal.status();
    EXPECT_EQ((*wal)->Size(), 0u);
    ASSERT_TRUE((*wal)->Append("hello ").ok());
    ASSERT_TRUE((*wal)->Append("").ok());
    ASSERT_TRUE((*wal)->Append("world").ok());
    ASSERT_TRUE((*wal)->Sync().ok());
    EXPECT_EQ((*wal)->Size(), 11u);
  }
  EXPECT_EQ(Read(path), "hello world");
  // Reopening starts Size at the file's length and appends after it.
  auto wal = disk_.OpenAppend(path);
  ASSERT_TRUE(wal.ok());
  EXPECT_EQ((*wal)->Size(), 11u);
  ASSERT_TRUE((*wal)->Append("!").ok());
  ASSERT_TRUE((*wal)->Sync().ok());
  EXPECT_EQ((*wal)->Size(), 12u);
  EXPECT_EQ(Read(path), "hello world!");
}

TEST_F(RealDiskTest, LargeAppendAndRead) {
  std::string big(9 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>((i * 131) >> 3);
  auto wal = disk_.OpenAppend(Path("big"));
  ASSERT_TRUE(wal.ok());
  ASSERT_TRUE((*wal)->Append(big).ok());
  ASSERT_TRUE((*wal)->Sync().ok());
  EXPECT_EQ((*wal)->Size(), big.size());
  EXPECT_EQ(Read(Path("big")), big);
  ASSERT_TRUE(disk_.WriteFileAtomic(Path("big2"), big).ok());
  EXPECT_EQ(Read(Path("big2")), big);
}

TEST_F(RealDiskTest, WriteFileAtomicReplacesAndLeavesNoTemp) {
  ASSERT_TRUE(disk_.WriteFileAtomic(Path("meta"), "v1").ok());
  EXPECT_EQ(Read(Path("meta")), "v1");
  ASSERT_TRUE(disk_.WriteFileAtomic(Path("meta"), "version two").ok());
  EXPECT_EQ(Read(Path("meta")), "version two");
  ASSERT_TRUE(disk_.WriteFileAtomic(Path("empty"), "").ok());
  EXPECT_EQ(Read(Path("empty")), "");
  auto names = disk_.List(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ElementsAre("empty", "meta"));
}

TEST_F(RealDiskTest, TruncateShrinksAndExtends) {
  ASSERT_TRUE(disk_.WriteFileAtomic(Path("f"), "0123456789").ok());
  ASSERT_TRUE(disk_.Truncate(Path("f"), 4).ok());
  EXPECT_EQ(Read(Path("f")), "0123");
  ASSERT_TRUE(disk_.Truncate(Path("f"), 6).ok());
  EXPECT_EQ(Read(Path("f")), std::string("0123\0\0", 6));
}

TEST_F(RealDiskTest, RemoveListExistsCreateDir) {
  ASSERT_TRUE(disk_.CreateDir(Path("a/b/c/")).ok());
  ASSERT_TRUE(disk_.CreateDir(Path("a/b")).ok());  // Exists already: fine.
  EXPECT_TRUE(std::filesystem::is_directory(Path("a/b/c")));
  ASSERT_TRUE(disk_.WriteFileAtomic(Path("z"), "").ok());
  ASSERT_TRUE(disk_.WriteFileAtomic(Path("m"), "").ok());
  EXPECT_TRUE(disk_.Exists(Path("z")));
  EXPECT_TRUE(disk_.Exists(Path("a/b")));
  EXPECT_FALSE(disk_.Exists(Path("nope")));
  auto names = disk_.List(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ElementsAre("a", "m", "z"));
  ASSERT_TRUE(disk_.Remove(Path("m")).ok());
  EXPECT_FALSE(disk_.Exists(Path("m")));
  names = disk_.List(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ElementsAre("a", "z"));
}

TEST_F(RealDiskTest, ErrorsNameTheOperationPathAndErrno) {
  auto read = disk_.ReadFile(Path("missing"));
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(read.status().message(), "open " + Path("missing") + ": No such file or directory");

  auto open = disk_.OpenAppend(Path("nodir/wal"));
  EXPECT_EQ(open.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(open.status().message(), HasSubstr(Path("nodir/wal")));

  absl::Status remove = disk_.Remove(Path("missing"));
  EXPECT_EQ(remove.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(remove.message(), "unlink " + Path("missing") + ": No such file or directory");

  EXPECT_EQ(disk_.Truncate(Path("missing"), 0).code(), absl::StatusCode::kNotFound);
  absl::Status atomic = disk_.WriteFileAtomic(Path("nodir/meta"), "x");
  EXPECT_EQ(atomic.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(atomic.message(), HasSubstr(Path("nodir/meta.tmp")));

  auto list = disk_.List(Path("nodir"));
  EXPECT_EQ(list.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(list.status().message(), "opendir " + Path("nodir") + ": No such file or directory");

  ASSERT_TRUE(disk_.WriteFileAtomic(Path("file"), "x").ok());
  absl::Status mkdir = disk_.CreateDir(Path("file/sub"));
  EXPECT_EQ(mkdir.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(mkdir.message(), "mkdir " + Path("file") + ": Not a directory");
}

TEST_F(RealDiskTest, NoSpaceIsResourceExhausted) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full";
  auto full = disk_.OpenAppend("/dev/full");
  ASSERT_TRUE(full.ok()) << full.status();
  absl::Status append = (*full)->Append("x");
  EXPECT_EQ(append.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(append.message(), "write /dev/full: No space left on device");
}

TEST(RealDiskErrnoTest, CodesAndMessages) {
  absl::Status eio = ErrnoToStatus("fdatasync", "/x/wal", EIO);
  EXPECT_EQ(eio.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(eio.message(), "fdatasync /x/wal: Input/output error");
  EXPECT_EQ(ErrnoToStatus("write", "/x", ENOSPC).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoToStatus("write", "/x", EDQUOT).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoToStatus("open", "/x", ENOENT).code(), absl::StatusCode::kNotFound);
  absl::Status other = ErrnoToStatus("open", "/x", EACCES);
  EXPECT_EQ(other.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(other.message(), "open /x: Permission denied");
}

TEST(RealEnvTest, ClockIsMonotonic) {
  RealEnv env;
  int64_t last = env.clock().NowMicros();
  for (int i = 0; i < 1000; ++i) {
    int64_t now = env.clock().NowMicros();
    EXPECT_GE(now, last);
    last = now;
  }
  ::usleep(2000);
  EXPECT_GE(env.clock().NowMicros() - last, 2000);
}

TEST(RealEnvTest, RandomIsReproducibleFromSeedAndVariedFromDevice) {
  RealRandom a(123), b(123), c(124);
  std::set<uint64_t> seen;
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
    seen.insert(x);
  }
  EXPECT_TRUE(differs);
  EXPECT_EQ(seen.size(), 1000u);
  // Two device-seeded generators start apart (2^-64 odds of a false failure).
  RealRandom d, e;
  EXPECT_NE(d.Next(), e.Next());
  // Below stays in range and covers it.
  std::set<uint64_t> below;
  for (int i = 0; i < 1000; ++i)
    below.insert(a.Below(10));
  EXPECT_EQ(below.size(), 10u);
  EXPECT_LT(*below.rbegin(), 10u);
}

class FakeTimers final : public Timers {
 public:
  TimerId Schedule(int64_t delay_us, std::function<void()> fn) override { return 7; }
  void Cancel(TimerId id) override {}
};

TEST(RealEnvTest, InjectedTimersAreReturnedAndDiskWorks) {
  auto timers = std::make_unique<FakeTimers>();
  Timers* raw = timers.get();
  RealEnv env(std::move(timers));
  EXPECT_EQ(&env.timers(), raw);
  EXPECT_EQ(env.timers().Schedule(1, [] {}), 7u);
  EXPECT_FALSE(env.disk().Exists("/nonexistent/bulwark/path"));
}

TEST(RealEnvDeathTest, MissingTimersOrNetworkAborts) {
  RealEnv env;
  EXPECT_DEATH(env.timers(), "no Timers was given");
  EXPECT_DEATH(env.network(), "no Network was given");
}

}  // namespace
}  // namespace bw::env
