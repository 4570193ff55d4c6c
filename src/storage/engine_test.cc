// The storage::Engine contract (storage/engine.h), one suite run against
// both engines: MemEngine (the simulator's) and RocksEngine on real RocksDB
// in a fresh directory per test. Proves: a batch applies whole and in order
// (a later operation on a key wins); Get, Delete and DeleteRange (an empty
// or inverted range removes nothing); iteration in unsigned byte order
// within [lower, upper), with Seek clamped to the range and binary keys
// (NUL, 0xff) in their places; a View is a point in time that later puts,
// deletes and range deletes do not reach, through Get and iteration alike;
// a reopen keeps everything written; ApproximateBytes grows with the data.
// Crash behaviour, the same check on both: after a crash the engine holds
// every synced batch and a prefix of the later ones, each whole. MemEngine
// is cut at every possible point (PowerLoss); RocksEngine's writer is a
// forked process killed with SIGKILL after syncing some batches and writing
// more, and — RocksDB's log being in the page cache — keeps all of them.
#include "storage/engine.h"

#include <signal.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "storage/mem_engine.h"
#include "storage/rocks_engine.h"

namespace bw::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::Pair;

using Contents = std::vector<std::pair<std::string, std::string>>;

// An engine under test, and what reopening it means.
class MemHarness {
 public:
  Engine& engine() { return engine_; }
  // A clean close and open: the simulated disk keeps every batch.
  void Reopen() { engine_.PowerLoss(engine_.unsynced_batches()); }

 private:
  MemEngine engine_;
};

class RocksHarness {
 public:
  RocksHarness() {
    std::string tmpl = ::testing::TempDir() + "bw_engine_XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    Open();
  }
  ~RocksHarness() {
    engine_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Engine& engine() { return *engine_; }
  void Reopen() {
    engine_.reset();
    Open();
  }

 private:
  void Open() {
    absl::StatusOr<std::unique_ptr<RocksEngine>> e = RocksEngine::Open(dir_);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
  }
  std::string dir_;
  std::unique_ptr<RocksEngine> engine_;
};

template <typename H>
class EngineTest : public ::testing::Test {
 protected:
  Engine& engine() { return h_.engine(); }
  void Write(const WriteBatch& b) { ASSERT_TRUE(engine().Write(b).ok()); }
  std::optional<std::string> Get(std::string_view key, const EngineView* view = nullptr) {
    absl::StatusOr<std::optional<std::string>> v = engine().Get(key, view);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : std::nullopt;
  }
  Contents Scan(KeyRange range = {}, const EngineView* view = nullptr) {
    Contents out;
    std::unique_ptr<EngineIterator> it = engine().NewIterator(std::move(range), view);
    for (it->SeekToFirst(); it->Valid(); it->Next())
      out.emplace_back(std::string(it->key()), std::string(it->value()));
    EXPECT_TRUE(it->status().ok()) << it->status();
    return out;
  }
  H h_;
};

using Engines = ::testing::Types<MemHarness, RocksHarness>;
class EngineNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, MemHarness> ? "Mem" : "Rocks";
  }
};
TYPED_TEST_SUITE(EngineTest, Engines, EngineNames);

TYPED_TEST(EngineTest, ABatchAppliesWholeAndInOrder) {
  WriteBatch b;
  b.Put("a", "1");
  b.Put("b", "x");
  b.Put("a", "2");  // the later put wins
  b.Delete("b");    // and a delete after a put
  b.Put("c", "3");
  this->Write(b);
  EXPECT_EQ(this->Get("a"), "2");
  EXPECT_EQ(this->Get("b"), std::nullopt);
  EXPECT_EQ(this->Get("c"), "3");
  EXPECT_EQ(this->Get("d"), std::nullopt);

  WriteBatch again;
  again.Delete("a");
  again.Put("a", "4");  // a put after a delete
  again.Delete("nothing-there");
  this->Write(again);
  EXPECT_EQ(this->Get("a"), "4");
  EXPECT_THAT(this->Scan(), ElementsAre(Pair("a", "4"), Pair("c", "3")));
}

TYPED_TEST(EngineTest, IterationIsInUnsignedByteOrderWithinTheRange) {
  const std::vector<std::string> keys = {
      std::string(), std::string("\0", 1), "a", std::string("a\0", 2), "ab", "b", "\x7f", "\xff",
      "\xff\xff"};
  WriteBatch b;
  for (size_t i = keys.size(); i-- > 0;)
    b.Put(keys[i], absl::StrCat("v", i));
  this->Write(b);

  Contents all = this->Scan();
  ASSERT_EQ(all.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(all[i].first, keys[i]) << i;
    EXPECT_EQ(all[i].second, absl::StrCat("v", i));
  }
  EXPECT_THAT(this->Scan(KeyRange{"a", "b"}),
              ElementsAre(Pair("a", "v2"), Pair(std::string("a\0", 2), "v3"), Pair("ab", "v4")));
  EXPECT_THAT(this->Scan(KeyRange{"\xff", ""}),
              ElementsAre(Pair("\xff", "v7"), Pair("\xff\xff", "v8")));
  EXPECT_THAT(this->Scan(KeyRange{"c", "d"}), ElementsAre());

  // Seek lands on the first key at or after its target, never outside the range.
  std::unique_ptr<EngineIterator> it = this->engine().NewIterator(KeyRange{"a", "b"});
  it->Seek("a\x01");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "ab");
  it->Next();
  EXPECT_FALSE(it->Valid());
  it->Seek("");  // below the range: its first key
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "a");
  it->Seek("b");  // the range's end
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
}

TYPED_TEST(EngineTest, DeleteRangeRemovesExactlyItsRange) {
  WriteBatch b;
  for (const char* k : {"a", "b", "ba", "bz", "c", "d"})
    b.Put(k, k);
  this->Write(b);
  WriteBatch d;
  d.DeleteRange("b", "c");  // b, ba, bz; not c
  d.DeleteRange("d", "d");  // empty
  d.DeleteRange("z", "a");  // inverted: nothing
  this->Write(d);
  EXPECT_THAT(this->Scan(), ElementsAre(Pair("a", "a"), Pair("c", "c"), Pair("d", "d")));
  // A put after a range delete in the same batch stands.
  WriteBatch e;
  e.DeleteRange("", "z");
  e.Put("c", "again");
  this->Write(e);
  EXPECT_THAT(this->Scan(), ElementsAre(Pair("c", "again")));
}

TYPED_TEST(EngineTest, AViewIsAPointInTime) {
  WriteBatch b;
  b.Put("k1", "old");
  b.Put("k2", "old");
  b.Put("k3", "old");
  this->Write(b);
  std::shared_ptr<const EngineView> view = this->engine().View();
  WriteBatch later;
  later.Put("k1", "new");
  later.Delete("k2");
  later.DeleteRange("k3", "k4");
  later.Put("k4", "new");
  this->Write(later);

  EXPECT_EQ(this->Get("k1", view.get()), "old");
  EXPECT_EQ(this->Get("k2", view.get()), "old");
  EXPECT_EQ(this->Get("k4", view.get()), std::nullopt);
  EXPECT_THAT(this->Scan({}, view.get()),
              ElementsAre(Pair("k1", "old"), Pair("k2", "old"), Pair("k3", "old")));
  EXPECT_THAT(this->Scan(), ElementsAre(Pair("k1", "new"), Pair("k4", "new")));
  // A second view sees the later state, and the first is unchanged by it.
  std::shared_ptr<const EngineView> second = this->engine().View();
  EXPECT_EQ(this->Get("k1", second.get()), "new");
  EXPECT_EQ(this->Get("k1", view.get()), "old");
}

TYPED_TEST(EngineTest, AReopenKeepsEverythingWritten) {
  for (int i = 0; i < 50; ++i) {
    WriteBatch b;
    b.Put(absl::StrCat("key-", i), std::string(100, static_cast<char>('a' + i % 26)));
    if (i % 10 == 9) b.Delete(absl::StrCat("key-", i - 5));
    this->Write(b);
    if (i == 20) {
      ASSERT_TRUE(this->engine().Sync().ok());
    }
  }
  Contents before = this->Scan();
  ASSERT_EQ(before.size(), 45u);
  this->h_.Reopen();
  EXPECT_EQ(this->Scan(), before);
}

TYPED_TEST(EngineTest, ApproximateBytesGrowsWithTheData) {
  const uint64_t empty = this->engine().ApproximateBytes();
  WriteBatch b;
  for (int i = 0; i < 1000; ++i)
    b.Put(absl::StrCat("key-", i), std::string(1000, 'v'));
  this->Write(b);
  // A million bytes of values (RocksDB may hold them in its memtable).
  EXPECT_GE(this->engine().ApproximateBytes(), empty + 900'000);
}

// Crash behaviour. Batch i (from 1) puts "b<i>-0".."b<i>-3" = i and "last"
// = i: a batch cut in part, or a later batch without an earlier one, shows.
WriteBatch CrashBatch(int i) {
  WriteBatch b;
  for (int k = 0; k < 4; ++k)
    b.Put(absl::StrCat("b", i, "-", k), absl::StrCat(i));
  b.Put("last", absl::StrCat(i));
  return b;
}

// Checks that `e` holds exactly batches 1..L for some L >= synced, and returns L.
int CheckPrefixAtLeast(const Engine& e, int total, int synced) {
  absl::StatusOr<std::optional<std::string>> last = e.Get("last");
  EXPECT_TRUE(last.ok()) << last.status();
  int kept = 0;
  if (last.ok() && last->has_value()) kept = std::stoi(**last);
  EXPECT_GE(kept, synced) << "a synced batch was lost";
  EXPECT_LE(kept, total);
  for (int i = 1; i <= total; ++i) {
    for (int k = 0; k < 4; ++k) {
      absl::StatusOr<std::optional<std::string>> v = e.Get(absl::StrCat("b", i, "-", k));
      EXPECT_TRUE(v.ok()) << v.status();
      if (!v.ok()) continue;
      if (i <= kept) {
        EXPECT_EQ(*v, absl::StrCat(i)) << "batch " << i << " of " << kept << " kept is not whole";
      } else {
        EXPECT_EQ(*v, std::nullopt) << "batch " << i << " kept after the prefix of " << kept;
      }
    }
  }
  return kept;
}

TEST(MemEngineCrashTest, APowerLossKeepsTheSyncedBatchesAndAPrefixOfTheRest) {
  constexpr int kTotal = 12;
  constexpr int kSynced = 5;
  for (int keep = 0; keep <= kTotal - kSynced + 2; ++keep) {
    MemEngine e;
    for (int i = 1; i <= kTotal; ++i) {
      ASSERT_TRUE(e.Write(CrashBatch(i)).ok());
      if (i == kSynced) {
        ASSERT_TRUE(e.Sync().ok());
      }
    }
    std::shared_ptr<const EngineView> before = e.View();  // taken before the loss
    e.PowerLoss(keep);
    EXPECT_EQ(CheckPrefixAtLeast(e, kTotal, kSynced), std::min(kTotal, kSynced + keep));
    EXPECT_EQ(e.unsynced_batches(), 0u);
    // A second loss right away loses nothing more: what was kept is on disk.
    e.PowerLoss(0);
    EXPECT_EQ(CheckPrefixAtLeast(e, kTotal, kSynced), std::min(kTotal, kSynced + keep));
  }
}

TEST(RocksEngineCrashTest, AKilledWriterKeepsTheSyncedBatchesAndAPrefixOfTheRest) {
  constexpr int kTotal = 200;
  constexpr int kSynced = 120;
  std::string tmpl = ::testing::TempDir() + "bw_engine_crash_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
  const std::string dir = tmpl;
  // The writer: a forked process that syncs kSynced batches, writes the rest
  // and is killed before it can close the engine.
  EXPECT_EXIT(
      {
        absl::StatusOr<std::unique_ptr<RocksEngine>> e = RocksEngine::Open(dir);
        if (!e.ok()) std::_Exit(2);
        for (int i = 1; i <= kTotal; ++i) {
          if (!(*e)->Write(CrashBatch(i)).ok()) std::_Exit(3);
          if (i == kSynced && !(*e)->Sync().ok()) std::_Exit(4);
        }
        ::raise(SIGKILL);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  absl::StatusOr<std::unique_ptr<RocksEngine>> reopened = RocksEngine::Open(dir);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  // Only the process died: RocksDB's log was in the page cache, so all of it.
  EXPECT_EQ(CheckPrefixAtLeast(**reopened, kTotal, kSynced), kTotal);
  reopened->reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// A checkpoint installs as a new generation under the caller's check; not
// while a view of the current state is open (its files would go).
TEST(RocksEngineTest, ACheckpointInstallsUnderTheCallersCheckAndNotUnderAnOpenView) {
  RocksHarness source;
  RocksHarness target;
  WriteBatch b;
  b.Put("from", "source");
  ASSERT_TRUE(source.engine().Write(b).ok());
  std::string tmpl = ::testing::TempDir() + "bw_engine_snap_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
  const std::string snap = tmpl + "/snap";
  raft::SnapshotMeta meta;
  meta.index = LogIndex(7);
  meta.term = Term(2);
  auto& src = static_cast<RocksEngine&>(source.engine());
  auto& dst = static_cast<RocksEngine&>(target.engine());
  ASSERT_TRUE(src.CreateCheckpoint(snap, meta).ok());

  auto check = [](const Engine& next, const SnapshotManifest& m) -> absl::Status {
    absl::StatusOr<std::optional<std::string>> v = next.Get("from");
    if (!v.ok() || *v != "source" || m.meta.index != LogIndex(7)) {
      return absl::DataLossError("not the source's content");
    }
    return absl::OkStatus();
  };
  {
    std::shared_ptr<const EngineView> view = dst.View();
    absl::Status refused = dst.InstallCheckpoint(snap, check);
    EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  }
  absl::Status failed = dst.InstallCheckpoint(
      snap, [](const Engine&, const SnapshotManifest&) { return absl::DataLossError("no"); });
  EXPECT_EQ(failed.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(*dst.Get("from"), std::nullopt);  // a failed check changes nothing
  ASSERT_TRUE(dst.InstallCheckpoint(snap, check).ok());
  EXPECT_EQ(*dst.Get("from"), "source");
  target.Reopen();
  EXPECT_EQ(*target.engine().Get("from"), "source");
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

}  // namespace
}  // namespace bw::storage
