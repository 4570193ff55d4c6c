// Proves the segmented write-ahead log's recovery contract on a SimDisk, with
// 4 KiB segments so that a few hundred small entries span many files.
//
// Rotation: entries written one Append at a time over many segments come
// back from a reopen in order with the last hard state; the segment files are
// numbered without gaps, each one's predecessor index is the last index of
// the one before, and none overruns its size.
// Torn writes: the last segment cut at every byte inside its last record
// opens without that record, reports a torn tail naming the file and the
// offset, is truncated there, and opens cleanly the next time; a read-only
// open (repair = false) reports the same but changes nothing.
// Corruption is never repaired: a flipped bit anywhere in a record of a
// segment that is not the last, a record cut short at the end of a segment
// that is not the last, a rotated segment that does not start where the one
// before ends, a whole last record whose checksum fails, a missing
// middle segment, a missing first segment not covered by the snapshot, a bad
// magic or format version all fail Open with DATA_LOSS naming the segment
// (and, for a record, its offset) and leave the files as they were. A
// directory written by another node or cluster is FAILED_PRECONDITION naming
// both.
// Snapshots: Rebase + Release leave only the rebased segment and a reopen
// past the snapshot returns just the entries after it, also when a crash
// comes between Rebase and Release. A lower index overwrites the suffix, also
// across a segment boundary.
// Failures: a failed sync is sticky; a full disk at rotation refuses
// the append without leaving a segment file behind, and is not sticky.
// Crashes: unsynced appends vanish; across 200 seeds with torn tails the log
// always reopens to a prefix of what was appended.
//
// The last tests pin down recovery bugs found while writing these or by
// fuzzing (see their comments). Record boundaries are taken from
// segments().back().bytes after each Append and the record's own encoding
// (AppendWalRecord), so the tests do not hard-code encoding sizes.
#include "storage/wal.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/bytes.h"
#include "env/seeded_random.h"
#include "env/sim/sim_disk.h"
#include "raft/codec.h"
#include "raft/types.h"
#include "storage/testing/log_fixtures.h"

namespace bw::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kDir[] = "w";
constexpr uint64_t kCluster = 0xC1;
constexpr uint64_t kSegmentBytes = 4096;

WalOptions Opts() {
  WalOptions o;
  o.cluster_id = kCluster;
  o.node_id = NodeId(1);
  o.segment_bytes = kSegmentBytes;
  return o;
}

std::string SegName(uint64_t seq) {
  return absl::StrFormat("wal-%016x.seg", seq);
}
std::string SegPath(uint64_t seq) {
  return absl::StrCat(kDir, "/", SegName(seq));
}

// The framed record the log writes for `e`.
std::string EntryRecord(const raft::Entry& e) {
  std::string payload;
  raft::AppendEntry(&payload, e);
  std::string rec;
  AppendWalRecord(&rec, kWalEntry, payload);
  return rec;
}

// A segment header record, encoded as wal.cc's EncodeHeader does. `follows`
// says what the segment follows: 1 the segment before (rotation; then
// `prev_term` is the term of entry `prev`), 2 a snapshot (Rebase), -1 leaves
// out both fields, as segments written before they existed do.
std::string HeaderRecord(uint32_t magic, uint32_t version, uint64_t cluster, uint64_t node,
                         uint64_t seq, uint64_t prev, int follows = 1, uint64_t prev_term = 0) {
  std::string payload;
  core::ByteWriter w(&payload);
  w.Fixed32(magic);
  w.Fixed32(version);
  w.Varint(cluster);
  w.Varint(node);
  w.Varint(seq);
  w.Varint(prev);
  if (follows >= 0) {
    w.U8(static_cast<uint8_t>(follows));
    w.Varint(prev_term);
  }
  std::string rec;
  AppendWalRecord(&rec, kWalSegmentHeader, payload);
  return rec;
}

// "seq:prev..last" per segment, for failure messages.
std::string Describe(const std::vector<WalSegmentInfo>& segments) {
  std::string out;
  for (const WalSegmentInfo& s : segments)
    absl::StrAppend(&out, out.empty() ? "" : " ", s.seq, ":", s.prev_index.value(), "..",
                    s.last_index.value());
  return out;
}

// Where one entry's record was written.
struct Placed {
  uint64_t seq = 0;
  uint64_t start = 0;
  uint64_t end = 0;
};

class WalTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<Wal>> OpenWal(LogIndex after = LogIndex(0), bool repair = true,
                                               const WalOptions& options = Opts()) {
    return Wal::Open(disk_, kDir, options, after, repair);
  }
  std::unique_ptr<Wal> MustOpen(LogIndex after = LogIndex(0), bool repair = true) {
    absl::StatusOr<std::unique_ptr<Wal>> wal = OpenWal(after, repair);
    EXPECT_TRUE(wal.ok()) << wal.status();
    return wal.ok() ? std::move(wal).value() : nullptr;
  }
  absl::Status OpenStatus(LogIndex after = LogIndex(0), bool repair = true,
                          const WalOptions& options = Opts()) {
    return OpenWal(after, repair, options).status();
  }
  // Writes `bad` over `path`; Open must refuse it with DATA_LOSS naming the
  // file and the record at `offset`, and change nothing. Returns the error.
  absl::Status ExpectDamage(const std::string& path, const std::string& bad, uint64_t offset,
                            bool repair = true) {
    Write(path, bad);
    absl::Status st = OpenStatus(LogIndex(0), repair);
    EXPECT_TRUE(absl::IsDataLoss(st)) << st << " repair=" << repair;
    EXPECT_THAT(st.message(), HasSubstr(path));
    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("at offset ", offset, " ")));
    EXPECT_EQ(Read(path), bad);
    return st;
  }
  // Opens, takes what was recovered and closes again.
  WalRecovered Recover(LogIndex after = LogIndex(0)) {
    std::unique_ptr<Wal> wal = MustOpen(after);
    return wal ? wal->TakeRecovered() : WalRecovered{};
  }
  std::string Read(const std::string& path) {
    absl::StatusOr<std::string> data = disk_.ReadFile(path);
    EXPECT_TRUE(data.ok()) << data.status();
    return data.ok() ? *data : "<error>";
  }
  void Write(const std::string& path, std::string_view data) {
    ASSERT_TRUE(disk_.WriteFileAtomic(path, data).ok());
  }
  std::vector<std::string> ListDir() {
    absl::StatusOr<std::vector<std::string>> names = disk_.List(kDir);
    EXPECT_TRUE(names.ok()) << names.status();
    return names.ok() ? *names : std::vector<std::string>{};
  }
  // The bytes of every segment named 1..n.
  std::vector<std::string> ReadSegments(uint64_t n) {
    std::vector<std::string> out;
    for (uint64_t seq = 1; seq <= n; ++seq)
      out.push_back(disk_.Exists(SegPath(seq)) ? Read(SegPath(seq)) : "<missing>");
    return out;
  }

  // Appends each entry in its own Append and records where its record went.
  std::vector<Placed> AppendEach(Wal& wal, const std::vector<raft::Entry>& entries) {
    std::vector<Placed> placed;
    for (const raft::Entry& e : entries) {
      absl::Status st = wal.Append(std::nullopt, {e});
      EXPECT_TRUE(st.ok()) << st;
      const WalSegmentInfo& seg = wal.segments().back();
      const uint64_t size = EntryRecord(e).size();
      placed.push_back(Placed{seg.seq, seg.bytes - size, seg.bytes});
    }
    return placed;
  }

  // A fresh log holding `hs`, then entries 1..n of term 1 one Append each,
  // all synced. Returns where each entry's record lies; `segments` gets the
  // number of segment files.
  std::vector<Placed> WriteLog(uint64_t n, const raft::HardState& hs, size_t* segments) {
    std::unique_ptr<Wal> wal = MustOpen();
    if (wal == nullptr) return {};
    EXPECT_TRUE(wal->Append(hs, {}).ok());
    std::vector<Placed> placed = AppendEach(*wal, Bigs(1, n, 1));
    EXPECT_TRUE(wal->Sync().ok());
    *segments = wal->segments().size();
    // The recorded places hold exactly the entries' records.
    for (uint64_t i = 0; i < placed.size(); ++i) {
      const std::string seg = Read(SegPath(placed[i].seq));
      EXPECT_EQ(seg.substr(placed[i].start, placed[i].end - placed[i].start),
                EntryRecord(Big(i + 1, 1)))
          << "entry " << i + 1;
    }
    return placed;
  }

  env::SeededRandom random_{7};
  env::SimDisk disk_{random_};
};

// 1. Many segments, contiguous names, everything back in order.
TEST_F(WalTest, RotationSpreadsTheLogOverContiguousSegments) {
  const std::vector<raft::Entry> all = Bigs(1, 300, 1);
  size_t written_segments = 0;
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    EXPECT_TRUE(wal->TakeRecovered().fresh);
    ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
    for (const raft::Entry& e : all)
      ASSERT_TRUE(wal->Append(std::nullopt, {e}).ok()) << e.index;
    ASSERT_TRUE(wal->Append(HS(3, 2, 250), {}).ok());
    ASSERT_TRUE(wal->Sync().ok());
    EXPECT_EQ(wal->last_index(), LogIndex(300));
    written_segments = wal->segments().size();
  }
  ASSERT_GT(written_segments, 2u);

  std::unique_ptr<Wal> wal = MustOpen();
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(wal->last_index(), LogIndex(300));
  WalRecovered r = wal->TakeRecovered();
  EXPECT_FALSE(r.fresh);
  EXPECT_THAT(r.torn_tail, IsEmpty());
  EXPECT_EQ(r.hard_state, HS(3, 2, 250));
  EXPECT_EQ(Show(r.entries), Show(all));
  ASSERT_EQ(r.segments.size(), written_segments);

  std::vector<std::string> names;
  for (uint64_t seq = 1; seq <= written_segments; ++seq)
    names.push_back(SegName(seq));
  EXPECT_EQ(ListDir(), names);

  uint64_t records = 0;
  for (size_t i = 0; i < r.segments.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("segment ", i + 1));
    const WalSegmentInfo& seg = r.segments[i];
    EXPECT_EQ(seg.seq, i + 1);
    EXPECT_EQ(seg.path, SegPath(i + 1));
    EXPECT_EQ(seg.prev_index, i == 0 ? LogIndex(0) : r.segments[i - 1].last_index);
    EXPECT_GT(seg.last_index, seg.prev_index);
    EXPECT_EQ(seg.bytes, Read(seg.path).size());
    EXPECT_LE(seg.bytes, kSegmentBytes);
    // Header and hard state open every segment.
    EXPECT_GE(seg.records, 3u);
    records += seg.records - 2;
  }
  EXPECT_EQ(r.segments.back().last_index, LogIndex(300));
  // 300 entries plus the two hard states appended.
  EXPECT_EQ(records, 302u);

  // Appends after the reopen continue the log.
  ASSERT_TRUE(wal->Append(HS(3, 2, 301), {Big(301, 3)}).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  r = Recover();
  ASSERT_EQ(r.entries.size(), 301u);
  EXPECT_EQ(Show({r.entries.back()}), Show({Big(301, 3)}));
  EXPECT_EQ(r.hard_state, HS(3, 2, 301));
}

// 2. The last record of the last segment cut at every byte.
TEST_F(WalTest, TornTailOfTheLastSegmentIsCutAtEveryOffset) {
  size_t segments = 0;
  const std::vector<Placed> placed = WriteLog(60, HS(1, 1, 0), &segments);
  ASSERT_EQ(placed.size(), 60u);
  ASSERT_GE(segments, 2u);
  const Placed last = placed.back();
  ASSERT_EQ(last.seq, segments);
  const std::string path = SegPath(last.seq);
  const std::string full = Read(path);
  ASSERT_EQ(full.size(), last.end);
  const std::vector<std::string> others = ReadSegments(segments - 1);
  const std::vector<std::string> kept = Show(Bigs(1, 59, 1));

  for (uint64_t cut = last.start + 1; cut < full.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut, " of ", full.size()));
    Write(path, full.substr(0, cut));
    {
      std::unique_ptr<Wal> wal = MustOpen();
      ASSERT_NE(wal, nullptr);
      EXPECT_EQ(wal->last_index(), LogIndex(59));
      WalRecovered r = wal->TakeRecovered();
      EXPECT_EQ(Show(r.entries), kept);
      EXPECT_EQ(r.hard_state, HS(1, 1, 0));
      EXPECT_THAT(r.torn_tail, HasSubstr(path));
      EXPECT_THAT(r.torn_tail, HasSubstr(absl::StrCat("cut ", cut - last.start, " bytes")));
      EXPECT_THAT(r.torn_tail, HasSubstr(absl::StrCat("at offset ", last.start)));
    }
    EXPECT_EQ(Read(path), full.substr(0, last.start));
    WalRecovered again = Recover();
    EXPECT_THAT(again.torn_tail, IsEmpty());
    EXPECT_EQ(Show(again.entries), kept);
    EXPECT_EQ(Read(path), full.substr(0, last.start));
    EXPECT_EQ(ReadSegments(segments - 1), others);
  }

  // The whole record is not torn.
  Write(path, full);
  WalRecovered r = Recover();
  EXPECT_THAT(r.torn_tail, IsEmpty());
  EXPECT_EQ(r.entries.size(), 60u);
  EXPECT_EQ(Read(path), full);

  // Nor is a zero-filled tail after it (a preallocated extent): that is cut.
  Write(path, full + std::string(100, '\0'));
  r = Recover();
  EXPECT_EQ(r.entries.size(), 60u);
  EXPECT_THAT(r.torn_tail, HasSubstr(path));
  EXPECT_THAT(r.torn_tail, HasSubstr(absl::StrCat("at offset ", full.size())));
  EXPECT_EQ(Read(path), full);
}

// 3. Every bit of a record in the middle of a segment that is not the last.
TEST_F(WalTest, BitFlipInANonLastSegmentIsDataLoss) {
  size_t segments = 0;
  const std::vector<Placed> placed = WriteLog(60, HS(1, 1, 0), &segments);
  ASSERT_GE(segments, 2u);
  std::vector<Placed> first;
  for (const Placed& p : placed)
    if (p.seq == 1) first.push_back(p);
  ASSERT_GE(first.size(), 3u);
  const Placed mid = first[first.size() / 2];
  const std::string path = SegPath(1);
  const std::string good = Read(path);
  const std::vector<std::string> before = ReadSegments(segments);
  const std::vector<std::string> names = ListDir();

  // A payload bit, with the reason spelled out.
  {
    const std::string bad =
        FlipBit(good, 8 * ((mid.start + kWalRecordHeaderBytes + mid.end) / 2) + 3);
    absl::Status st = ExpectDamage(path, bad, mid.start);
    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(path, ": checksum mismatch")));
  }
  // Any bit of the record, length and checksums included.
  for (uint64_t bit = 8 * mid.start; bit < 8 * mid.end; ++bit) {
    SCOPED_TRACE(absl::StrCat("bit ", bit, " (byte ", bit / 8, ")"));
    (void)ExpectDamage(path, FlipBit(good, bit), mid.start);
  }
  Write(path, good);
  EXPECT_EQ(ReadSegments(segments), before);
  EXPECT_EQ(ListDir(), names);
  EXPECT_EQ(Recover().entries.size(), 60u);
}

// 4. Only the last segment may end in a torn record.
TEST_F(WalTest, ShortRecordAtTheEndOfANonLastSegmentIsDataLoss) {
  size_t segments = 0;
  const std::vector<Placed> placed = WriteLog(60, HS(1, 1, 0), &segments);
  ASSERT_GE(segments, 2u);
  Placed end_of_first;
  for (const Placed& p : placed)
    if (p.seq == 1) end_of_first = p;
  const std::string path = SegPath(1);
  const std::string full = Read(path);
  ASSERT_EQ(full.size(), end_of_first.end);
  const std::vector<std::string> later = ReadSegments(segments);

  for (uint64_t cut = end_of_first.start + 1; cut < full.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut, " of ", full.size()));
    Write(path, full.substr(0, cut));
    absl::Status st = OpenStatus();
    ASSERT_TRUE(absl::IsDataLoss(st)) << st;
    EXPECT_THAT(st.message(), HasSubstr(path));
    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("at offset ", end_of_first.start, " ")));
    EXPECT_EQ(Read(path), full.substr(0, cut));
  }
  // Zeros after the last record of a synced segment are damage too.
  const std::string zeros = full + std::string(64, '\0');
  Write(path, zeros);
  absl::Status st = OpenStatus();
  ASSERT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(path));
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("at offset ", full.size(), " ")));
  EXPECT_EQ(Read(path), zeros);

  Write(path, full);
  EXPECT_EQ(ReadSegments(segments), later);
}

// 5. A whole record that fails its checksum is damage even at the very end.
TEST_F(WalTest, WholeLastRecordWithAFlippedBitIsDataLoss) {
  size_t segments = 0;
  const std::vector<Placed> placed = WriteLog(60, HS(1, 1, 0), &segments);
  ASSERT_GE(segments, 2u);
  const Placed last = placed.back();
  const std::string path = SegPath(last.seq);
  const std::string full = Read(path);
  ASSERT_EQ(full.size(), last.end);

  // The last payload bit of the file.
  {
    const std::string bad = FlipBit(full, 8 * full.size() - 1);
    for (bool repair : {true, false}) {
      absl::Status st = ExpectDamage(path, bad, last.start, repair);
      EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(path, ": checksum mismatch")));
    }
  }
  // Any single bit of the last record: a crash cuts writes short, it does
  // not change bytes, so none of these is a torn write.
  for (uint64_t bit = 8 * last.start; bit < 8 * last.end; ++bit) {
    SCOPED_TRACE(absl::StrCat("bit ", bit, " (byte ", bit / 8, ")"));
    (void)ExpectDamage(path, FlipBit(full, bit), last.start);
  }
}

// 6. A gap in the segment numbers.
TEST_F(WalTest, MissingMiddleSegmentIsDataLoss) {
  size_t segments = 0;
  WriteLog(120, HS(1, 1, 0), &segments);
  ASSERT_GE(segments, 3u);
  ASSERT_TRUE(disk_.Remove(SegPath(2)).ok());
  std::vector<std::string> before = ReadSegments(segments);
  std::vector<std::string> names = ListDir();

  absl::Status st = OpenStatus();
  ASSERT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(SegPath(2), ": missing")));
  // Read-only, the same.
  st = OpenStatus(LogIndex(0), /*repair=*/false);
  ASSERT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(SegPath(2), ": missing")));
  EXPECT_EQ(ReadSegments(segments), before);
  EXPECT_EQ(ListDir(), names);
}

// 7. Segments below the snapshot may be gone; others may not.
TEST_F(WalTest, MissingFirstSegmentIsDataLossUnlessTheSnapshotCoversIt) {
  size_t segments = 0;
  WriteLog(120, HS(2, 3, 5), &segments);
  ASSERT_GE(segments, 3u);
  LogIndex first_last;
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    first_last = wal->segments()[0].last_index;
    ASSERT_EQ(wal->segments()[1].prev_index, first_last);
  }
  ASSERT_GT(first_last, LogIndex(5));
  ASSERT_TRUE(disk_.Remove(SegPath(1)).ok());
  const std::vector<std::string> before = ReadSegments(segments);

  for (LogIndex after : {LogIndex(0), first_last - 1}) {
    SCOPED_TRACE(absl::StrCat("after ", after.value()));
    absl::Status st = OpenStatus(after);
    ASSERT_TRUE(absl::IsDataLoss(st)) << st;
    EXPECT_THAT(st.message(), HasSubstr(SegPath(2)));
    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("starts after entry ", first_last.value())));
    EXPECT_THAT(st.message(), HasSubstr("earlier segments are missing"));
    EXPECT_EQ(ReadSegments(segments), before);
  }

  std::unique_ptr<Wal> wal = MustOpen(first_last);
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(wal->last_index(), LogIndex(120));
  WalRecovered r = wal->TakeRecovered();
  EXPECT_EQ(Show(r.entries), Show(Bigs(first_last.value() + 1, 120, 1)));
  // The vote survives in the second segment's own hard state; the commit
  // index is raised to the snapshot.
  EXPECT_EQ(r.hard_state, (raft::HardState{Term(2), NodeId(3), first_last}));
  ASSERT_FALSE(r.segments.empty());
  EXPECT_EQ(r.segments[0].seq, 2u);
}

// 8. Headers with a wrong magic or format version.
TEST_F(WalTest, BadMagicOrVersionIsDataLoss) {
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 1), {E(1, 1), E(2, 1)}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  const std::string path = SegPath(1);
  const std::string good = Read(path);
  const std::string header = HeaderRecord(kWalMagic, kWalVersion, kCluster, 1, 1, 0);
  // The hand-built header is the one the log wrote.
  ASSERT_EQ(good.substr(0, header.size()), header);
  const std::string rest = good.substr(header.size());

  const std::string bad_magic = HeaderRecord(0x4C575743, kWalVersion, kCluster, 1, 1, 0) + rest;
  Write(path, bad_magic);
  absl::Status st = OpenStatus();
  ASSERT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(path, ": bad magic 0x4c575743")));
  EXPECT_THAT(st.message(), HasSubstr("at offset 0 "));
  EXPECT_EQ(Read(path), bad_magic);

  const std::string bad_version = HeaderRecord(kWalMagic, 2, kCluster, 1, 1, 0) + rest;
  Write(path, bad_version);
  st = OpenStatus();
  ASSERT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(path, ": format version 2")));
  EXPECT_THAT(st.message(), HasSubstr("at offset 0 "));
  EXPECT_EQ(Read(path), bad_version);

  // A header from before the byte that says what the segment follows reads.
  Write(path, HeaderRecord(kWalMagic, kWalVersion, kCluster, 1, 1, 0, /*follows=*/-1) + rest);
  EXPECT_THAT(Show(Recover().entries), ElementsAre("1@1:e1t1", "2@1:e2t1"));

  Write(path, good);
  EXPECT_THAT(Show(Recover().entries), ElementsAre("1@1:e1t1", "2@1:e2t1"));
}

// 9. Another member's directory.
TEST_F(WalTest, AnotherNodeOrClusterIsFailedPrecondition) {
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 1), {E(1, 1)}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  const std::string path = SegPath(1);
  const std::string before = Read(path);
  const std::vector<std::string> names = ListDir();

  WalOptions other_node = Opts();
  other_node.node_id = NodeId(2);
  absl::Status st = OpenStatus(LogIndex(0), true, other_node);
  ASSERT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(path));
  EXPECT_THAT(st.message(), HasSubstr("written by node 1 of cluster 00000000000000c1"));
  EXPECT_THAT(st.message(), HasSubstr("this is node 2 of cluster 00000000000000c1"));

  WalOptions other_cluster = Opts();
  other_cluster.cluster_id = 0xC2;
  st = OpenStatus(LogIndex(0), true, other_cluster);
  ASSERT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(path));
  EXPECT_THAT(st.message(), HasSubstr("written by node 1 of cluster 00000000000000c1"));
  EXPECT_THAT(st.message(), HasSubstr("this is node 1 of cluster 00000000000000c2"));

  EXPECT_EQ(Read(path), before);
  EXPECT_EQ(ListDir(), names);
  EXPECT_THAT(Show(Recover().entries), ElementsAre("1@1:e1t1"));
}

// 10. A snapshot at 150: Rebase then Release leaves only the new segment.
TEST_F(WalTest, RebaseThenReleaseRemovesEveryOlderSegment) {
  const std::vector<raft::Entry> tail = Bigs(151, 200, 2);
  size_t old_segments = 0;
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
    AppendEach(*wal, Bigs(1, 200, 1));
    ASSERT_TRUE(wal->Sync().ok());
    old_segments = wal->segments().size();
    ASSERT_GT(old_segments, 2u);
    // Nothing is covered yet.
    absl::StatusOr<size_t> none = wal->Release(LogIndex(0));
    ASSERT_TRUE(none.ok()) << none.status();
    EXPECT_EQ(*none, 0u);

    ASSERT_TRUE(wal->Rebase(LogIndex(150), HS(2, 1, 150), tail).ok());
    ASSERT_EQ(wal->segments().size(), old_segments + 1);
    EXPECT_EQ(wal->segments().back().prev_index, LogIndex(150));
    EXPECT_EQ(wal->last_index(), LogIndex(200));

    const std::string before = Describe(wal->segments());
    absl::StatusOr<size_t> released = wal->Release(LogIndex(150));
    ASSERT_TRUE(released.ok()) << released.status();
    EXPECT_GT(*released, 0u);
    EXPECT_EQ(*released, old_segments) << "segments before: " << before;
    EXPECT_EQ(wal->segments().size(), 1u) << "segments left: " << Describe(wal->segments());
  }
  for (uint64_t seq = 1; seq <= old_segments; ++seq)
    EXPECT_FALSE(disk_.Exists(SegPath(seq))) << SegPath(seq);
  EXPECT_THAT(ListDir(), ElementsAre(SegName(old_segments + 1)));

  std::unique_ptr<Wal> wal = MustOpen(LogIndex(150));
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(wal->last_index(), LogIndex(200));
  WalRecovered r = wal->TakeRecovered();
  EXPECT_EQ(Show(r.entries), Show(tail));
  EXPECT_EQ(r.hard_state, HS(2, 1, 150));
  EXPECT_THAT(r.torn_tail, IsEmpty());
}

// 10, continued: a power loss between Rebase and Release.
TEST_F(WalTest, CrashBetweenRebaseAndReleaseReopens) {
  const std::vector<raft::Entry> tail = Bigs(151, 200, 2);
  size_t old_segments = 0;
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
    AppendEach(*wal, Bigs(1, 200, 1));
    ASSERT_TRUE(wal->Sync().ok());
    old_segments = wal->segments().size();
    ASSERT_GT(old_segments, 2u);
    ASSERT_TRUE(wal->Rebase(LogIndex(150), HS(2, 1, 150), tail).ok());
    disk_.Crash();
  }
  // Rebase synced its segment; nothing was released.
  for (uint64_t seq = 1; seq <= old_segments + 1; ++seq)
    EXPECT_TRUE(disk_.Exists(SegPath(seq))) << SegPath(seq);
  {
    WalRecovered r = Recover(LogIndex(150));
    EXPECT_EQ(Show(r.entries), Show(tail));
    EXPECT_EQ(r.hard_state, HS(2, 1, 150));
    EXPECT_THAT(r.torn_tail, IsEmpty());
  }
  // The rebased segment replaces the old suffix even read from the start.
  {
    WalRecovered r = Recover(LogIndex(0));
    std::vector<raft::Entry> want = Bigs(1, 150, 1);
    want.insert(want.end(), tail.begin(), tail.end());
    EXPECT_EQ(Show(r.entries), Show(want));
  }
  // The release that the crash prevented can be done now.
  {
    std::unique_ptr<Wal> wal = MustOpen(LogIndex(150));
    ASSERT_NE(wal, nullptr);
    const std::string before = Describe(wal->segments());
    absl::StatusOr<size_t> released = wal->Release(LogIndex(150));
    ASSERT_TRUE(released.ok()) << released.status();
    EXPECT_EQ(*released, old_segments) << "segments before: " << before;
  }
  EXPECT_THAT(ListDir(), ElementsAre(SegName(old_segments + 1)));
  EXPECT_EQ(Show(Recover(LogIndex(150)).entries), Show(tail));
}

// 11. An overwrite that truncates entries of an earlier segment.
TEST_F(WalTest, LowerIndexOverwritesTheSuffixAcrossASegmentBoundary) {
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
    AppendEach(*wal, Bigs(1, 50, 1));
    ASSERT_TRUE(wal->Sync().ok());
    ASSERT_EQ(wal->segments().size(), 2u);
    // Entry 30 and a few after it are in the first segment, the rest in the
    // second.
    ASSERT_GT(wal->segments()[0].last_index, LogIndex(30));
    ASSERT_LT(wal->segments()[0].last_index, LogIndex(50));
    ASSERT_TRUE(wal->Append(HS(2, 1, 0), {Big(30, 2)}).ok());
    ASSERT_TRUE(wal->Sync().ok());
    EXPECT_EQ(wal->last_index(), LogIndex(30));
  }
  std::vector<raft::Entry> want = Bigs(1, 29, 1);
  want.push_back(Big(30, 2));
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    EXPECT_EQ(wal->last_index(), LogIndex(30));
    WalRecovered r = wal->TakeRecovered();
    EXPECT_EQ(Show(r.entries), Show(want));
    EXPECT_EQ(r.hard_state, HS(2, 1, 0));
    // The log goes on from the overwrite.
    ASSERT_TRUE(wal->Append(std::nullopt, {Big(31, 2)}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  want.push_back(Big(31, 2));
  EXPECT_EQ(Show(Recover().entries), Show(want));
}

// Found by fuzzing (fuzz/wal_fuzz.cc): a segment that is not the last,
// cut exactly at a record boundary, after the log had been overwritten
// inside it. Entry 30 of term 1 was overwritten by entry 30 of term 2 in the
// first segment, and the second segment (rotated, following entry 30) goes
// on with 31 of term 2. With the overwrite cut off the first segment, the
// second segment's predecessor (30) is below where the first now ends (33),
// which a Rebase segment may legitimately be; recovery accepted it and
// returned entry 30 of term 1 followed by 31 of term 2: a log that never
// existed, silently missing a synced entry. A rotated segment must start
// exactly where the one before ends.
TEST_F(WalTest, RotatedSegmentAfterALostOverwriteInTheOneBeforeIsDataLoss) {
  uint64_t overwrite_start = 0;
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
    AppendEach(*wal, Bigs(1, 33, 1));
    ASSERT_EQ(wal->segments().size(), 1u);
    overwrite_start = wal->segments().back().bytes;
    ASSERT_TRUE(wal->Append(std::nullopt, {Big(30, 2)}).ok());
    ASSERT_EQ(wal->segments().size(), 1u);
    // Enough for the rotation: the second segment follows entry 30.
    AppendEach(*wal, Bigs(31, 60, 2));
    ASSERT_TRUE(wal->Sync().ok());
    ASSERT_GE(wal->segments().size(), 2u);
    ASSERT_EQ(wal->segments()[1].prev_index, LogIndex(30));
  }
  const std::string full = Read(SegPath(1));
  ASSERT_EQ(full.size(), overwrite_start + EntryRecord(Big(30, 2)).size());
  Write(SegPath(1), full.substr(0, overwrite_start));
  absl::Status st = OpenStatus();
  ASSERT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(SegPath(2)));
  EXPECT_THAT(st.message(), HasSubstr("segment follows entry 30 but the one before ends at 33"));
}

// The same damage where the lost overwrite ended at the same index as what
// it replaced: entries 27..30 of term 1 overwritten by 27..30 of term 2, and
// the second segment following entry 30 of term 2. The index alone cannot
// tell; the header's term of the entry it follows does.
TEST_F(WalTest, RotatedSegmentAfterALostSameLengthOverwriteIsDataLoss) {
  uint64_t overwrite_start = 0;
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
    AppendEach(*wal, Bigs(1, 30, 1));
    overwrite_start = wal->segments().back().bytes;
    ASSERT_TRUE(wal->Append(std::nullopt, Bigs(27, 30, 2)).ok());
    ASSERT_EQ(wal->segments().size(), 1u);
    AppendEach(*wal, Bigs(31, 60, 2));
    ASSERT_TRUE(wal->Sync().ok());
    ASSERT_GE(wal->segments().size(), 2u);
    ASSERT_EQ(wal->segments()[1].prev_index, LogIndex(30));
  }
  Write(SegPath(1), Read(SegPath(1)).substr(0, overwrite_start));
  absl::Status st = OpenStatus();
  ASSERT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(SegPath(2)));
  EXPECT_THAT(
      st.message(),
      HasSubstr("segment follows entry 30 of term 2 but the one before holds it with term 1"));
}

// 12. A failed sync poisons the log.
TEST_F(WalTest, FailedSyncIsSticky) {
  std::unique_ptr<Wal> wal = MustOpen();
  ASSERT_NE(wal, nullptr);
  ASSERT_TRUE(wal->Append(HS(1, 1, 1), {E(1, 1)}).ok());
  ASSERT_TRUE(wal->Sync().ok());
  ASSERT_TRUE(wal->Append(std::nullopt, {E(2, 1)}).ok());

  env::SimDiskFaults faults;
  faults.sync_eio = 1;
  disk_.set_faults(faults);
  const absl::Status failed = wal->Sync();
  ASSERT_TRUE(absl::IsDataLoss(failed)) << failed;
  EXPECT_THAT(failed.message(), HasSubstr(absl::StrCat("fdatasync ", SegPath(1))));
  const uint64_t size = Read(SegPath(1)).size();

  disk_.set_faults(env::SimDiskFaults{});
  EXPECT_EQ(wal->Append(std::nullopt, {E(3, 1)}), failed);
  EXPECT_EQ(wal->Append(HS(2, 1, 1), {}), failed);
  EXPECT_EQ(wal->Sync(), failed);
  EXPECT_EQ(wal->Rebase(LogIndex(1), HS(2, 1, 1), {}), failed);
  EXPECT_EQ(wal->Release(LogIndex(1)).status(), failed);
  // Nothing more was written or synced.
  EXPECT_EQ(Read(SegPath(1)).size(), size);
  EXPECT_EQ(disk_.counts().sync_failures, 1u);
  EXPECT_THAT(ListDir(), ElementsAre(SegName(1)));
}

// 13. No room for the next segment.
TEST_F(WalTest, DiskFullAtRotationRefusesTheAppendAndIsNotSticky) {
  // How many appends fit in the first segment, learnt on a scratch disk.
  uint64_t rotating = 0;  // the entry whose Append starts segment 2
  {
    env::SeededRandom random(1);
    env::SimDisk scratch(random);
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(scratch, kDir, Opts(), LogIndex(0));
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_TRUE((*wal)->Append(HS(1, 1, 0), {}).ok());
    while ((*wal)->segments().size() == 1) {
      ++rotating;
      ASSERT_TRUE((*wal)->Append(std::nullopt, {Big(rotating, 1)}).ok());
    }
  }
  ASSERT_GT(rotating, 2u);

  std::unique_ptr<Wal> wal = MustOpen();
  ASSERT_NE(wal, nullptr);
  ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
  AppendEach(*wal, Bigs(1, rotating - 1, 1));
  ASSERT_TRUE(wal->Sync().ok());
  ASSERT_EQ(wal->segments().size(), 1u);
  const std::string first = Read(SegPath(1));

  // Room for the record, not for a new segment.
  env::SimDiskFaults full;
  full.capacity_bytes = disk_.used_bytes() + 2 * EntryRecord(Big(rotating, 1)).size();
  ASSERT_LT(full.capacity_bytes, disk_.used_bytes() + kSegmentBytes);
  disk_.set_faults(full);
  absl::Status st = wal->Append(std::nullopt, {Big(rotating, 1)});
  ASSERT_TRUE(absl::IsResourceExhausted(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(SegPath(2)));
  EXPECT_FALSE(disk_.Exists(SegPath(2)));
  EXPECT_THAT(ListDir(), ElementsAre(SegName(1)));
  EXPECT_EQ(wal->segments().size(), 1u);
  EXPECT_EQ(wal->last_index(), LogIndex(rotating - 1));
  EXPECT_EQ(Read(SegPath(1)), first);
  // The log as it stands still reads back (read-only: nothing to allocate).
  {
    absl::StatusOr<std::unique_ptr<Wal>> ro = OpenWal(LogIndex(0), /*repair=*/false);
    ASSERT_TRUE(ro.ok()) << ro.status();
    WalRecovered r = (*ro)->TakeRecovered();
    EXPECT_EQ(Show(r.entries), Show(Bigs(1, rotating - 1, 1)));
    EXPECT_THAT(r.torn_tail, IsEmpty());
  }
  // Not sticky: a sync still works, and with room again the same append does.
  EXPECT_TRUE(wal->Sync().ok());
  disk_.set_faults(env::SimDiskFaults{});
  ASSERT_TRUE(wal->Append(std::nullopt, {Big(rotating, 1)}).ok());
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(wal->segments().size(), 2u);
  EXPECT_TRUE(disk_.Exists(SegPath(2)));
  wal.reset();
  EXPECT_EQ(Show(Recover().entries), Show(Bigs(1, rotating, 1)));
}

// 14. What was not synced is gone after a power loss.
TEST_F(WalTest, UnsyncedAppendsVanishAtACrash) {
  size_t segments = 0;
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
    AppendEach(*wal, Bigs(1, 40, 1));
    ASSERT_TRUE(wal->Append(HS(1, 1, 40), {}).ok());
    ASSERT_TRUE(wal->Sync().ok());
    segments = wal->segments().size();
    ASSERT_GE(segments, 2u);
    AppendEach(*wal, Bigs(41, 45, 2));
    ASSERT_TRUE(wal->Append(HS(2, 1, 45), {}).ok());
    // No rotation (which would have synced) happened.
    ASSERT_EQ(wal->segments().size(), segments);
    disk_.Crash();  // torn_tail is 0: every unsynced byte is dropped
  }
  std::unique_ptr<Wal> wal = MustOpen();
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(wal->last_index(), LogIndex(40));
  WalRecovered r = wal->TakeRecovered();
  EXPECT_EQ(Show(r.entries), Show(Bigs(1, 40, 1)));
  EXPECT_EQ(r.hard_state, HS(1, 1, 40));
  EXPECT_THAT(r.torn_tail, IsEmpty());
  EXPECT_EQ(r.segments.size(), segments);
}

// 14, continued: with every crash keeping a random byte prefix of the
// unsynced tail, the log always reopens, to the synced entries plus a prefix
// of the rest, and its hard state never points past its log.
TEST(WalCrashTest, TornCrashesReopenToAPrefix) {
  const std::vector<raft::Entry> all = Bigs(1, 60, 1);
  uint64_t torn = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    env::SeededRandom random(seed);
    env::SimDiskFaults faults;
    faults.torn_tail = 1;
    env::SimDisk disk(random, faults);
    // Vary where the crash falls, rotations included.
    const uint64_t written = 6 + seed % 55;
    {
      absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(disk, kDir, Opts(), LogIndex(0));
      ASSERT_TRUE(wal.ok()) << wal.status();
      ASSERT_TRUE((*wal)->Append(HS(1, 1, 5), {all.begin(), all.begin() + 5}).ok());
      ASSERT_TRUE((*wal)->Sync().ok());
      for (uint64_t i = 6; i <= written; ++i)
        ASSERT_TRUE((*wal)->Append(HS(1, 1, i - 1), {all[i - 1]}).ok());
      disk.Crash(seed);
    }
    WalRecovered r;
    {
      absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(disk, kDir, Opts(), LogIndex(0));
      ASSERT_TRUE(wal.ok()) << wal.status();
      r = (*wal)->TakeRecovered();
      EXPECT_EQ((*wal)->last_index(), LogIndex(r.entries.size()));
    }
    if (!r.torn_tail.empty()) ++torn;
    ASSERT_GE(r.entries.size(), 5u);
    ASSERT_LE(r.entries.size(), written);
    EXPECT_EQ(Show(r.entries), Show({all.begin(), all.begin() + r.entries.size()}));
    EXPECT_GE(r.hard_state.commit, LogIndex(5));
    EXPECT_LE(r.hard_state.commit, LogIndex(r.entries.size()));
    // A second open finds the same and nothing torn.
    absl::StatusOr<std::unique_ptr<Wal>> again = Wal::Open(disk, kDir, Opts(), LogIndex(0));
    ASSERT_TRUE(again.ok()) << again.status();
    WalRecovered r2 = (*again)->TakeRecovered();
    EXPECT_EQ(Show(r2.entries), Show(r.entries));
    EXPECT_EQ(r2.hard_state, r.hard_state);
    EXPECT_THAT(r2.torn_tail, IsEmpty());
  }
  // The seeds did cut records, not only record boundaries.
  EXPECT_GT(torn, 100u);
}

// 15. check-data reads a torn log without repairing it.
TEST_F(WalTest, ReadOnlyOpenReportsATornTailWithoutCuttingIt) {
  // A directory that does not exist is not created.
  {
    absl::StatusOr<std::unique_ptr<Wal>> wal = OpenWal(LogIndex(0), /*repair=*/false);
    ASSERT_TRUE(wal.ok()) << wal.status();
    EXPECT_TRUE((*wal)->TakeRecovered().fresh);
    EXPECT_FALSE(disk_.Exists(kDir));
  }
  size_t segments = 0;
  const std::vector<Placed> placed = WriteLog(60, HS(1, 1, 0), &segments);
  ASSERT_GE(segments, 2u);
  const Placed last = placed.back();
  const std::string path = SegPath(last.seq);
  const std::string full = Read(path);
  const std::string torn = full.substr(0, (last.start + last.end) / 2);
  Write(path, torn);
  const std::vector<std::string> names = ListDir();
  const std::vector<std::string> before = ReadSegments(segments);

  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(absl::StrCat("pass ", pass));
    absl::StatusOr<std::unique_ptr<Wal>> wal = OpenWal(LogIndex(0), /*repair=*/false);
    ASSERT_TRUE(wal.ok()) << wal.status();
    WalRecovered r = (*wal)->TakeRecovered();
    EXPECT_THAT(r.torn_tail, HasSubstr(path));
    EXPECT_THAT(r.torn_tail, HasSubstr(absl::StrCat("at offset ", last.start)));
    EXPECT_EQ(Show(r.entries), Show(Bigs(1, 59, 1)));
    EXPECT_EQ(Read(path), torn);
    EXPECT_EQ(ReadSegments(segments), before);
    EXPECT_EQ(ListDir(), names);
  }

  // A next segment holding only the start of its header: read-only keeps the
  // file, a repairing open removes it.
  Write(path, full);
  const std::string next = SegPath(segments + 1);
  const std::string stub =
      HeaderRecord(kWalMagic, kWalVersion, kCluster, 1, segments + 1, 60).substr(0, 7);
  Write(next, stub);
  {
    absl::StatusOr<std::unique_ptr<Wal>> wal = OpenWal(LogIndex(0), /*repair=*/false);
    ASSERT_TRUE(wal.ok()) << wal.status();
    WalRecovered r = (*wal)->TakeRecovered();
    EXPECT_THAT(r.torn_tail, HasSubstr(absl::StrCat(next, ": cut 7 bytes at offset 0")));
    EXPECT_EQ(r.entries.size(), 60u);
    EXPECT_EQ(Read(next), stub);
    EXPECT_EQ(Read(path), full);
  }
  WalRecovered r = Recover();
  EXPECT_THAT(r.torn_tail, HasSubstr(next));
  EXPECT_EQ(r.entries.size(), 60u);
  EXPECT_FALSE(disk_.Exists(next));
  EXPECT_EQ(Read(path), full);
}

// Found while writing these tests. A crash just after a rotation leaves the new
// segment empty (its creation is durable, its header was not synced). Recovery
// drops it from the list but leaves the empty file, and appends that still fit
// go on into the segment before, which is no longer the last file. The first
// writes after a restart are typically small (a hard state with a new term and
// vote), so they do fit; a crash that tears one of them then makes Open fail
// with DATA_LOSS ("only the last segment may be torn"), although only an
// unacknowledged write was lost.
TEST_F(WalTest, EmptySegmentLeftByACrashAtRotationDoesNotBreakTheNextCrash) {
  uint64_t rotating = 0;
  uint64_t synced = 0;
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
    while (wal->segments().size() == 1) {
      ++rotating;
      ASSERT_TRUE(wal->Append(std::nullopt, {Big(rotating, 1)}).ok());
    }
    disk_.Crash();  // the rotation synced segment 1; segment 2 loses its bytes
  }
  ASSERT_EQ(Read(SegPath(2)), "");
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    WalRecovered r = wal->TakeRecovered();
    EXPECT_EQ(Show(r.entries), Show(Bigs(1, rotating - 1, 1)));
    EXPECT_THAT(r.torn_tail, IsEmpty());
    // A new term and vote, synced; then the next one, torn by a crash.
    ASSERT_TRUE(wal->Append(HS(2, 1, 0), {}).ok());
    ASSERT_TRUE(wal->Sync().ok());
    synced = Read(SegPath(1)).size();
    env::SimDiskFaults faults;
    faults.torn_tail = 1;
    disk_.set_faults(faults);
    ASSERT_TRUE(wal->Append(HS(3, 1, 0), {}).ok());
    // Both went into segment 1.
    ASSERT_EQ(wal->segments().size(), 1u);
    disk_.Crash(3);
    disk_.set_faults(env::SimDiskFaults{});
  }
  // Precondition: the crash kept part of the unsynced record in segment 1,
  // and recovery removed the empty segment 2 (else segment 1 would not be the
  // last, and its torn tail would read as damage).
  std::string hs_record;
  AppendWalRecord(&hs_record, kWalHardState, raft::EncodeHardState(HS(3, 1, 0)));
  const uint64_t size = Read(SegPath(1)).size();
  ASSERT_GT(size, synced);
  ASSERT_LT(size, synced + hs_record.size());
  ASSERT_FALSE(disk_.Exists(SegPath(2)));

  absl::StatusOr<std::unique_ptr<Wal>> wal = OpenWal();
  ASSERT_TRUE(wal.ok()) << wal.status();
  WalRecovered r = (*wal)->TakeRecovered();
  EXPECT_EQ(Show(r.entries), Show(Bigs(1, rotating - 1, 1)));
  EXPECT_EQ(r.hard_state, HS(2, 1, 0));
  EXPECT_THAT(r.torn_tail, HasSubstr(SegPath(1)));
}

// Found while writing these tests. A snapshot covers entries written by an
// overwrite: the log held 1..10 of term 1, then 5 and 6 of term 2 replaced
// everything from 5, and a snapshot at 6 was saved (RaftStore writes the
// snapshot file before Rebase, so a crash in between reopens exactly this log
// with after = 6). Entries 7..10 of term 1 were cut off the log by the
// overwrite; they must not come back after the snapshot.
TEST_F(WalTest, EntriesCutByAnOverwriteBelowTheSnapshotStayCut) {
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 4), {E(1, 1), E(2, 1), E(3, 1), E(4, 1), E(5, 1), E(6, 1),
                                          E(7, 1), E(8, 1), E(9, 1), E(10, 1)})
                    .ok());
    ASSERT_TRUE(wal->Append(HS(2, 2, 6), {E(5, 2), E(6, 2)}).ok());
    ASSERT_TRUE(wal->Sync().ok());
    EXPECT_EQ(wal->last_index(), LogIndex(6));
  }
  // Read from the start, the log is 1..6.
  EXPECT_THAT(Show(Recover().entries),
              ElementsAre("1@1:e1t1", "2@1:e2t1", "3@1:e3t1", "4@1:e4t1", "5@2:e5t2", "6@2:e6t2"));
  // After a snapshot at 6 nothing is left.
  std::unique_ptr<Wal> wal = MustOpen(LogIndex(6));
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(wal->last_index(), LogIndex(6));
  WalRecovered r = wal->TakeRecovered();
  EXPECT_THAT(Show(r.entries), IsEmpty());
  EXPECT_EQ(r.hard_state, HS(2, 2, 6));
}

// Found while writing these tests. Every segment begins with the hard state in
// force, "so segments before it can be released without losing the vote"
// (wal.h). A crash at a rotation can tear the new segment inside that
// hard-state record; recovery cuts it and keeps the segment with its header
// alone. Once the segment before it is released, the vote is gone.
TEST_F(WalTest, SegmentTornInsideItsHardStateKeepsTheVoteAfterRelease) {
  size_t segments = 0;
  WriteLog(40, HS(5, 3, 0), &segments);
  ASSERT_EQ(segments, 2u);
  LogIndex prev;
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    prev = wal->segments()[1].prev_index;
  }
  // Segment 2 as a crash during its rotation can leave it: the header and a
  // few bytes of the hard state.
  const std::string header =
      HeaderRecord(kWalMagic, kWalVersion, kCluster, 1, 2, prev.value(), 1, /*prev_term=*/1);
  const std::string seg2 = Read(SegPath(2));
  ASSERT_EQ(seg2.substr(0, header.size()), header);
  Write(SegPath(2), seg2.substr(0, header.size() + 5));
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    WalRecovered r = wal->TakeRecovered();
    EXPECT_THAT(r.torn_tail, HasSubstr(SegPath(2)));
    EXPECT_EQ(r.hard_state, HS(5, 3, 0));
    EXPECT_EQ(r.entries.size(), prev.value());
    // The node goes on without a new hard state; a snapshot then covers the
    // first segment.
    ASSERT_TRUE(wal->Append(std::nullopt, {Big(prev.value() + 1, 5)}).ok());
    ASSERT_TRUE(wal->Sync().ok());
    absl::StatusOr<size_t> released = wal->Release(prev);
    ASSERT_TRUE(released.ok()) << released.status();
    ASSERT_EQ(*released, 1u);
  }
  WalRecovered r = Recover(prev);
  EXPECT_EQ(r.hard_state.term, Term(5));
  EXPECT_EQ(r.hard_state.vote, NodeId(3));
}

// Rebase opens the new segment with a hard state whose commit index is
// capped at the rebase index; the full one follows the entries. A crash that
// keeps only the segment's header and that first hard state must reopen:
// the commit index may not point past the entries that were cut off.
// A rebased segment is written atomically: a crash right after Rebase (with
// torn tails on) keeps all of it, and one before its rename leaves only a
// temporary file that recovery removes, with the older segments intact. Its
// opening hard state never carries a commit index past the rebase index.
TEST_F(WalTest, RebaseIsAtomicAndItsOpeningCommitIndexStaysBehindItsEntries) {
  std::vector<raft::Entry> after;
  for (uint64_t i = 11; i <= 20; ++i)
    after.push_back(E(i, 2));
  std::vector<raft::Entry> all;
  for (uint64_t i = 1; i <= 20; ++i)
    all.push_back(E(i, 1));
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 15), all).ok());
    ASSERT_TRUE(wal->Sync().ok());
    ASSERT_EQ(wal->segments().size(), 1u);
    ASSERT_TRUE(wal->Rebase(LogIndex(10), HS(2, 1, 15), after).ok());
    ASSERT_EQ(wal->segments().size(), 2u);
    env::SimDiskFaults torn;
    torn.torn_tail = 1;
    disk_.set_faults(torn);
    disk_.Crash(5);
    disk_.set_faults(env::SimDiskFaults{});
  }
  // The rebased segment: header, hard state, entries 11..20, hard state.
  const std::string seg = Read(SegPath(2));
  std::vector<size_t> ends;
  for (size_t off = 0; off < seg.size();) {
    ASSERT_GE(seg.size() - off, kWalRecordHeaderBytes);
    core::ByteReader r(std::string_view(seg).substr(off));
    off += kWalRecordHeaderBytes + r.Fixed32();
    ASSERT_LE(off, seg.size());
    ends.push_back(off);
  }
  ASSERT_EQ(ends.size(), 2u + after.size() + 1u);
  std::string capped;
  AppendWalRecord(&capped, kWalHardState, raft::EncodeHardState(HS(2, 1, 10)));
  EXPECT_EQ(seg.substr(ends[0], ends[1] - ends[0]), capped);
  WalRecovered r = Recover(LogIndex(10));
  EXPECT_EQ(Show(r.entries), Show(after));
  EXPECT_EQ(r.hard_state, HS(2, 1, 15));
  EXPECT_THAT(r.torn_tail, IsEmpty());

  // A temporary file left by a rebase that a crash interrupted before its
  // rename is never part of the log: recovery removes it.
  const std::string tmp = SegPath(3) + ".tmp";
  Write(tmp, seg.substr(0, ends[1]));
  WalRecovered before = Recover(LogIndex(10));
  EXPECT_EQ(Show(before.entries), Show(after));
  EXPECT_FALSE(disk_.Exists(tmp));
}

// A log opened only to be read (check-data) refuses to be written, and an
// inspection of a missing or empty directory creates nothing.
TEST_F(WalTest, ALogOpenedForReadingRefusesWrites) {
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 0), {E(1, 1)}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  for (bool repair : {false, true}) {
    WalOptions o = Opts();
    o.writable = false;
    absl::StatusOr<std::unique_ptr<Wal>> wal = OpenWal(LogIndex(0), repair, o);
    ASSERT_TRUE(wal.ok()) << wal.status();
    EXPECT_EQ((*wal)->TakeRecovered().entries.size(), 1u);
    EXPECT_TRUE(absl::IsFailedPrecondition((*wal)->Append(HS(2, 1, 0), {})));
    EXPECT_TRUE(absl::IsFailedPrecondition((*wal)->Sync()));
    EXPECT_TRUE(absl::IsFailedPrecondition((*wal)->Rebase(LogIndex(1), HS(2, 1, 1), {})));
  }
  WalOptions o = Opts();
  o.writable = false;
  absl::StatusOr<std::unique_ptr<Wal>> none = Wal::Open(disk_, "elsewhere", o, LogIndex(0));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE((*none)->TakeRecovered().fresh);
  EXPECT_FALSE(disk_.Exists("elsewhere"));
}

// A crash right after a rotation created the next segment (before anything
// reached it): the empty segment is not "the last" one, so the torn tail of
// the segment before it is cut, not taken for damage.
TEST_F(WalTest, TornTailBeforeAnEmptyLastSegmentIsCut) {
  {
    std::unique_ptr<Wal> wal = MustOpen();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(HS(1, 1, 2), {E(1, 1), E(2, 1)}).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  const std::string whole = Read(SegPath(1));
  std::string torn;
  AppendWalRecord(&torn, kWalEntry, "half of an entry that never finished");
  Write(SegPath(1), whole + torn.substr(0, torn.size() / 2));
  Write(SegPath(2), "");
  std::unique_ptr<Wal> wal = MustOpen();
  ASSERT_NE(wal, nullptr);
  WalRecovered r = wal->TakeRecovered();
  EXPECT_THAT(Show(r.entries), ElementsAre("1@1:e1t1", "2@1:e2t1"));
  EXPECT_THAT(r.torn_tail, HasSubstr(SegPath(1)));
  EXPECT_EQ(Read(SegPath(1)), whole);
}

// Without preallocation a full disk can meet the header of a new segment:
// the rotation is refused with nothing of the new segment left, the log goes
// on in the old one, and once there is room the rotation happens.
TEST_F(WalTest, FullDiskAtANewSegmentsHeaderLeavesNoHeaderlessSegment) {
  WalOptions o = Opts();
  o.preallocate = false;
  absl::StatusOr<std::unique_ptr<Wal>> opened = OpenWal(LogIndex(0), true, o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Wal& wal = **opened;
  uint64_t next = 1;
  while (wal.segments().size() == 1) {
    ASSERT_TRUE(wal.Append(HS(1, 1, next), {Big(next, 1)}).ok());
    ++next;
  }
  ASSERT_TRUE(wal.Sync().ok());
  // Fill the segment up to just before the next rotation, then the disk:
  // room for a few bytes, less than a segment header.
  std::string record;
  raft::AppendEntry(&record, Big(next, 1));
  const uint64_t entry_bytes = kWalRecordHeaderBytes + record.size();
  while (wal.segments().back().bytes + entry_bytes <= kSegmentBytes) {
    ASSERT_TRUE(wal.Append(std::nullopt, {Big(next, 1)}).ok());
    ++next;
  }
  ASSERT_TRUE(wal.Sync().ok());  // the next entry needs a new segment
  const uint64_t segments = wal.segments().size();
  env::SimDiskFaults full;
  full.capacity_bytes = disk_.used_bytes() + 10;
  disk_.set_faults(full);
  absl::Status s = wal.Append(HS(1, 1, next), {Big(next, 1)});
  ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_EQ(wal.segments().size(), segments);
  EXPECT_FALSE(disk_.Exists(SegPath(segments + 1)));
  disk_.set_faults(env::SimDiskFaults{});
  ASSERT_TRUE(wal.Append(HS(1, 1, next), {Big(next, 1)}).ok());
  ASSERT_TRUE(wal.Sync().ok());
  EXPECT_TRUE(disk_.Exists(SegPath(segments + 1)));
  opened->reset();
  WalRecovered r = Recover();
  ASSERT_EQ(r.entries.size(), next);
  EXPECT_EQ(r.entries.back().index, LogIndex(next));
}

}  // namespace
}  // namespace bw::storage

namespace bw::storage {
namespace {

class WalReadTest : public ::testing::Test {
 protected:
  std::unique_ptr<Wal> MustOpen(LogIndex after = LogIndex(0)) {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(disk_, kDir, Opts(), after);
    EXPECT_TRUE(wal.ok()) << wal.status();
    return wal.ok() ? std::move(wal).value() : nullptr;
  }
  // Entries lo..hi as ReadEntries gives them, or the error's text.
  static std::vector<std::string> ReadBack(const Wal& wal, uint64_t lo, uint64_t hi,
                                           uint64_t max_bytes = UINT64_MAX) {
    std::vector<raft::Entry> out;
    absl::Status st = wal.ReadEntries(LogIndex(lo), LogIndex(hi), max_bytes, &out);
    if (!st.ok()) return {st.ToString()};
    return Show(out);
  }

  env::SeededRandom random_{7};
  env::SimDisk disk_{random_};
};

// What lets the Raft log keep only recent entries in memory: every entry of
// the log as it is now reads back from the segments, across rotation, after
// an overwrite, after a reopen, a Rebase and a Release; nothing else does.
TEST_F(WalReadTest, EntriesReadBackAsTheLogHoldsThemNow) {
  std::unique_ptr<Wal> wal = MustOpen();
  ASSERT_NE(wal, nullptr);
  ASSERT_TRUE(wal->Append(HS(1, 1, 0), {}).ok());
  for (const raft::Entry& e : Bigs(1, 50, 1))
    ASSERT_TRUE(wal->Append(std::nullopt, {e}).ok());
  ASSERT_GE(wal->segments().size(), 2u);
  EXPECT_EQ(ReadBack(*wal, 1, 50), Show(Bigs(1, 50, 1)));
  // A byte budget stops the read (at least one entry comes).
  EXPECT_EQ(ReadBack(*wal, 7, 50, 1), Show(Bigs(7, 7, 1)));
  EXPECT_EQ(ReadBack(*wal, 7, 50, 2 * EntryRecord(Big(7, 1)).size()), Show(Bigs(7, 8, 1)));

  // An overwrite from 30 on: the old 30..50 are gone.
  ASSERT_TRUE(wal->Append(HS(2, 1, 0), {Big(30, 2)}).ok());
  std::vector<raft::Entry> want = Bigs(25, 29, 1);
  want.push_back(Big(30, 2));
  EXPECT_EQ(ReadBack(*wal, 25, 30), Show(want));
  std::vector<std::string> past = ReadBack(*wal, 25, 31);
  ASSERT_EQ(past.size(), 1u);
  EXPECT_THAT(past[0], HasSubstr("OUT_OF_RANGE"));
  EXPECT_THAT(past[0], HasSubstr("1..30"));
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();

  // Reopened after a snapshot at 10: 11..30 read back, 10 does not.
  wal = MustOpen(LogIndex(10));
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(wal->readable_after(), LogIndex(10));
  std::vector<raft::Entry> from11 = Bigs(11, 29, 1);
  from11.push_back(Big(30, 2));
  EXPECT_EQ(ReadBack(*wal, 11, 30), Show(from11));
  EXPECT_THAT(ReadBack(*wal, 10, 12)[0], HasSubstr("OUT_OF_RANGE"));

  // Release at 20: entries from 21 on still read back.
  ASSERT_TRUE(wal->Release(LogIndex(20)).ok());
  EXPECT_EQ(wal->readable_after(), LogIndex(20));
  EXPECT_EQ(ReadBack(*wal, 21, 22), Show(Bigs(21, 22, 1)));

  // A Rebase at 40 (a snapshot from the leader) with entries 41..42.
  ASSERT_TRUE(wal->Rebase(LogIndex(40), HS(3, 1, 40), {Big(41, 3), Big(42, 3)}).ok());
  EXPECT_EQ(ReadBack(*wal, 41, 42), Show({Big(41, 3), Big(42, 3)}));
  EXPECT_THAT(ReadBack(*wal, 30, 41)[0], HasSubstr("OUT_OF_RANGE"));
  ASSERT_TRUE(wal->Append(std::nullopt, {Big(43, 3)}).ok());
  EXPECT_EQ(ReadBack(*wal, 42, 43), Show({Big(42, 3), Big(43, 3)}));
}

// Each entry written with a hard state after it (a Ready each): the reads
// span the hard-state records between entries and skip them.
TEST_F(WalReadTest, EntriesSeparatedByHardStatesReadBack) {
  std::unique_ptr<Wal> wal = MustOpen();
  ASSERT_NE(wal, nullptr);
  for (uint64_t i = 1; i <= 40; ++i)
    ASSERT_TRUE(wal->Append(HS(1, 1, i - 1), {Big(i, 1)}).ok());
  EXPECT_EQ(ReadBack(*wal, 1, 40), Show(Bigs(1, 40, 1)));
  EXPECT_EQ(ReadBack(*wal, 3, 40, 3 * EntryRecord(Big(3, 1)).size()), Show(Bigs(3, 5, 1)));
}

// A record that does not read back as the entry (a flipped bit on the disk)
// is DATA_LOSS naming the segment, the entry and the offset.
TEST_F(WalReadTest, ADamagedRecordIsDataLossNamingItsSegmentAndEntry) {
  std::unique_ptr<Wal> wal = MustOpen();
  ASSERT_NE(wal, nullptr);
  ASSERT_TRUE(wal->Append(HS(1, 1, 0), Bigs(1, 3, 1)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  const WalSegmentInfo seg = wal->segments().back();
  absl::StatusOr<std::string> bytes = disk_.ReadFile(seg.path);
  ASSERT_TRUE(bytes.ok());
  // Entry 3's record is the last before the hard state; flip a byte in it.
  const size_t hs_size = [] {
    std::string r;
    AppendWalRecord(&r, kWalHardState, raft::EncodeHardState(HS(1, 1, 0)));
    return r.size();
  }();
  std::string bad = *bytes;
  const size_t at = seg.bytes - hs_size - 5;
  bad[at] = static_cast<char>(bad[at] ^ 0x10);
  ASSERT_TRUE(disk_.WriteFileAtomic(seg.path, bad).ok());
  EXPECT_EQ(ReadBack(*wal, 1, 2), Show(Bigs(1, 2, 1)));
  std::vector<std::string> got = ReadBack(*wal, 2, 3);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_THAT(got[0], HasSubstr("DATA_LOSS"));
  EXPECT_THAT(got[0], HasSubstr(seg.path));
  EXPECT_THAT(got[0], HasSubstr("entry 3 at offset"));
  EXPECT_THAT(got[0], HasSubstr("checksum mismatch"));
}

}  // namespace
}  // namespace bw::storage
