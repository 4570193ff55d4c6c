// Proves RaftStore's durability contract on a SimDisk. What Append+Sync
// wrote comes back from a reopen (hard state and entries, with a lower index
// overwriting the suffix from there); unsynced appends vanish at a power loss,
// and across hundreds of crash seeds with torn tails the store reopens to a
// prefix of what was written. A log cut at every byte offset inside its last
// record (the file written by hand with WriteFileAtomic) opens cleanly without
// that record, is truncated on disk to the last good record, and opens the
// same way again. A bit flipped in a record that has data after it is
// corruption: Open fails with DATA_LOSS naming the log file and the record's
// offset, and leaves the file alone. Snapshots: SaveSnapshot then reopen gives
// the snapshot, applied = its index and only the entries after it; a snapshot
// with any bit flipped, bad magic or a truncated body is DATA_LOSS; so are a
// commit index past the log, an entry that leaves a gap and an unknown record
// type. Record boundaries are taken from log_bytes() after each Append, so
// the tests do not depend on the encoding's sizes.
#include "storage/raft_store.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "env/seeded_random.h"
#include "env/sim/sim_disk.h"
#include "raft/types.h"
#include "storage/testing/log_fixtures.h"

namespace bw::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kDir[] = "d";
constexpr char kLogPath[] = "d/wal/wal-0000000000000001.seg";
constexpr char kSnapshotPath[] = "d/snapshot";

WalOptions Opts() {
  WalOptions o;
  o.node_id = NodeId(1);
  return o;
}

class RaftStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<RaftStore> OpenStore() {
    absl::StatusOr<std::unique_ptr<RaftStore>> store = RaftStore::Open(disk_, kDir, Opts());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  // Opens, takes what was loaded and closes again.
  raft::Restored Load() {
    std::unique_ptr<RaftStore> store = OpenStore();
    return store ? store->TakeLoaded() : raft::Restored{};
  }
  absl::Status OpenStatus() { return RaftStore::Open(disk_, kDir, Opts()).status(); }
  std::string ReadLog() {
    absl::StatusOr<std::string> data = disk_.ReadFile(kLogPath);
    EXPECT_TRUE(data.ok()) << data.status();
    return data.ok() ? *data : "<error>";
  }
  void WriteLog(std::string_view data) { ASSERT_TRUE(disk_.WriteFileAtomic(kLogPath, data).ok()); }

  // Appends each record in its own Append and syncs; returns the offset at
  // which every record starts, plus the end of the file.
  std::vector<uint64_t> WriteRecords(const std::vector<raft::Entry>& entries,
                                     const std::optional<raft::HardState>& last_hs) {
    std::unique_ptr<RaftStore> store = OpenStore();
    std::vector<uint64_t> starts = {store->log_bytes()};
    for (const raft::Entry& e : entries) {
      EXPECT_TRUE(store->Append(std::nullopt, {e}).ok());
      starts.push_back(store->log_bytes());
    }
    if (last_hs) {
      EXPECT_TRUE(store->Append(last_hs, {}).ok());
      starts.push_back(store->log_bytes());
    }
    EXPECT_TRUE(store->Sync().ok());
    return starts;
  }

  env::SeededRandom random_{7};
  env::SimDisk disk_{random_};
};

TEST_F(RaftStoreTest, FreshStoreIsFresh) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(store->fresh());
    // The first segment holds its header and the initial hard state.
    EXPECT_GT(store->log_bytes(), 0u);
    EXPECT_EQ(store->wal().segments().size(), 1u);
    raft::Restored r = store->TakeLoaded();
    EXPECT_TRUE(r.entries.empty());
    EXPECT_EQ(r.hard_state, raft::HardState{});
    EXPECT_TRUE(r.snapshot.Empty());
    EXPECT_EQ(r.applied, LogIndex(0));
    // An empty Append persists nothing.
    ASSERT_TRUE(store->Append(std::nullopt, {}).ok());
    ASSERT_TRUE(store->Sync().ok());
    EXPECT_TRUE(store->fresh());
  }
  // Opening created the (empty) log; that is still fresh.
  EXPECT_TRUE(OpenStore()->fresh());
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(HS(1, 1, 0), {}).ok());
    EXPECT_FALSE(store->fresh());
    ASSERT_TRUE(store->Sync().ok());
  }
  EXPECT_FALSE(OpenStore()->fresh());
}

TEST_F(RaftStoreTest, AppendSyncReopenLoadsHardStateAndEntries) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(HS(1, 2, 0), {E(1, 1), E(2, 1)}).ok());
    ASSERT_TRUE(store->Append(std::nullopt, {E(3, 1, std::string("\0bin\xFF", 5))}).ok());
    ASSERT_TRUE(store->Append(HS(2, 3, 2), {}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  raft::Restored r = Load();
  EXPECT_EQ(r.hard_state, HS(2, 3, 2));
  EXPECT_THAT(Show(r.entries), ElementsAre("1@1:e1t1", "2@1:e2t1",
                                           absl::StrCat("3@1:", std::string("\0bin\xFF", 5))));
  EXPECT_EQ(r.entries[2], E(3, 1, std::string("\0bin\xFF", 5)));
  EXPECT_TRUE(r.snapshot.Empty());
  EXPECT_EQ(r.applied, LogIndex(0));

  // Appends after a reopen go after what was there.
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(HS(2, 3, 4), {E(4, 2)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  r = Load();
  EXPECT_EQ(r.hard_state, HS(2, 3, 4));
  EXPECT_THAT(Show(r.entries), ElementsAre("1@1:e1t1", "2@1:e2t1", HasSubstr("3@1:"), "4@2:e4t2"));
}

TEST_F(RaftStoreTest, UnsyncedAppendsAreLostAtACrash) {
  std::unique_ptr<RaftStore> store = OpenStore();
  ASSERT_TRUE(store->Append(HS(1, 1, 1), {E(1, 1), E(2, 1)}).ok());
  ASSERT_TRUE(store->Sync().ok());
  ASSERT_TRUE(store->Append(HS(2, 1, 3), {E(3, 2), E(4, 2)}).ok());
  disk_.Crash();  // torn_tail is 0: every unsynced byte is dropped
  store.reset();

  raft::Restored r = Load();
  EXPECT_EQ(r.hard_state, HS(1, 1, 1));
  EXPECT_THAT(Show(r.entries), ElementsAre("1@1:e1t1", "2@1:e2t1"));

  // The store is usable again after the crash.
  store = OpenStore();
  ASSERT_TRUE(store->Append(HS(3, 2, 3), {E(3, 3)}).ok());
  ASSERT_TRUE(store->Sync().ok());
  store.reset();
  r = Load();
  EXPECT_EQ(r.hard_state, HS(3, 2, 3));
  EXPECT_THAT(Show(r.entries), ElementsAre("1@1:e1t1", "2@1:e2t1", "3@3:e3t3"));
}

// With every crash keeping a random byte prefix of the unsynced tail, the
// store always reopens, to the synced records plus a prefix of the rest, and
// its hard state never points past its log.
TEST(RaftStoreCrashTest, TornCrashesReopenToAPrefix) {
  const std::vector<std::string> all = {"1@1:e1t1", "2@1:e2t1", "3@2:e3t2",
                                        "4@2:e4t2", "5@2:e5t2", "6@2:e6t2"};
  uint64_t torn_mid_record = 0;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    env::SeededRandom random(seed);
    env::SimDiskFaults faults;
    faults.torn_tail = 1;
    env::SimDisk disk(random, faults);
    {
      auto store = RaftStore::Open(disk, kDir, Opts());
      ASSERT_TRUE(store.ok()) << store.status();
      ASSERT_TRUE((*store)->Append(HS(1, 1, 1), {E(1, 1), E(2, 1)}).ok());
      ASSERT_TRUE((*store)->Sync().ok());
      for (uint64_t i = 3; i <= 6; ++i) {
        ASSERT_TRUE((*store)->Append(HS(2, 1, i - 1), {E(i, 2)}).ok());
      }
      disk.Crash(seed);
    }
    absl::StatusOr<std::string> before = disk.ReadFile(kLogPath);
    ASSERT_TRUE(before.ok());
    raft::Restored r;
    {
      auto store = RaftStore::Open(disk, kDir, Opts());
      ASSERT_TRUE(store.ok()) << store.status();
      r = (*store)->TakeLoaded();
    }
    ASSERT_GE(r.entries.size(), 2u);
    ASSERT_LE(r.entries.size(), all.size());
    EXPECT_EQ(Show(r.entries),
              std::vector<std::string>(all.begin(), all.begin() + r.entries.size()));
    EXPECT_LE(r.hard_state.commit, LogIndex(r.entries.size()));
    EXPECT_GE(r.hard_state.commit, LogIndex(1));
    absl::StatusOr<std::string> after = disk.ReadFile(kLogPath);
    ASSERT_TRUE(after.ok());
    if (after->size() < before->size()) ++torn_mid_record;
    // A second open finds the same, and changes nothing more.
    auto again = RaftStore::Open(disk, kDir, Opts());
    ASSERT_TRUE(again.ok()) << again.status();
    raft::Restored r2 = (*again)->TakeLoaded();
    EXPECT_EQ(Show(r2.entries), Show(r.entries));
    EXPECT_EQ(r2.hard_state, r.hard_state);
    EXPECT_EQ(disk.ReadFile(kLogPath).value(), *after);
  }
  // The seeds did exercise torn records, not only clean record boundaries.
  EXPECT_GT(torn_mid_record, 100u);
}

TEST_F(RaftStoreTest, LowerIndexOverwritesTheSuffix) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(std::nullopt, {E(1, 1), E(2, 1), E(3, 1), E(4, 1)}).ok());
    ASSERT_TRUE(store->Append(std::nullopt, {E(5, 2), E(6, 2), E(7, 2)}).ok());
    ASSERT_TRUE(store->Append(HS(3, 1, 4), {E(6, 3)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  raft::Restored r = Load();
  EXPECT_THAT(Show(r.entries),
              ElementsAre("1@1:e1t1", "2@1:e2t1", "3@1:e3t1", "4@1:e4t1", "5@2:e5t2", "6@3:e6t3"));
  EXPECT_EQ(r.hard_state, HS(3, 1, 4));

  // Appending after the overwrite extends it; an overwrite at the very first
  // index replaces everything.
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(std::nullopt, {E(7, 3)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  EXPECT_THAT(Show(Load().entries), ElementsAre("1@1:e1t1", "2@1:e2t1", "3@1:e3t1", "4@1:e4t1",
                                                "5@2:e5t2", "6@3:e6t3", "7@3:e7t3"));
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(HS(4, 2, 0), {E(1, 4)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  EXPECT_THAT(Show(Load().entries), ElementsAre("1@4:e1t4"));
}

TEST_F(RaftStoreTest, TornLastEntryIsDroppedAtEveryOffset) {
  std::vector<uint64_t> starts = WriteRecords({E(1, 1), E(2, 1), E(3, 1, "the last one")}, {});
  ASSERT_EQ(starts.size(), 4u);
  const std::string full = ReadLog();
  ASSERT_EQ(full.size(), starts[3]);
  const uint64_t last = starts[2];
  for (uint64_t cut = last; cut < full.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut, " of ", full.size()));
    WriteLog(full.substr(0, cut));
    raft::Restored r = Load();
    EXPECT_THAT(Show(r.entries), ElementsAre("1@1:e1t1", "2@1:e2t1"));
    EXPECT_EQ(ReadLog(), full.substr(0, last));
    raft::Restored again = Load();
    EXPECT_THAT(Show(again.entries), ElementsAre("1@1:e1t1", "2@1:e2t1"));
    EXPECT_EQ(ReadLog(), full.substr(0, last));
  }
  // The whole file is not torn.
  WriteLog(full);
  EXPECT_EQ(Load().entries.size(), 3u);
  EXPECT_EQ(ReadLog(), full);
}

TEST_F(RaftStoreTest, TornLastHardStateIsDroppedAtEveryOffset) {
  uint64_t last = 0;
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(HS(1, 1, 0), {}).ok());
    ASSERT_TRUE(store->Append(HS(2, 1, 1), {E(1, 2)}).ok());
    last = store->log_bytes();
    ASSERT_TRUE(store->Append(HS(5, 3, 1), {}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  const std::string full = ReadLog();
  const std::string without_last = full.substr(0, last);
  ASSERT_LT(without_last.size(), full.size());
  for (uint64_t cut = without_last.size(); cut < full.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut, " of ", full.size()));
    WriteLog(full.substr(0, cut));
    for (int pass = 0; pass < 2; ++pass) {
      raft::Restored r = Load();
      EXPECT_EQ(r.hard_state, HS(2, 1, 1)) << "pass " << pass;
      EXPECT_THAT(Show(r.entries), ElementsAre("1@2:e1t2")) << "pass " << pass;
      EXPECT_EQ(ReadLog(), without_last) << "pass " << pass;
    }
  }
  WriteLog(full);
  EXPECT_EQ(Load().hard_state, HS(5, 3, 1));
}

TEST_F(RaftStoreTest, BitFlipInTheMiddleRecordIsDataLoss) {
  std::vector<uint64_t> starts = WriteRecords({E(1, 1), E(2, 1, "middle record"), E(3, 1)}, {});
  const std::string good = ReadLog();
  const uint64_t mid = starts[1];
  const uint64_t mid_end = starts[2];
  const std::string bad = FlipBit(good, 8 * ((mid + mid_end) / 2) + 3);
  WriteLog(bad);
  absl::Status st = OpenStatus();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr(kLogPath));
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("offset ", mid, " ")));
  // Corruption is reported, never repaired by truncation.
  EXPECT_EQ(ReadLog(), bad);
}

// Every bit of the middle record covered by its checksum (the checksum
// itself, the type and the payload) is caught, with the record's offset.
TEST_F(RaftStoreTest, EveryChecksummedBitOfTheMiddleRecordIsCaught) {
  std::vector<uint64_t> starts = WriteRecords({E(1, 1), E(2, 1, "middle"), E(3, 1)}, {});
  const std::string good = ReadLog();
  const uint64_t mid = starts[1];
  const uint64_t mid_end = starts[2];
  for (uint64_t bit = 8 * (mid + 4); bit < 8 * mid_end; ++bit) {
    SCOPED_TRACE(absl::StrCat("bit ", bit, " (byte ", bit / 8, ")"));
    const std::string bad = FlipBit(good, bit);
    WriteLog(bad);
    absl::Status st = OpenStatus();
    ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
    EXPECT_THAT(st.message(), HasSubstr(kLogPath));
    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("offset ", mid, " ")));
    EXPECT_EQ(ReadLog(), bad);
  }
}

// A damaged length must not pass for a torn tail: that would drop the
// synced records after it. Every bit of the middle record's length is
// flipped in turn; each must be DATA_LOSS with the file left as it was.
// (Found by this test: the length had no checksum of its own.)
TEST_F(RaftStoreTest, BitFlipInTheMiddleRecordLengthIsDataLoss) {
  std::vector<uint64_t> starts = WriteRecords({E(1, 1), E(2, 1, "middle"), E(3, 1)}, {});
  const std::string good = ReadLog();
  const uint64_t mid = starts[1];
  // Each length bit whose flip is not reported as DATA_LOSS, with what Open
  // did instead.
  std::vector<std::string> missed;
  for (uint64_t bit = 0; bit < 32; ++bit) {
    WriteLog(FlipBit(good, 8 * mid + bit));
    absl::Status st = OpenStatus();
    const uint64_t size_after = ReadLog().size();
    if (st.code() != absl::StatusCode::kDataLoss || size_after != good.size()) {
      missed.push_back(absl::StrCat("length bit ", bit, ": Open returned ", st.ToString(),
                                    " and cut the log from ", good.size(), " to ", size_after,
                                    " bytes"));
    }
  }
  EXPECT_THAT(missed, IsEmpty());
}

TEST_F(RaftStoreTest, CommitPastTheLastEntryIsDataLoss) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(HS(1, 1, 5), {E(1, 1), E(2, 1), E(3, 1)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  absl::Status st = OpenStatus();
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr(kLogPath));
  EXPECT_THAT(st.message(), HasSubstr("commit index 5"));
  EXPECT_THAT(st.message(), HasSubstr("last entry 3"));
}

TEST_F(RaftStoreTest, CommitAtTheLastEntryIsFine) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(HS(1, 1, 3), {E(1, 1), E(2, 1), E(3, 1)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  EXPECT_EQ(Load().hard_state.commit, LogIndex(3));
}

TEST_F(RaftStoreTest, EntryLeavingAGapIsDataLoss) {
  WriteRecords({E(1, 1), E(2, 1), E(5, 1)}, {});
  absl::Status st = OpenStatus();
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr("entry 5"));
  EXPECT_THAT(st.message(), HasSubstr("gap after 2"));
}

TEST_F(RaftStoreTest, UnknownRecordTypeIsDataLoss) {
  std::vector<uint64_t> starts = WriteRecords({E(1, 1)}, {});
  std::string log = ReadLog();
  AppendWalRecord(&log, 9, "what is this");
  WriteLog(log);
  absl::Status st = OpenStatus();
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr("unknown record type"));
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("offset ", starts[1])));
}

raft::Snapshot Snap(uint64_t index, uint64_t term, std::string data) {
  raft::Snapshot s;
  s.meta.index = LogIndex(index);
  s.meta.term = Term(term);
  s.meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
  s.meta.conf.learners = {NodeId(4)};
  s.data = std::move(data);
  return s;
}

TEST_F(RaftStoreTest, SnapshotThenReopenLoadsItAndTheEntriesAfter) {
  const raft::Snapshot snap = Snap(4, 2, std::string("state\0machine", 13));
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(
        store->Append(HS(2, 1, 5), {E(1, 1), E(2, 1), E(3, 2), E(4, 2), E(5, 2), E(6, 2)}).ok());
    ASSERT_TRUE(store->Sync().ok());
    ASSERT_TRUE(store->SaveSnapshot(snap, HS(2, 1, 5), {E(3, 2), E(4, 2), E(5, 2), E(6, 2)}).ok());
  }
  raft::Restored r = Load();
  EXPECT_EQ(r.snapshot.meta, snap.meta);
  EXPECT_EQ(r.snapshot.data, snap.data);
  EXPECT_EQ(r.applied, LogIndex(4));
  EXPECT_EQ(r.conf, snap.meta.conf);
  EXPECT_EQ(r.hard_state, HS(2, 1, 5));
  EXPECT_THAT(Show(r.entries), ElementsAre("5@2:e5t2", "6@2:e6t2"));

  // The rewritten log takes appends, and a second snapshot replaces the first.
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    EXPECT_FALSE(store->fresh());
    ASSERT_TRUE(store->Append(HS(3, 1, 7), {E(7, 3)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  r = Load();
  EXPECT_THAT(Show(r.entries), ElementsAre("5@2:e5t2", "6@2:e6t2", "7@3:e7t3"));
  EXPECT_EQ(r.hard_state, HS(3, 1, 7));
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->SaveSnapshot(Snap(7, 3, "later"), HS(3, 1, 7), {}).ok());
  }
  r = Load();
  EXPECT_EQ(r.snapshot.meta.index, LogIndex(7));
  EXPECT_EQ(r.snapshot.data, "later");
  EXPECT_EQ(r.applied, LogIndex(7));
  EXPECT_TRUE(r.entries.empty());
}

// A snapshot of the member's own state leaves the log as it is: the
// entries after the compaction point still read back, and a reopen loads
// the snapshot and the entries after it (those at or below it skipped).
TEST_F(RaftStoreTest, OwnSnapshotKeepsTheLogAndItsEntriesReadBack) {
  const raft::Snapshot snap = Snap(4, 2, "own state");
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(
        store->Append(HS(2, 1, 5), {E(1, 1), E(2, 1), E(3, 2), E(4, 2), E(5, 2), E(6, 2)}).ok());
    ASSERT_TRUE(store->Sync().ok());
    const std::string before = ReadLog();
    // Compacted to 2: entries 3.. stay readable.
    ASSERT_TRUE(store->SaveOwnSnapshot(snap, LogIndex(2)).ok());
    EXPECT_EQ(ReadLog(), before) << "the log was rewritten";
    std::vector<raft::Entry> back;
    ASSERT_TRUE(store->ReadEntries(LogIndex(3), LogIndex(6), UINT64_MAX, &back).ok());
    EXPECT_THAT(Show(back), ElementsAre("3@2:e3t2", "4@2:e4t2", "5@2:e5t2", "6@2:e6t2"));
    back.clear();
    EXPECT_TRUE(absl::IsOutOfRange(store->ReadEntries(LogIndex(2), LogIndex(3), 1, &back)));
    ASSERT_TRUE(store->Append(HS(2, 1, 7), {E(7, 2)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  raft::Restored r = Load();
  EXPECT_EQ(r.snapshot.meta, snap.meta);
  EXPECT_EQ(r.snapshot.data, "own state");
  EXPECT_EQ(r.hard_state, HS(2, 1, 7));
  EXPECT_THAT(Show(r.entries), ElementsAre("5@2:e5t2", "6@2:e6t2", "7@2:e7t2"));
}

TEST_F(RaftStoreTest, CommitBelowTheSnapshotIsRaisedToIt) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->SaveSnapshot(Snap(10, 4, "s"), HS(4, 0, 2), {E(11, 4)}).ok());
  }
  raft::Restored r = Load();
  EXPECT_EQ(r.hard_state.commit, LogIndex(10));
  EXPECT_EQ(r.hard_state.term, Term(4));
  EXPECT_THAT(Show(r.entries), ElementsAre("11@4:e11t4"));
}

TEST_F(RaftStoreTest, SnapshotBitFlipIsChecksumMismatch) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->SaveSnapshot(Snap(4, 2, "snapshot data"), HS(2, 1, 4), {}).ok());
  }
  const std::string good = disk_.ReadFile(kSnapshotPath).value();
  // The last bytes of the file are the data.
  ASSERT_TRUE(disk_.WriteFileAtomic(kSnapshotPath, FlipBit(good, 8 * good.size() - 5)).ok());
  absl::Status st = OpenStatus();
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr(kSnapshotPath));
  EXPECT_THAT(st.message(), HasSubstr("checksum mismatch"));

  // Any single flipped bit anywhere in the file is refused.
  for (uint64_t bit = 0; bit < 8 * good.size(); ++bit) {
    SCOPED_TRACE(absl::StrCat("bit ", bit));
    ASSERT_TRUE(disk_.WriteFileAtomic(kSnapshotPath, FlipBit(good, bit)).ok());
    EXPECT_EQ(OpenStatus().code(), absl::StatusCode::kDataLoss);
  }
  ASSERT_TRUE(disk_.WriteFileAtomic(kSnapshotPath, good).ok());
  EXPECT_EQ(Load().snapshot.data, "snapshot data");
}

TEST_F(RaftStoreTest, SnapshotWithBadMagicIsDataLoss) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->SaveSnapshot(Snap(4, 2, "snapshot data"), HS(2, 1, 4), {}).ok());
  }
  std::string bad = disk_.ReadFile(kSnapshotPath).value();
  bad[0] = 'X';
  ASSERT_TRUE(disk_.WriteFileAtomic(kSnapshotPath, bad).ok());
  absl::Status st = OpenStatus();
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr(kSnapshotPath));
  EXPECT_THAT(st.message(), HasSubstr("bad magic"));
}

TEST_F(RaftStoreTest, TruncatedOrEmptySnapshotIsDataLoss) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->SaveSnapshot(Snap(4, 2, "snapshot data"), HS(2, 1, 4), {}).ok());
  }
  const std::string good = disk_.ReadFile(kSnapshotPath).value();
  for (size_t n = 0; n < good.size(); ++n) {
    SCOPED_TRACE(absl::StrCat("snapshot cut to ", n, " bytes"));
    ASSERT_TRUE(disk_.WriteFileAtomic(kSnapshotPath, good.substr(0, n)).ok());
    absl::Status st = OpenStatus();
    ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
    EXPECT_THAT(st.message(), HasSubstr(kSnapshotPath));
  }
}

// A crash after a snapshot was saved and before the log was rebased on it
// leaves entries of the replaced log after the snapshot. Those with a lower
// term than the snapshot's cannot belong to this member's log (terms never
// decrease along a log) and are dropped at load.
TEST_F(RaftStoreTest, EntriesOfAReplacedLogAfterTheSnapshotAreDropped) {
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(HS(1, 1, 3), {E(1, 1), E(2, 1), E(3, 1), E(4, 1), E(5, 1)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  // The snapshot file as SaveSnapshot writes it, at index 3 of term 3,
  // without the rebase of the log that would follow it.
  {
    absl::StatusOr<std::unique_ptr<RaftStore>> other = RaftStore::Open(disk_, "other", Opts());
    ASSERT_TRUE(other.ok()) << other.status();
    ASSERT_TRUE((*other)->SaveSnapshot(Snap(3, 3, "s"), HS(3, 2, 3), {}).ok());
  }
  absl::StatusOr<std::string> snap = disk_.ReadFile("other/snapshot");
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_TRUE(disk_.WriteFileAtomic(kSnapshotPath, *snap).ok());
  raft::Restored r = Load();
  EXPECT_EQ(r.snapshot.meta.index, LogIndex(3));
  EXPECT_EQ(r.snapshot.meta.term, Term(3));
  EXPECT_TRUE(r.entries.empty()) << Show(r.entries).size() << " stale entries kept";

  // Entries of the snapshot's term or later after it are kept.
  {
    std::unique_ptr<RaftStore> store = OpenStore();
    ASSERT_TRUE(store->Append(HS(3, 2, 4), {E(4, 3)}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  r = Load();
  EXPECT_THAT(Show(r.entries), ElementsAre("4@3:e4t3"));
}

}  // namespace
}  // namespace bw::storage
