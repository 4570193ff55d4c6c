// libFuzzer target: recovery of the write-ahead log (storage/wal.h) and the
// Raft snapshot file (storage/raft_store.h), on an in-memory SimDisk.
//
// The first byte picks a mode:
//   0  raw segment: the rest of the input is the only segment file. Open, for
//      inspection and then for writing, must not crash and may fail only
//      with DATA_LOSS or FAILED_PRECONDITION; a log that opens for writing
//      must take one more entry and hard state and give back exactly what it
//      held plus them when reopened.
//   1  damaged log: the input drives a series of appends (entries, log
//      overwrites, hard states; small segments so there are several), then
//      damages one segment: truncates it, zero-fills its tail, flips a bit
//      or overwrites bytes. Recovery must either refuse with DATA_LOSS or
//      give back exactly the state after some prefix of the records written
//      (a torn tail loses a suffix, never changes or reorders anything).
//      A truncated last segment is a torn write and must always recover. Then the append-and-reopen
//      check above.
//   2  snapshot file: the rest is the file. ReadSnapshot fails with
//      DATA_LOSS or returns a snapshot which, saved again by a RaftStore,
//      reads back equal.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "env/seeded_random.h"
#include "env/sim/sim_disk.h"
#include "fuzz/fuzz_util.h"
#include "raft/codec.h"
#include "storage/raft_store.h"
#include "storage/wal.h"

namespace {

using bw::LogIndex;
using bw::NodeId;
using bw::Term;
using bw::raft::Entry;
using bw::raft::HardState;
using bw::storage::Wal;
using bw::storage::WalOptions;

constexpr char kDir[] = "/d/wal";
constexpr char kSegment[] = "/d/wal/wal-0000000000000001.seg";

WalOptions Options(uint64_t segment_bytes) {
  WalOptions o;
  o.cluster_id = 7;
  o.node_id = NodeId(1);
  o.segment_bytes = segment_bytes;
  o.check_identity = false;
  return o;
}

// What a log holds: the hard state and the entries, as recovery returns them.
struct LogState {
  HardState hs;
  std::vector<Entry> entries;
  bool operator==(const LogState&) const = default;
};

// For failure messages: "hs(term,vote,commit) [index/term/bytes ...]".
std::string Describe(const LogState& s) {
  std::string out = absl::StrCat("hs(", s.hs.term.value(), ",", s.hs.vote.value(), ",",
                                 s.hs.commit.value(), ") [");
  for (const Entry& e : s.entries)
    absl::StrAppend(&out, " ", e.index.value(), "/", e.term.value(), "/", e.data.size());
  return out + " ]";
}

void AppendTo(LogState* s, const Entry& e) {
  BW_ASSERT_LE(e.index.value(), s->entries.size() + 1);
  s->entries.resize(e.index.value() - 1);
  s->entries.push_back(e);
}

// Appends an entry and a hard state to an opened log, syncs, reopens, and
// checks that the reopened log is `before` plus them.
void CheckAppendAndReopen(bw::env::SimDisk& disk, std::unique_ptr<Wal> wal, LogState before,
                          uint64_t segment_bytes) {
  Entry e;
  e.index = LogIndex(before.entries.size() + 1);
  e.term = before.entries.empty() ? Term(1) : before.entries.back().term;
  if (e.term < before.hs.term) e.term = before.hs.term;
  e.data = "after-recovery";
  HardState hs = before.hs;
  hs.term = e.term;
  hs.commit = e.index;
  const absl::Status appended = wal->Append(hs, {e});
  if (!appended.ok()) {
    // Only a record too large for the simulated disk could fail here.
    BW_ASSERT_MSG(false, appended.ToString());
  }
  BW_ASSERT(wal->Sync().ok());
  wal.reset();
  AppendTo(&before, e);
  before.hs = hs;
  absl::StatusOr<std::unique_ptr<Wal>> again =
      Wal::Open(disk, kDir, Options(segment_bytes), LogIndex(0));
  BW_ASSERT_MSG(again.ok(), again.status().ToString());
  bw::storage::WalRecovered r = (*again)->TakeRecovered();
  BW_ASSERT(r.torn_tail.empty());
  BW_ASSERT(r.hard_state == before.hs);
  BW_ASSERT(r.entries == before.entries);
}

void RawSegment(std::string_view bytes) {
  bw::env::SeededRandom random(1);
  bw::env::SimDisk disk(random);
  BW_ASSERT(disk.CreateDir("/d").ok());
  BW_ASSERT(disk.CreateDir(kDir).ok());
  BW_ASSERT(disk.WriteFileAtomic(kSegment, bytes).ok());
  WalOptions inspect = Options(1 << 20);
  inspect.writable = false;
  absl::StatusOr<std::unique_ptr<Wal>> ro = Wal::Open(disk, kDir, inspect, LogIndex(0), false);
  if (!ro.ok()) {
    BW_ASSERT_MSG(absl::IsDataLoss(ro.status()) || absl::IsFailedPrecondition(ro.status()),
                  ro.status().ToString());
  }
  absl::StatusOr<std::unique_ptr<Wal>> rw = Wal::Open(disk, kDir, Options(1 << 20), LogIndex(0));
  if (!rw.ok()) {
    BW_ASSERT_MSG(absl::IsDataLoss(rw.status()) || absl::IsFailedPrecondition(rw.status()),
                  rw.status().ToString());
    return;
  }
  bw::storage::WalRecovered r = (*rw)->TakeRecovered();
  for (size_t i = 0; i < r.entries.size(); ++i)
    BW_ASSERT_EQ(r.entries[i].index.value(), i + 1);
  CheckAppendAndReopen(disk, std::move(*rw), LogState{r.hard_state, std::move(r.entries)}, 1 << 20);
}

void DamagedLog(bw::fuzz::Input& in) {
  bw::env::SeededRandom random(1);
  bw::env::SimDisk disk(random);
  BW_ASSERT(disk.CreateDir("/d").ok());
  // Segments of the smallest size the log allows, and entries up to a
  // third of one, so a series of appends spans several segments.
  const uint64_t segment_bytes = 4096;
  absl::StatusOr<std::unique_ptr<Wal>> opened =
      Wal::Open(disk, kDir, Options(segment_bytes), LogIndex(0));
  BW_ASSERT(opened.ok());
  std::unique_ptr<Wal> wal = std::move(*opened);
  // states[k]: the log after the first k records after the segment start.
  std::vector<LogState> states(1);
  const int appends = 1 + in.Below(12);
  for (int a = 0; a < appends; ++a) {
    LogState cur = states.back();
    std::vector<Entry> entries;
    const uint64_t last = cur.entries.size();
    // As the Raft core would: entries past the commit index may be
    // overwritten, committed ones never, and the commit index only grows.
    const uint64_t commit = cur.hs.commit.value();
    uint64_t next = last + 1 - in.Below(std::min<uint64_t>(last - commit, 3) + 1);
    Term term = cur.hs.term;
    if (!cur.entries.empty() && cur.entries.back().term > term) term = cur.entries.back().term;
    term = Term(term.value() + in.Below(2));
    // Raft's log matching: an index and a term name one entry, so entries
    // that replace others come from a newer leader's term.
    if (next <= last) term = Term(std::max(term, cur.entries.back().term).value() + 1);
    const int n = in.Below(4);
    for (int i = 0; i < n; ++i) {
      Entry e;
      e.index = LogIndex(next++);
      e.term = term;
      e.data = std::string(in.Below(6) * 256, 'p') + std::string(in.Bytes(40));
      entries.push_back(e);
      AppendTo(&cur, e);
      states.push_back(cur);
    }
    std::optional<HardState> hs;
    if (in.Bool() || entries.empty()) {
      hs = cur.hs;
      hs->term = term;
      hs->vote = NodeId(in.Below(4));
      hs->commit = LogIndex(cur.entries.size() -
                            in.Below(std::min<uint64_t>(cur.entries.size() - commit, 2) + 1));
      cur.hs = *hs;
      states.push_back(cur);
    }
    BW_ASSERT(wal->Append(hs, entries).ok());
    BW_ASSERT(wal->Sync().ok());
  }
  const std::vector<bw::storage::WalSegmentInfo> segments = wal->segments();
  wal.reset();

  // Damage one segment.
  const bw::storage::WalSegmentInfo& seg = segments[in.Below(segments.size())];
  const bool last_segment = seg.seq == segments.back().seq;
  absl::StatusOr<std::string> file = disk.ReadFile(seg.path);
  BW_ASSERT(file.ok());
  std::string bytes = *file;
  const size_t at = bytes.empty() ? 0 : in.Below(bytes.size());
  const int how = in.Below(4);
  bool torn = false;
  if (how == 0) {
    bytes.resize(at);
    torn = true;
  } else if (how == 1) {
    // Zeros from `at` on are a torn write only when `at` is a record
    // boundary; a whole record header followed by zeros is refused as damage
    // (by design: that record may have been synced and acknowledged, so it
    // is not cut silently). So no claim that this one recovers.
    std::fill(bytes.begin() + at, bytes.end(), '\0');
  } else if (how == 2 && !bytes.empty()) {
    bytes[at] = static_cast<char>(bytes[at] ^ (1 << in.Below(8)));
  } else {
    std::string_view with = in.Bytes(16);
    bytes.replace(at, std::min(with.size(), bytes.size() - at), with);
  }
  BW_ASSERT(disk.WriteFileAtomic(seg.path, bytes).ok());

  absl::StatusOr<std::unique_ptr<Wal>> again =
      Wal::Open(disk, kDir, Options(segment_bytes), LogIndex(0));
  if (!again.ok()) {
    BW_ASSERT_MSG(absl::IsDataLoss(again.status()), again.status().ToString());
    BW_ASSERT_MSG(!(torn && last_segment), again.status().ToString());
    return;
  }
  bw::storage::WalRecovered r = (*again)->TakeRecovered();
  LogState got{r.hard_state, std::move(r.entries)};
  bool prefix = false;
  for (const LogState& s : states)
    prefix = prefix || s == got;
  if (!prefix) {
    std::string msg = absl::StrCat("recovered ", Describe(got), " (torn tail: ", r.torn_tail,
                                   ") is not a prefix of what was written (damage ", how, " at ",
                                   at, " of ", seg.path, ", ", segments.size(), " segments):");
    for (const LogState& s : states)
      absl::StrAppend(&msg, "\n  ", Describe(s));
    BW_ASSERT_MSG(false, msg);
  }
  CheckAppendAndReopen(disk, std::move(*again), std::move(got), segment_bytes);
}

void SnapshotFile(std::string_view bytes) {
  bw::env::SeededRandom random(1);
  bw::env::SimDisk disk(random);
  BW_ASSERT(disk.CreateDir("/s").ok());
  BW_ASSERT(disk.WriteFileAtomic("/s/snapshot", bytes).ok());
  absl::StatusOr<bw::raft::Snapshot> snap =
      bw::storage::RaftStore::ReadSnapshot(disk, "/s/snapshot");
  if (!snap.ok()) {
    BW_ASSERT_MSG(absl::IsDataLoss(snap.status()), snap.status().ToString());
    return;
  }
  absl::StatusOr<std::unique_ptr<bw::storage::RaftStore>> store =
      bw::storage::RaftStore::Open(disk, "/t", Options(1 << 20));
  BW_ASSERT(store.ok());
  HardState hs{snap->meta.term, bw::kNoNode, snap->meta.index};
  BW_ASSERT((*store)->SaveSnapshot(*snap, hs, {}).ok());
  absl::StatusOr<bw::raft::Snapshot> back =
      bw::storage::RaftStore::ReadSnapshot(disk, bw::storage::RaftStore::SnapshotPath("/t"));
  BW_ASSERT(back.ok());
  BW_ASSERT(back->meta == snap->meta);
  BW_ASSERT(back->data == snap->data);
}

std::vector<std::string> Seeds() {
  std::vector<std::string> out;
  // Mode 0: a real segment written by the log.
  {
    bw::env::SeededRandom random(1);
    bw::env::SimDisk disk(random);
    BW_ASSERT(disk.CreateDir("/d").ok());
    auto wal = Wal::Open(disk, kDir, Options(1 << 20), LogIndex(0));
    BW_ASSERT(wal.ok());
    std::vector<Entry> entries;
    for (int i = 1; i <= 3; ++i)
      entries.push_back(Entry{Term(1), LogIndex(i), bw::raft::EntryType::kNormal, "v"});
    BW_ASSERT((*wal)->Append(HardState{Term(1), NodeId(1), LogIndex(2)}, entries).ok());
    BW_ASSERT((*wal)->Append(std::nullopt, {Entry{Term(2), LogIndex(3), {}, "w"}}).ok());
    BW_ASSERT((*wal)->Sync().ok());
    wal->reset();
    out.push_back(std::string(1, '\0') + *disk.ReadFile(kSegment));
  }
  // Mode 1: appends and each kind of damage.
  for (int how = 0; how < 4; ++how) {
    std::string s(1, '\1');
    s += '\x05';  // appends
    for (int a = 0; a < 6; ++a) {
      s += '\0';  // next index: last + 1
      s += '\1';  // term step
      s += '\2';  // entries
      s += "\x05\x03"
           "abc";  // data: 5 * 256 + 3 bytes
      s += "\x00\x02"
           "xy";  // data
      s += '\1';  // a hard state
      s += '\1';  // vote
      s += '\0';  // commit
    }
    s += '\0';                         // segment
    s += static_cast<char>(40 + how);  // where
    s += static_cast<char>(how);
    s += "\x04"
         "ZZZZ";
    out.push_back(s);
  }
  // Mode 2: a snapshot file written by a RaftStore.
  {
    bw::env::SeededRandom random(1);
    bw::env::SimDisk disk(random);
    auto store = bw::storage::RaftStore::Open(disk, "/t", Options(1 << 20));
    BW_ASSERT(store.ok());
    bw::raft::Snapshot snap;
    snap.meta.index = LogIndex(5);
    snap.meta.term = Term(2);
    snap.meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
    snap.data = "state machine bytes";
    BW_ASSERT((*store)->SaveSnapshot(snap, HardState{Term(2), NodeId(1), LogIndex(5)}, {}).ok());
    out.push_back(std::string(1, '\2') +
                  *disk.ReadFile(bw::storage::RaftStore::SnapshotPath("/t")));
  }
  return out;
}

}  // namespace

BW_FUZZ_SEEDS_HOOK()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bw::fuzz::Input in(data, size);
  switch (in.Byte() % 3) {
    case 0:
      RawSegment(in.Rest());
      break;
    case 1:
      DamagedLog(in);
      break;
    default:
      SnapshotFile(in.Rest());
      break;
  }
  return 0;
}
