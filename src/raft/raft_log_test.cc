// The Raft log with a bounded cache (RaftLog::SetReader): applied, durable
// entries leave memory once past the budget, oldest first, and Slice reads
// them back through the reader; unapplied or unstable entries never leave.
// Terms are kept as one run per term, so TermAt, FindConflictByTerm,
// truncation and compaction answer for entries in memory and out of it.
// The latest stamp survives its entry leaving memory but not its compaction.
#include "raft/raft_log.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bw::raft {
namespace {

using ::testing::HasSubstr;

Entry E(uint64_t index, uint64_t term, int64_t time_us = 0) {
  Entry e;
  e.index = LogIndex(index);
  e.term = Term(term);
  e.time_us = time_us;
  e.data = absl::StrCat("entry-", index, "-", term);
  e.data.resize(76, 'x');  // every entry's Bytes() is 100
  return e;
}

std::vector<uint64_t> Indexes(const std::vector<Entry>& es) {
  std::vector<uint64_t> out;
  for (const Entry& e : es)
    out.push_back(e.index.value());
  return out;
}

// The durable log the reader serves, as a test's WAL: index -> entry.
class LogCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_.SetReader(
        [this](LogIndex lo, LogIndex hi, uint64_t max_bytes, std::vector<Entry>* out) {
          ++reads_;
          if (fail_reads_) return absl::DataLossError("wal: damaged");
          uint64_t bytes = 0;
          for (LogIndex i = lo; i <= hi; i = i + 1) {
            auto it = disk_.find(i.value());
            if (it == disk_.end())
              return absl::OutOfRangeError(absl::StrCat("no entry ", i.value()));
            if (!out->empty() && bytes + it->second.Bytes() > max_bytes) break;
            bytes += it->second.Bytes();
            out->push_back(it->second);
          }
          return absl::OkStatus();
        },
        /*cache_bytes=*/3 * E(1, 1).Bytes());
  }
  // Appends entries (as a leader) and makes them durable.
  void AppendDurable(uint64_t from, uint64_t to, uint64_t term, int64_t time_us = 0) {
    for (uint64_t i = from; i <= to; ++i) {
      log_.Append(E(i, term, time_us));
      disk_[i] = E(i, term, time_us);
    }
    log_.StableTo(LogIndex(to), Term(term));
  }
  std::vector<uint64_t> SliceIndexes(uint64_t lo, uint64_t hi, uint64_t max_bytes = UINT64_MAX) {
    std::vector<Entry> out;
    absl::Status st = log_.Slice(LogIndex(lo), LogIndex(hi), max_bytes, &out);
    EXPECT_TRUE(st.ok()) << st;
    for (const Entry& e : out)
      EXPECT_EQ(e, disk_[e.index.value()]);
    return Indexes(out);
  }

  RaftLog log_{LogIndex(0), Term(0)};
  std::map<uint64_t, Entry> disk_;
  int reads_ = 0;
  bool fail_reads_ = false;
};

TEST_F(LogCacheTest, OnlyAppliedDurableEntriesLeaveMemoryAndTheyReadBack) {
  AppendDurable(1, 10, 1);
  // Nothing applied: everything stays, whatever the budget.
  EXPECT_EQ(log_.cached_after(), LogIndex(0));
  log_.CommitTo(LogIndex(10));
  log_.AppliedTo(LogIndex(8));
  // Past the budget of three entries, the applied ones leave: 1..7 go, 8
  // stays with the unapplied 9 and 10.
  EXPECT_EQ(log_.cached_after(), LogIndex(7));
  EXPECT_LE(log_.cached_bytes(), 3 * E(1, 1).Bytes());
  // Unstable entries stay too.
  log_.Append(E(11, 1));
  log_.Append(E(12, 1));
  log_.AppliedTo(LogIndex(10));
  // 10..12 fill the budget: 10 stays too.
  EXPECT_EQ(log_.cached_after(), LogIndex(9));
  EXPECT_EQ(log_.At(LogIndex(11)), E(11, 1));

  // A slice across the boundary: read back, then from memory, in order.
  reads_ = 0;
  disk_[11] = E(11, 1);
  disk_[12] = E(12, 1);
  EXPECT_EQ(SliceIndexes(5, 12), (std::vector<uint64_t>{5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(reads_, 1);
  // The byte budget holds across both parts (and one entry always comes).
  EXPECT_EQ(SliceIndexes(5, 12, 1), (std::vector<uint64_t>{5}));
  EXPECT_EQ(SliceIndexes(9, 12, 3 * E(1, 1).Bytes()), (std::vector<uint64_t>{9, 10, 11}));
  // Terms are known in memory and out of it.
  EXPECT_EQ(log_.TermAt(LogIndex(3)), Term(1));
  EXPECT_EQ(log_.TermAt(LogIndex(12)), Term(1));
  EXPECT_EQ(log_.TermAt(LogIndex(13)), std::nullopt);
}

TEST_F(LogCacheTest, AReadErrorIsReturnedAndNothingIsMadeUp) {
  AppendDurable(1, 10, 1);
  log_.CommitTo(LogIndex(10));
  log_.AppliedTo(LogIndex(10));
  ASSERT_GT(log_.cached_after(), LogIndex(1));
  fail_reads_ = true;
  std::vector<Entry> out;
  absl::Status st = log_.Slice(LogIndex(1), LogIndex(10), UINT64_MAX, &out);
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("damaged"));
  EXPECT_TRUE(out.empty());
  // What is in memory needs no read.
  out.clear();
  EXPECT_TRUE(log_.Slice(log_.cached_after() + 1, LogIndex(10), UINT64_MAX, &out).ok());
  EXPECT_EQ(out.size(), static_cast<size_t>(10 - log_.cached_after().value()));
}

TEST_F(LogCacheTest, TermRunsAnswerAcrossTermsTruncationAndCompaction) {
  AppendDurable(1, 3, 1);
  AppendDurable(4, 6, 2);
  AppendDurable(7, 9, 4);
  EXPECT_EQ(log_.TermAt(LogIndex(0)), Term(0));
  EXPECT_EQ(log_.TermAt(LogIndex(1)), Term(1));
  EXPECT_EQ(log_.TermAt(LogIndex(3)), Term(1));
  EXPECT_EQ(log_.TermAt(LogIndex(4)), Term(2));
  EXPECT_EQ(log_.TermAt(LogIndex(9)), Term(4));
  EXPECT_EQ(log_.last_term(), Term(4));
  // Fast backtracking: the largest index <= 9 with term <= 3 is 6.
  EXPECT_EQ(log_.FindConflictByTerm(LogIndex(9), Term(3)), LogIndex(6));
  EXPECT_EQ(log_.FindConflictByTerm(LogIndex(5), Term(1)), LogIndex(3));
  EXPECT_EQ(log_.FindConflictByTerm(LogIndex(9), Term(0)), LogIndex(0));
  EXPECT_EQ(log_.FindConflictByTerm(LogIndex(20), Term(9)), LogIndex(9));

  // A leader of term 5 overwrites from 5 (nothing committed there).
  log_.CommitTo(LogIndex(4));
  std::vector<Entry> from_leader = {E(5, 5), E(6, 5)};
  disk_[5] = E(5, 5);
  disk_[6] = E(6, 5);
  EXPECT_EQ(log_.MaybeAppend(LogIndex(4), from_leader), LogIndex(6));
  EXPECT_EQ(log_.last_index(), LogIndex(6));
  EXPECT_EQ(log_.TermAt(LogIndex(4)), Term(2));
  EXPECT_EQ(log_.TermAt(LogIndex(5)), Term(5));
  EXPECT_EQ(log_.TermAt(LogIndex(7)), std::nullopt);
  EXPECT_EQ(log_.stabled(), LogIndex(4));
  EXPECT_EQ(log_.FindConflictByTerm(LogIndex(6), Term(4)), LogIndex(4));

  // Compaction inside a run keeps the rest of the run.
  log_.StableTo(LogIndex(6), Term(5));
  log_.CommitTo(LogIndex(6));
  log_.AppliedTo(LogIndex(6));
  log_.CompactTo(LogIndex(2));
  EXPECT_EQ(log_.offset_term(), Term(1));
  EXPECT_EQ(log_.TermAt(LogIndex(1)), std::nullopt);
  EXPECT_EQ(log_.TermAt(LogIndex(3)), Term(1));
  EXPECT_EQ(log_.TermAt(LogIndex(6)), Term(5));
  EXPECT_EQ(SliceIndexes(3, 6), (std::vector<uint64_t>{3, 4, 5, 6}));
  log_.CompactTo(LogIndex(6));
  EXPECT_EQ(log_.last_term(), Term(5));
  EXPECT_EQ(log_.TermAt(LogIndex(6)), Term(5));
  log_.Append(E(7, 5));
  EXPECT_EQ(log_.TermAt(LogIndex(7)), Term(5));
}

TEST_F(LogCacheTest, TheLatestStampOutlivesItsEntryLeavingMemoryButNotItsCompaction) {
  AppendDurable(1, 4, 1, /*time_us=*/1000);
  AppendDurable(5, 8, 1, /*time_us=*/0);  // unstamped (a scripted leader)
  log_.CommitTo(LogIndex(8));
  log_.AppliedTo(LogIndex(8));
  ASSERT_GE(log_.cached_after(), LogIndex(4));
  EXPECT_EQ(log_.LatestStamp(), 1000);
  log_.CompactTo(LogIndex(4));
  EXPECT_EQ(log_.LatestStamp(), 0);
}

}  // namespace
}  // namespace bw::raft
