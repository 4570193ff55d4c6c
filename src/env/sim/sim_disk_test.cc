// Proves SimDisk's durability model and its fault injection: synced bytes
// survive a crash and unsynced ones do not (or survive only as a prefix when a
// torn tail is injected); handles from before a crash are dead; atomic writes,
// truncates and removes are durable at once; injected ENOSPC, EIO and bit
// flips behave as documented and are counted; errors name the path; and the
// outcome of a crash is a function of the seed alone. Each test drives one
// SimDisk directly, with a local splitmix64 stream as its Random.
#include "env/sim/sim_disk.h"

#include <bit>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace bw::env {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// splitmix64, counting the draws made from it.
class TestRandom final : public Random {
 public:
  explicit TestRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next() override {
    ++draws;
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t draws = 0;

 private:
  uint64_t state_;
};

std::unique_ptr<AppendFile> Open(SimDisk& disk, const std::string& path) {
  auto file = disk.OpenAppend(path);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? std::move(file).value() : nullptr;
}

std::string Read(SimDisk& disk, const std::string& path) {
  auto data = disk.ReadFile(path);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *data : std::string("<error>");
}

class SimDiskTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(disk_.CreateDir("/d").ok()); }

  TestRandom random_{42};
  SimDisk disk_{random_};
};

TEST_F(SimDiskTest, AppendSyncReadRoundTrip) {
  auto wal = Open(disk_, "/d/wal");
  ASSERT_TRUE(wal->Append("hello ").ok());
  ASSERT_TRUE(wal->Append("world").ok());
  EXPECT_EQ(wal->Size(), 11u);
  // Unsynced bytes are readable (they are in the page cache).
  EXPECT_EQ(Read(disk_, "/d/wal"), "hello world");
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(Read(disk_, "/d/wal"), "hello world");
  // Reopening appends after the existing bytes.
  wal.reset();
  wal = Open(disk_, "/d/wal");
  EXPECT_EQ(wal->Size(), 11u);
  ASSERT_TRUE(wal->Append("!").ok());
  EXPECT_EQ(Read(disk_, "/d/wal"), "hello world!");
  EXPECT_EQ(disk_.used_bytes(), 12u);
}

TEST_F(SimDiskTest, ReadAtReadsAPieceUnsyncedOrNotAndStopsWhereTheFileEnds) {
  auto wal = Open(disk_, "/d/wal");
  ASSERT_TRUE(wal->Append("hello ").ok());
  ASSERT_TRUE(wal->Sync().ok());
  ASSERT_TRUE(wal->Append("world").ok());
  auto mid = disk_.ReadAt("/d/wal", 4, 4);
  ASSERT_TRUE(mid.ok()) << mid.status();
  EXPECT_EQ(*mid, "o wo");
  auto tail = disk_.ReadAt("/d/wal", 8, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, "rld");
  auto past = disk_.ReadAt("/d/wal", 11, 4);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, "");
  EXPECT_TRUE(absl::IsNotFound(disk_.ReadAt("/d/missing", 0, 1).status()));
}

TEST_F(SimDiskTest, UnsyncedBytesLostOnCrash) {
  auto wal = Open(disk_, "/d/wal");
  ASSERT_TRUE(wal->Append("abc").ok());
  ASSERT_TRUE(wal->Sync().ok());
  ASSERT_TRUE(wal->Append("defg").ok());
  auto never_synced = Open(disk_, "/d/new");
  ASSERT_TRUE(never_synced->Append("xyz").ok());
  disk_.Crash();
  EXPECT_EQ(Read(disk_, "/d/wal"), "abc");
  // The file's creation was durable; its bytes were not.
  EXPECT_TRUE(disk_.Exists("/d/new"));
  EXPECT_EQ(Read(disk_, "/d/new"), "");
  EXPECT_EQ(disk_.counts().crashes, 1u);
  EXPECT_EQ(disk_.counts().unsynced_bytes_lost, 7u);
  EXPECT_EQ(disk_.counts().torn_tails, 0u);
}

TEST_F(SimDiskTest, TornTailIsPrefixOfUnsyncedBytes) {
  const std::string synced = "durable|";
  const std::string unsynced = "0123456789abcdefghijklmnopqrstuvwxyz";
  SimDiskFaults faults;
  faults.torn_tail = 1;
  int partial = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    TestRandom random(seed);
    SimDisk disk(random, faults);
    ASSERT_TRUE(disk.CreateDir("/d").ok());
    {
      auto wal = Open(disk, "/d/wal");
      ASSERT_TRUE(wal->Append(synced).ok());
      ASSERT_TRUE(wal->Sync().ok());
      ASSERT_TRUE(wal->Append(unsynced.substr(0, 10)).ok());
      ASSERT_TRUE(wal->Append(unsynced.substr(10)).ok());
      disk.Crash();
    }
    const std::string after = Read(disk, "/d/wal");
    ASSERT_GE(after.size(), synced.size()) << "seed " << seed;
    ASSERT_LE(after.size(), synced.size() + unsynced.size()) << "seed " << seed;
    EXPECT_EQ(after, (synced + unsynced).substr(0, after.size())) << "seed " << seed;
    EXPECT_EQ(disk.counts().torn_tails, 1u);
    EXPECT_EQ(disk.counts().unsynced_bytes_lost, synced.size() + unsynced.size() - after.size());
    if (after.size() > synced.size() && after.size() < synced.size() + unsynced.size()) ++partial;
  }
  // The kept length is uniform over 37 values: nearly every seed tears mid-way.
  EXPECT_GT(partial, 150);
}

TEST_F(SimDiskTest, HandleFromBeforeCrashIsDead) {
  auto wal = Open(disk_, "/d/wal");
  ASSERT_TRUE(wal->Append("abc").ok());
  ASSERT_TRUE(wal->Sync().ok());
  disk_.Crash();
  absl::Status append = wal->Append("more");
  EXPECT_EQ(append.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(append.message(), HasSubstr("/d/wal"));
  EXPECT_THAT(append.message(), HasSubstr("file handle from before a crash"));
  EXPECT_EQ(wal->Sync().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Read(disk_, "/d/wal"), "abc");
  // A new handle works.
  auto reopened = Open(disk_, "/d/wal");
  EXPECT_EQ(reopened->Size(), 3u);
  ASSERT_TRUE(reopened->Append("def").ok());
  ASSERT_TRUE(reopened->Sync().ok());
  EXPECT_EQ(Read(disk_, "/d/wal"), "abcdef");
}

TEST_F(SimDiskTest, AtomicWriteSurvivesCrash) {
  ASSERT_TRUE(disk_.WriteFileAtomic("/d/meta", "v1").ok());
  ASSERT_TRUE(disk_.WriteFileAtomic("/d/meta", "version two").ok());
  disk_.Crash();
  EXPECT_EQ(Read(disk_, "/d/meta"), "version two");
  // No temp file is ever visible.
  auto names = disk_.List("/d");
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ElementsAre("meta"));
}

TEST_F(SimDiskTest, TruncateAndRemoveAreDurableAtOnce) {
  auto wal = Open(disk_, "/d/wal");
  ASSERT_TRUE(wal->Append("0123456789").ok());
  ASSERT_TRUE(wal->Sync().ok());
  ASSERT_TRUE(wal->Append("unsynced").ok());
  ASSERT_TRUE(disk_.Truncate("/d/wal", 12).ok());  // Keeps two unsynced bytes, now durable.
  ASSERT_TRUE(disk_.WriteFileAtomic("/d/gone", "x").ok());
  ASSERT_TRUE(disk_.Remove("/d/gone").ok());
  wal.reset();
  disk_.Crash();
  EXPECT_EQ(Read(disk_, "/d/wal"), "0123456789un");
  EXPECT_FALSE(disk_.Exists("/d/gone"));
  // Growing fills with zero bytes.
  ASSERT_TRUE(disk_.Truncate("/d/wal", 14).ok());
  EXPECT_EQ(Read(disk_, "/d/wal"), std::string("0123456789un\0\0", 14));
}

TEST_F(SimDiskTest, FilesBehaveAsInodes) {
  auto wal = Open(disk_, "/d/wal");
  ASSERT_TRUE(wal->Append("old").ok());
  ASSERT_TRUE(disk_.WriteFileAtomic("/d/wal", "replacement").ok());
  // The handle writes to the replaced (unlinked) file, not the new one.
  ASSERT_TRUE(wal->Append("!").ok());
  EXPECT_EQ(wal->Size(), 4u);
  EXPECT_EQ(Read(disk_, "/d/wal"), "replacement");
  ASSERT_TRUE(disk_.Remove("/d/wal").ok());
  ASSERT_TRUE(wal->Append("?").ok());
  EXPECT_FALSE(disk_.Exists("/d/wal"));
}

TEST_F(SimDiskTest, NoSpaceWhenCapacityExceeded) {
  SimDiskFaults faults;
  faults.capacity_bytes = 10;
  disk_.set_faults(faults);
  auto wal = Open(disk_, "/d/wal");
  ASSERT_TRUE(wal->Append("12345678").ok());
  absl::Status full = wal->Append("abc");
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(full.message(), "write /d/wal: No space left on device (injected)");
  EXPECT_EQ(Read(disk_, "/d/wal"), "12345678");  // Nothing of the failed append.
  ASSERT_TRUE(wal->Append("ab").ok());           // Exactly full.
  // The temp file needs room while the old file exists.
  absl::Status atomic = disk_.WriteFileAtomic("/d/meta", "x");
  EXPECT_EQ(atomic.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(atomic.message(), HasSubstr("/d/meta.tmp"));
  EXPECT_FALSE(disk_.Exists("/d/meta"));
  EXPECT_EQ(disk_.Truncate("/d/wal", 11).code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(disk_.Truncate("/d/wal", 4).ok());  // Shrinking frees space.
  EXPECT_TRUE(disk_.WriteFileAtomic("/d/meta", "x").ok());
  EXPECT_EQ(disk_.counts().no_space, 3u);
}

TEST_F(SimDiskTest, InjectedEioOnSync) {
  auto wal = Open(disk_, "/d/wal");
  ASSERT_TRUE(wal->Append("abc").ok());
  ASSERT_TRUE(wal->Sync().ok());
  SimDiskFaults faults;
  faults.sync_eio = 1;
  disk_.set_faults(faults);
  ASSERT_TRUE(wal->Append("def").ok());
  absl::Status sync = wal->Sync();
  EXPECT_EQ(sync.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(sync.message(), "fdatasync /d/wal: Input/output error (injected)");
  EXPECT_EQ(disk_.counts().sync_failures, 1u);
  // The bytes are still there, but not durable.
  EXPECT_EQ(Read(disk_, "/d/wal"), "abcdef");
  wal.reset();
  disk_.Crash();
  EXPECT_EQ(Read(disk_, "/d/wal"), "abc");
}

TEST_F(SimDiskTest, SyncEioFiresAtTheConfiguredRate) {
  SimDiskFaults faults;
  faults.sync_eio = 0.25;
  disk_.set_faults(faults);
  int failed = 0;
  for (int i = 0; i < 4000; ++i) {
    // A fresh handle each time: a failed sync is sticky on its handle.
    auto wal = Open(disk_, "/d/wal");
    failed += wal->Sync().ok() ? 0 : 1;
  }
  EXPECT_EQ(disk_.counts().sync_failures, static_cast<uint64_t>(failed));
  EXPECT_GT(failed, 800);
  EXPECT_LT(failed, 1200);
}

TEST_F(SimDiskTest, BitFlipChangesExactlyOneBit) {
  const std::string stored = "the quick brown fox jumps over the lazy dog";
  ASSERT_TRUE(disk_.WriteFileAtomic("/d/snap", stored).ok());
  SimDiskFaults faults;
  faults.read_bit_flip = 1;
  disk_.set_faults(faults);
  std::vector<bool> flipped_byte(stored.size(), false);
  for (int i = 0; i < 500; ++i) {
    const std::string read = Read(disk_, "/d/snap");
    ASSERT_EQ(read.size(), stored.size());
    int bits = 0;
    for (size_t j = 0; j < stored.size(); ++j) {
      int diff =
          std::popcount(static_cast<unsigned>(static_cast<unsigned char>(read[j] ^ stored[j])));
      if (diff > 0) flipped_byte[j] = true;
      bits += diff;
    }
    ASSERT_EQ(bits, 1) << "read " << i;
  }
  EXPECT_EQ(disk_.counts().bit_flips, 500u);
  // Flips land all over the file, not in one place.
  int distinct = 0;
  for (bool b : flipped_byte)
    distinct += b ? 1 : 0;
  EXPECT_GT(distinct, static_cast<int>(stored.size()) / 2);
  // The stored bytes are untouched.
  disk_.set_faults({});
  EXPECT_EQ(Read(disk_, "/d/snap"), stored);
}

TEST_F(SimDiskTest, ErrorsNameTheOperationAndPath) {
  auto read = disk_.ReadFile("/d/missing");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(read.status().message(), "open /d/missing: No such file or directory");

  auto open = disk_.OpenAppend("/nodir/wal");
  EXPECT_EQ(open.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(open.status().message(), HasSubstr("/nodir/wal"));

  absl::Status remove = disk_.Remove("/d/missing");
  EXPECT_EQ(remove.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(remove.message(), "unlink /d/missing: No such file or directory");

  EXPECT_EQ(disk_.Truncate("/d/missing", 0).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(disk_.WriteFileAtomic("/nodir/meta", "x").code(), absl::StatusCode::kNotFound);

  auto list = disk_.List("/nodir");
  EXPECT_EQ(list.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(list.status().message(), HasSubstr("/nodir"));

  ASSERT_TRUE(disk_.WriteFileAtomic("/d/file", "x").ok());
  absl::Status mkdir = disk_.CreateDir("/d/file/sub");
  EXPECT_EQ(mkdir.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(mkdir.message(), "mkdir /d/file: Not a directory");
  EXPECT_EQ(disk_.OpenAppend("/d").status().code(), absl::StatusCode::kInternal);
}

TEST_F(SimDiskTest, DirectoriesListAndExist) {
  ASSERT_TRUE(disk_.CreateDir("/d/sub/deeper/").ok());
  ASSERT_TRUE(disk_.CreateDir("/d/sub").ok());  // Already there: fine.
  ASSERT_TRUE(disk_.WriteFileAtomic("/d/b", "").ok());
  ASSERT_TRUE(disk_.WriteFileAtomic("/d/a", "").ok());
  ASSERT_TRUE(disk_.WriteFileAtomic("/d/sub/c", "").ok());
  EXPECT_TRUE(disk_.Exists("/d/sub/deeper"));
  EXPECT_TRUE(disk_.Exists("/d/a"));
  EXPECT_FALSE(disk_.Exists("/d/c"));
  auto names = disk_.List("/d");
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ElementsAre("a", "b", "sub"));
  auto sub = disk_.List("/d/sub/");
  ASSERT_TRUE(sub.ok());
  EXPECT_THAT(*sub, ElementsAre("c", "deeper"));
  auto root = disk_.List("/");
  ASSERT_TRUE(root.ok());
  EXPECT_THAT(*root, ElementsAre("d"));
  // Relative paths live under ".".
  ASSERT_TRUE(disk_.WriteFileAtomic("rel", "").ok());
  auto cwd = disk_.List(".");
  ASSERT_TRUE(cwd.ok());
  EXPECT_THAT(*cwd, ElementsAre("rel"));
}

// Runs a fixed workload with torn tails on, crashes, and returns every file.
std::vector<std::string> CrashOutcome(uint64_t seed, bool crash_with_seed) {
  TestRandom random(seed);
  SimDiskFaults faults;
  faults.torn_tail = 0.5;
  SimDisk disk(random, faults);
  EXPECT_TRUE(disk.CreateDir("/d").ok());
  {
    std::vector<std::unique_ptr<AppendFile>> files;
    for (int i = 0; i < 8; ++i) {
      files.push_back(Open(disk, "/d/f" + std::to_string(i)));
      EXPECT_TRUE(files.back()->Append("synced-" + std::to_string(i)).ok());
      EXPECT_TRUE(files.back()->Sync().ok());
      EXPECT_TRUE(files.back()->Append(std::string(100 + i, static_cast<char>('a' + i))).ok());
    }
    if (crash_with_seed) {
      disk.Crash(seed * 7919);
    } else {
      disk.Crash();
    }
  }
  std::vector<std::string> out;
  for (int i = 0; i < 8; ++i)
    out.push_back(Read(disk, "/d/f" + std::to_string(i)));
  return out;
}

TEST(SimDiskDeterminismTest, SameSeedSameContentsAfterCrash) {
  for (bool with_seed : {false, true}) {
    std::set<std::vector<std::string>> outcomes;
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      const auto first = CrashOutcome(seed, with_seed);
      EXPECT_EQ(first, CrashOutcome(seed, with_seed)) << "seed " << seed;
      outcomes.insert(first);
    }
    // And the seed matters.
    EXPECT_GT(outcomes.size(), 15u);
  }
}

TEST(SimDiskDeterminismTest, NoDrawsWithoutFaults) {
  TestRandom random(7);
  {
    SimDisk disk(random);
    ASSERT_TRUE(disk.CreateDir("/d").ok());
    auto wal = Open(disk, "/d/wal");
    ASSERT_TRUE(wal->Append("abc").ok());
    ASSERT_TRUE(wal->Sync().ok());
    ASSERT_TRUE(wal->Append("def").ok());
    EXPECT_EQ(Read(disk, "/d/wal"), "abcdef");
    wal.reset();
    disk.Crash();
  }
  EXPECT_EQ(random.draws, 0u);
}

TEST(SimDiskFaultsTest, ValidateRejectsBadProbabilities) {
  SimDiskFaults faults;
  EXPECT_TRUE(faults.Validate().ok());
  faults.torn_tail = 1.5;
  EXPECT_EQ(faults.Validate().code(), absl::StatusCode::kInvalidArgument);
  faults.torn_tail = 0;
  faults.read_bit_flip = -0.1;
  EXPECT_EQ(faults.Validate().code(), absl::StatusCode::kInvalidArgument);
}

// After a failed sync every later Sync of the handle fails the same way,
// even once the fault is gone: the kernel reports a writeback error once.
TEST_F(SimDiskTest, FailedSyncIsStickyOnItsHandle) {
  auto wal = Open(disk_, "/d/wal");
  ASSERT_TRUE(wal->Append("x").ok());
  SimDiskFaults eio;
  eio.sync_eio = 1;
  disk_.set_faults(eio);
  absl::Status first = wal->Sync();
  ASSERT_TRUE(absl::IsDataLoss(first)) << first;
  disk_.set_faults(SimDiskFaults{});
  EXPECT_EQ(wal->Sync(), first);
  // A new handle on the file starts clean.
  auto again = Open(disk_, "/d/wal");
  EXPECT_TRUE(again->Sync().ok());
  EXPECT_EQ(disk_.FileSize("/d/wal").value(), 1u);
  EXPECT_TRUE(absl::IsNotFound(disk_.FileSize("/d/none").status()));
}

}  // namespace
}  // namespace bw::env
