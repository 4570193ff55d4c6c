// Proves CheckDataDir (bulwark check-data) on a RealDisk, in a fresh
// directory under ::testing::TempDir() that each test removes. Data
// directories are built the way a member writes them: the WAL with
// storage::Wal (or RaftStore, whose SaveSnapshot writes the snapshot file and
// rebases the log) and the state store with RocksState.
//
// A clean directory is reported clean, naming its snapshot, its segment and
// the state's applied index, and no file under it changes. A torn tail is not
// a problem: it is reported, left alone without repair, and cut back to the
// last whole record with repair, after which it is gone. A flipped bit in
// the middle of a segment, segments written by two different nodes, a state
// store applied past the durable commit index and a damaged or truncated
// snapshot file are each a problem naming the file (and for a record its
// offset), and checking changes nothing. A missing directory is NOT_FOUND.

#include "storage/check_data.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "env/real/real_disk.h"
#include "raft/types.h"
#include "storage/raft_store.h"
#include "storage/rocks_state.h"
#include "storage/testing/log_fixtures.h"
#include "storage/wal.h"

namespace bw::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr uint64_t kCluster = 0xC1;

WalOptions Opts(uint64_t node = 1, uint64_t segment_bytes = 1 << 20) {
  WalOptions o;
  o.cluster_id = kCluster;
  o.node_id = NodeId(node);
  o.segment_bytes = segment_bytes;
  return o;
}

std::string SegPath(const std::string& dir, uint64_t seq) {
  return absl::StrFormat("%s/wal-%016x.seg", RaftStore::WalDir(dir), seq);
}

// Every file and directory under `root` (relative name -> contents; a
// directory's name ends in '/').
std::map<std::string, std::string> Tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(e.path(), root).string();
    if (e.is_directory()) {
      out[rel + "/"] = "";
    } else {
      std::ifstream in(e.path(), std::ios::binary);
      std::ostringstream data;
      data << in.rdbuf();
      out[rel] = data.str();
    }
  }
  return out;
}

// What differs between two Trees, one line per file.
std::vector<std::string> Changes(const std::map<std::string, std::string>& before,
                                 const std::map<std::string, std::string>& after) {
  std::vector<std::string> out;
  for (const auto& [name, data] : before) {
    auto it = after.find(name);
    if (it == after.end()) {
      out.push_back("removed " + name);
    } else if (it->second != data) {
      out.push_back(
          absl::StrCat("changed ", name, " (", data.size(), " -> ", it->second.size(), " bytes)"));
    }
  }
  for (const auto& [name, data] : after) {
    if (!before.contains(name)) out.push_back("added " + name);
  }
  return out;
}

class CheckDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "bw_check_data_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    root_ = tmpl;
    dir_ = root_ + "/data";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  DataReport Check(bool repair = false, const std::string& dir = "") {
    absl::StatusOr<DataReport> report = CheckDataDir(disk_, dir.empty() ? dir_ : dir, repair);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : DataReport{};
  }

  std::string Read(const std::string& path) {
    absl::StatusOr<std::string> data = disk_.ReadFile(path);
    EXPECT_TRUE(data.ok()) << data.status();
    return data.ok() ? *data : "<error>";
  }
  void Write(const std::string& path, std::string_view data) {
    ASSERT_TRUE(disk_.WriteFileAtomic(path, data).ok());
  }

  // A WAL in `dir` holding `hs` then entries 1..n of term 1, one Append each,
  // synced. Returns the end offset of each entry's record in the last
  // segment it went to (index i at [i - 1]).
  std::vector<uint64_t> WriteWal(const std::string& dir, uint64_t n, const raft::HardState& hs,
                                 const WalOptions& options = Opts()) {
    std::vector<uint64_t> ends;
    absl::StatusOr<std::unique_ptr<Wal>> wal =
        Wal::Open(disk_, RaftStore::WalDir(dir), options, LogIndex(0));
    EXPECT_TRUE(wal.ok()) << wal.status();
    if (!wal.ok()) return ends;
    EXPECT_TRUE((*wal)->Append(hs, {}).ok());
    for (uint64_t i = 1; i <= n; ++i) {
      EXPECT_TRUE((*wal)->Append(std::nullopt, {Big(i, 1)}).ok());
      ends.push_back((*wal)->segments().back().bytes);
    }
    EXPECT_TRUE((*wal)->Sync().ok());
    return ends;
  }

  // A state store in StateDir(dir) applied up to `applied`.
  void WriteState(const std::string& dir, uint64_t applied) {
    absl::StatusOr<std::unique_ptr<RocksState>> state = RocksState::Open(StateDir(dir));
    ASSERT_TRUE(state.ok()) << state.status();
    StateBatch b;
    b.applied = LogIndex(applied);
    b.writes.push_back(StateWrite{"apple", std::string("red")});
    b.writes.push_back(StateWrite{"kiwi", std::string("green")});
    b.client_seqs.emplace_back(7, 3);
    ASSERT_TRUE((*state)->Commit(b).ok());
    ASSERT_TRUE((*state)->Sync().ok());
  }

  // Entries 1..30 of term 1 with commit 25, then a snapshot at 10 (the
  // snapshot file, and the log rebased to hold 11..30).
  void WriteStoreWithSnapshot() {
    absl::StatusOr<std::unique_ptr<RaftStore>> store = RaftStore::Open(disk_, dir_, Opts());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Append(HS(1, 1, 25), Bigs(1, 30, 1)).ok());
    ASSERT_TRUE((*store)->Sync().ok());
    raft::Snapshot snap;
    snap.meta.index = LogIndex(10);
    snap.meta.term = Term(1);
    snap.meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
    snap.data = "state up to 10";
    ASSERT_TRUE((*store)->SaveSnapshot(snap, HS(1, 1, 25), Bigs(11, 30, 1)).ok());
  }

  std::string root_;
  std::string dir_;
  env::RealDisk disk_;
};

TEST_F(CheckDataTest, CleanDirectoryIsReportedCleanAndNothingChanges) {
  WriteStoreWithSnapshot();
  WriteState(dir_, 20);
  const std::string snap = RaftStore::SnapshotPath(dir_);
  // The rebase left segment 2 alone.
  ASSERT_FALSE(disk_.Exists(SegPath(dir_, 1)));
  ASSERT_TRUE(disk_.Exists(SegPath(dir_, 2)));
  const std::map<std::string, std::string> before = Tree(dir_);

  DataReport r = Check();
  EXPECT_TRUE(r.clean()) << absl::StrJoin(r.problems, "\n");
  EXPECT_THAT(r.problems, IsEmpty());
  EXPECT_THAT(r.torn_tail, IsEmpty());
  const std::string all = absl::StrJoin(r.lines, "\n");
  EXPECT_THAT(all, HasSubstr(absl::StrCat("snapshot ", snap, ": index 10 term 1, 3 voters")));
  EXPECT_THAT(all, HasSubstr(absl::StrCat("segment ", SegPath(dir_, 2), ": seq 2")));
  EXPECT_THAT(all, HasSubstr("member 1 of cluster 00000000000000c1; 20 entries (11..30)"));
  EXPECT_THAT(all, HasSubstr("commit 25"));
  EXPECT_THAT(all, HasSubstr(absl::StrCat("state ", StateDir(dir_),
                                          ": applied index 20, 2 keys, "
                                          "1 clients")));
  EXPECT_THAT(all, Not(HasSubstr("PROBLEM")));
  ASSERT_FALSE(r.lines.empty());
  EXPECT_EQ(r.lines.back(), "clean");
  EXPECT_THAT(Changes(before, Tree(dir_)), IsEmpty());

  // Checking again gives the same report and still changes nothing, also
  // with repair (there is nothing to repair).
  EXPECT_EQ(Check().lines, r.lines);
  EXPECT_THAT(Changes(before, Tree(dir_)), IsEmpty());
  DataReport repaired = Check(/*repair=*/true);
  EXPECT_TRUE(repaired.clean()) << absl::StrJoin(repaired.problems, "\n");
  EXPECT_EQ(repaired.lines, r.lines);
  EXPECT_THAT(Changes(before, Tree(dir_)), IsEmpty());
}

TEST_F(CheckDataTest, TornTailIsReportedLeftAloneAndCutOnlyWithRepair) {
  const std::vector<uint64_t> ends = WriteWal(dir_, 20, HS(1, 1, 15));
  ASSERT_EQ(ends.size(), 20u);
  const std::string path = SegPath(dir_, 1);
  ASSERT_EQ(Read(path).size(), ends[19]);
  // Cut inside the record of entry 20.
  ASSERT_TRUE(disk_.Truncate(path, (ends[18] + ends[19]) / 2).ok());
  const std::string torn = Read(path);
  const std::map<std::string, std::string> before = Tree(dir_);

  DataReport r = Check(/*repair=*/false);
  EXPECT_TRUE(r.clean()) << absl::StrJoin(r.problems, "\n");
  EXPECT_THAT(r.torn_tail, HasSubstr(path));
  EXPECT_THAT(r.torn_tail, HasSubstr(absl::StrCat("at offset ", ends[18])));
  EXPECT_THAT(r.lines, Contains(HasSubstr("torn tail (unsynced")));
  EXPECT_THAT(r.lines, Contains(HasSubstr("19 entries (1..19)")));
  EXPECT_EQ(r.lines.back(), "clean");
  EXPECT_EQ(Read(path), torn);
  EXPECT_THAT(Changes(before, Tree(dir_)), IsEmpty());

  r = Check(/*repair=*/true);
  EXPECT_TRUE(r.clean()) << absl::StrJoin(r.problems, "\n");
  EXPECT_THAT(r.torn_tail, HasSubstr(path));
  EXPECT_THAT(r.lines, Contains(HasSubstr("torn tail cut: ")));
  // Cut back to the end of the last whole record (entry 19's).
  EXPECT_EQ(Read(path), torn.substr(0, ends[18]));

  r = Check(/*repair=*/false);
  EXPECT_TRUE(r.clean()) << absl::StrJoin(r.problems, "\n");
  EXPECT_THAT(r.torn_tail, IsEmpty());
  EXPECT_THAT(r.lines, Contains(HasSubstr("19 entries (1..19)")));
  EXPECT_THAT(r.lines, Not(Contains(HasSubstr("torn tail"))));
}

TEST_F(CheckDataTest, FlippedBitInTheMiddleOfASegmentIsAProblemAndNeverRepaired) {
  const std::vector<uint64_t> ends = WriteWal(dir_, 20, HS(1, 1, 15));
  ASSERT_EQ(ends.size(), 20u);
  const std::string path = SegPath(dir_, 1);
  // A bit in the payload of entry 10's record.
  const uint64_t start = ends[8];
  Write(path, FlipBit(Read(path), (start + kWalRecordHeaderBytes + 20) * 8 + 3));
  const std::map<std::string, std::string> before = Tree(dir_);

  for (bool repair : {false, true}) {
    SCOPED_TRACE(repair ? "repair" : "no repair");
    DataReport r = Check(repair);
    EXPECT_FALSE(r.clean());
    ASSERT_EQ(r.problems.size(), 1u) << absl::StrJoin(r.problems, "\n");
    EXPECT_THAT(r.problems[0], HasSubstr(path));
    EXPECT_THAT(r.problems[0], HasSubstr(absl::StrCat("checksum mismatch at offset ", start)));
    EXPECT_THAT(r.lines, Contains(HasSubstr("PROBLEM ")));
    EXPECT_EQ(r.lines.back(), "1 problem(s) found");
    EXPECT_THAT(r.torn_tail, IsEmpty());
    EXPECT_THAT(Changes(before, Tree(dir_)), IsEmpty());
  }
}

TEST_F(CheckDataTest, SegmentsOfTwoNodesInOneLogAreAProblemNamingBoth) {
  // Two logs alike but for the node that wrote them, each over several
  // segments; node 2's second segment then replaces node 1's.
  const std::string other = root_ + "/other";
  WriteWal(dir_, 100, HS(1, 1, 50), Opts(1, 4096));
  WriteWal(other, 100, HS(1, 1, 50), Opts(2, 4096));
  ASSERT_TRUE(disk_.Exists(SegPath(dir_, 3)));
  ASSERT_TRUE(disk_.Exists(SegPath(other, 3)));
  const std::string foreign = SegPath(dir_, 2);
  Write(foreign, Read(SegPath(other, 2)));
  const std::map<std::string, std::string> before = Tree(dir_);

  DataReport r = Check();
  EXPECT_FALSE(r.clean());
  ASSERT_EQ(r.problems.size(), 1u) << absl::StrJoin(r.problems, "\n");
  EXPECT_THAT(r.problems[0], HasSubstr(foreign));
  EXPECT_THAT(r.problems[0], HasSubstr("written by node 2 of cluster 00000000000000c1"));
  EXPECT_THAT(r.problems[0], HasSubstr("the others by node 1 of cluster 00000000000000c1"));
  // The log itself reads whole.
  EXPECT_THAT(r.lines, Contains(HasSubstr("100 entries (1..100)")));
  EXPECT_THAT(Changes(before, Tree(dir_)), IsEmpty());

  // The member itself refuses the directory.
  absl::StatusOr<std::unique_ptr<Wal>> wal =
      Wal::Open(disk_, RaftStore::WalDir(dir_), Opts(1, 4096), LogIndex(0));
  EXPECT_TRUE(absl::IsFailedPrecondition(wal.status())) << wal.status();
}

TEST_F(CheckDataTest, StateAppliedPastTheDurableCommitIndexIsAProblem) {
  WriteWal(dir_, 10, HS(1, 1, 5));
  WriteState(dir_, 8);
  const std::map<std::string, std::string> before = Tree(dir_);

  DataReport r = Check();
  EXPECT_FALSE(r.clean());
  ASSERT_EQ(r.problems.size(), 1u) << absl::StrJoin(r.problems, "\n");
  EXPECT_THAT(r.problems[0], HasSubstr(StateDir(dir_)));
  EXPECT_THAT(r.problems[0], HasSubstr("applied index 8 is past the durable commit index 5"));
  EXPECT_THAT(Changes(before, Tree(dir_)), IsEmpty());

  // At the commit index it is fine.
  fs::remove_all(StateDir(dir_));
  WriteState(dir_, 5);
  r = Check();
  EXPECT_TRUE(r.clean()) << absl::StrJoin(r.problems, "\n");
}

// Found by the crash test under load: a member killed while its state store
// was first being created leaves the directory without the pointer file.
// Nothing acknowledged lived there; the next start builds it from the log.
TEST_F(CheckDataTest, StateStoreWhoseCreationWasInterruptedIsNotAProblem) {
  WriteWal(dir_, 10, HS(1, 1, 5));
  WriteState(dir_, 5);
  fs::remove(StateDir(dir_) + "/CURRENT_STATE");
  DataReport r = Check();
  EXPECT_TRUE(r.clean()) << absl::StrJoin(r.problems, "\n");
  EXPECT_THAT(absl::StrJoin(r.lines, "\n"), HasSubstr("creation was interrupted"));
  // And the store opens again (rebuilt), as the member's next start does.
  absl::StatusOr<std::unique_ptr<RocksState>> state = RocksState::Open(StateDir(dir_));
  EXPECT_TRUE(state.ok()) << state.status();
}

TEST_F(CheckDataTest, DamagedSnapshotIsAProblemNamingIt) {
  WriteStoreWithSnapshot();
  const std::string snap = RaftStore::SnapshotPath(dir_);
  const std::string good = Read(snap);

  // A bit flipped in the snapshot's data.
  Write(snap, FlipBit(good, (good.size() - 3) * 8));
  std::map<std::string, std::string> before = Tree(dir_);
  DataReport r = Check();
  EXPECT_FALSE(r.clean());
  ASSERT_FALSE(r.problems.empty());
  EXPECT_THAT(r.problems[0], HasSubstr(snap));
  EXPECT_THAT(r.problems[0], HasSubstr("checksum mismatch"));
  EXPECT_THAT(r.lines, Not(Contains(HasSubstr("snapshot: none"))));
  EXPECT_THAT(Changes(before, Tree(dir_)), IsEmpty());

  // Cut short.
  Write(snap, good.substr(0, good.size() / 2));
  before = Tree(dir_);
  r = Check();
  EXPECT_FALSE(r.clean());
  ASSERT_FALSE(r.problems.empty());
  EXPECT_THAT(r.problems[0], HasSubstr(snap));
  EXPECT_THAT(r.problems[0], HasSubstr("not a bulwark snapshot"));
  EXPECT_THAT(Changes(before, Tree(dir_)), IsEmpty());

  // Restored, it is clean again.
  Write(snap, good);
  r = Check();
  EXPECT_TRUE(r.clean()) << absl::StrJoin(r.problems, "\n");
}

TEST_F(CheckDataTest, MissingDirectoryIsNotFound) {
  const std::string missing = root_ + "/missing";
  absl::StatusOr<DataReport> r = CheckDataDir(disk_, missing, /*repair=*/false);
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(missing));
  r = CheckDataDir(disk_, missing, /*repair=*/true);
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_FALSE(disk_.Exists(missing));
}

// check-data --repair "discards only bytes that were never synced ... Nothing
// else is ever changed" (check_data.h), but it opens the log with Wal::Open
// (repair = true), which also does what a starting member does: it creates
// the wal directory and, when no segment with a record is left, starts a new
// one -- with check-data's own identity, node 0 of cluster 0 (check_identity
// is off and the options are defaults). A crash right after a member created
// its first segment leaves that file empty; check-data --repair removes it
// and writes wal-0000000000000001.seg "by node 0 of cluster 0", and the
// member then refuses to start: FAILED_PRECONDITION, wrong data directory.
// (Without check-data the member would just have started its log afresh.)
TEST_F(CheckDataTest, RepairOfAnEmptyFirstSegmentLeavesALogTheMemberCanOpen) {
  ASSERT_TRUE(disk_.CreateDir(RaftStore::WalDir(dir_)).ok());
  Write(SegPath(dir_, 1), "");

  DataReport r = Check(/*repair=*/true);
  EXPECT_TRUE(r.clean()) << absl::StrJoin(r.problems, "\n");
  absl::StatusOr<std::unique_ptr<Wal>> wal =
      Wal::Open(disk_, RaftStore::WalDir(dir_), Opts(1), LogIndex(0));
  EXPECT_TRUE(wal.ok()) << wal.status();

  // Nor may it create a log where there was none.
  const std::string bare = root_ + "/bare";
  ASSERT_TRUE(disk_.CreateDir(bare).ok());
  r = Check(/*repair=*/true, bare);
  EXPECT_TRUE(r.clean()) << absl::StrJoin(r.problems, "\n");
  EXPECT_FALSE(disk_.Exists(RaftStore::WalDir(bare)));
}

}  // namespace
}  // namespace bw::storage
