// The write-ahead log of one replica's Raft state, in segment files on an
// env::Disk.
//
// Layout. `dir` holds segments named wal-<seq as 16 hex digits>.seg, numbered
// without gaps. Each segment is preallocated (fallocate, keeping the size) to
// `segment_bytes` and holds framed records:
//
//   length:u32  length_crc:u32  crc:u32  type:u8  payload[length]
//
// `length_crc` is the CRC-32C of the four length bytes, so a damaged length
// is caught before it is trusted; `crc` covers type and payload. The first
// record of a segment is its header (magic "BWWL", format version, cluster
// id, node id, sequence number, the index of the last log entry written
// before the segment began, whether that entry ended the segment before
// (rotation) or is a snapshot's (Rebase), and for rotation its term); the
// second is the hard state in force when it
// began, so segments before it can be released without losing the vote.
// Then come entry and hard-state records in the order they were written. An
// entry whose index is not past the last one replaces the log from there,
// as the Raft core truncated it.
//
// Recovery (Open) reads every segment and sorts what it finds into three:
//   - A torn write: a bad record in the last segment that the file ends
//     inside, or after which the file holds only zeros. Nothing from there
//     was ever acknowledged (it was not synced); it is cut off and the cut is
//     reported by torn_tail().
//   - Corruption: any other bad record, a gap in the segment numbers, a first
//     segment that starts after the snapshot, a rotated segment that does
//     not start where the one before ends, index and term (which lost its
//     tail), a wrong magic or version.
//     Open fails with DATA_LOSS naming the file, the offset and what was
//     expected; nothing is skipped, and the member must be rebuilt from its
//     peers.
//   - A directory written by another member (cluster or node id differs):
//     FAILED_PRECONDITION naming both.
//
// Durability: Append writes records through to the file; Sync makes every
// record appended so far durable. A segment is synced before the next one is
// started, so only the last segment can ever hold an unsynced tail. A failed
// write or sync is sticky: every later call returns the same error (the page
// cache may have dropped the data; retrying cannot make it durable), and the
// owner must stop. The exception is a full device (RESOURCE_EXHAUSTED): the
// append is refused whole (a partial write is cut off again, a new segment
// is not started) and may be retried when space returns.
//
// Thread-safety: none; one owner (the node's event loop). SyncAsync syncs the
// active segment on the storage thread while the owner may append.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "env/env.h"
#include "raft/types.h"

namespace bw::storage {

struct WalOptions {
  // Which member of which cluster writes here; checked against every segment.
  uint64_t cluster_id = 0;
  NodeId node_id = kNoNode;
  // A segment is closed before an append that would take it past this many
  // bytes (an append larger than a whole segment still goes in one).
  uint64_t segment_bytes = 64 << 20;
  // Reserve each segment's space up front.
  bool preallocate = true;
  // Refuse segments of another member. Off only for inspection (check-data),
  // which reports the identity it finds; then node_id may be kNoNode.
  bool check_identity = true;
  // Open for writing: create the directory and a segment when there is none
  // and continue the last one. Off for inspection: recovery then changes
  // nothing but (with repair) cutting a torn tail and removing an empty last
  // segment.
  bool writable = true;
  // Planted bug (BW_PLANTED_BUGS builds only): recovery accepts records
  // whose checksum fails. The simulator's corruption check must catch it.
  bool planted_skip_checksums = false;
  // Planted bug: Sync reports success at once while appends wait in memory
  // until PlantedFlush (a disk cache that lies about fsync). A crash loses
  // what was acknowledged as durable.
  bool planted_lying_sync = false;

  [[nodiscard]] absl::Status Validate() const;
};

// One segment as recovery found it (for check-data and tests).
struct WalSegmentInfo {
  std::string path;
  uint64_t seq = 0;
  uint64_t cluster_id = 0;
  NodeId node_id;
  LogIndex prev_index;   // last entry index written before this segment
  LogIndex last_index;   // last entry index in the log when the segment ended
  uint64_t bytes = 0;    // bytes of valid records
  uint64_t records = 0;  // including the header
};

// What recovery read.
struct WalRecovered {
  raft::HardState hard_state;
  // Entries after `after` (the snapshot index given to Open), in order.
  std::vector<raft::Entry> entries;
  std::vector<WalSegmentInfo> segments;
  // What was cut off as a torn write ("" if nothing): file, bytes, offset, why.
  std::string torn_tail;
  bool fresh = true;  // no segment existed
};

class Wal {
 public:
  // Opens (creating if need be) the log in `dir` and recovers it. Entries at
  // or below `after` (the snapshot's index) are skipped, and segments may be
  // missing below it. With `repair` false the log is only read: a torn tail is
  // reported but not cut, and no segment is created (check-data).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Wal>> Open(env::Disk& disk, std::string dir,
                                                                 const WalOptions& options,
                                                                 LogIndex after,
                                                                 bool repair = true);
  ~Wal();

  // What Open found; entries are moved out.
  WalRecovered TakeRecovered();
  const std::vector<WalSegmentInfo>& segments() const { return segments_; }

  // Writes the entries, then the hard state (so a torn tail never leaves a
  // commit index past the log). Not durable until Sync.
  [[nodiscard]] absl::Status Append(const std::optional<raft::HardState>& hs,
                                    const std::vector<raft::Entry>& entries);
  // Makes every Append so far durable (one fdatasync).
  [[nodiscard]] absl::Status Sync();
  // The same through env.Offload: the fdatasync runs off the caller's loop
  // and `done` gets its result there (never once the log is destroyed). No
  // Append may run until `done` did.
  void SyncAsync(env::Env& env, std::function<void(absl::Status)> done);
  // WalOptions::planted_lying_sync: writes and syncs what Sync pretended to.
  [[nodiscard]] absl::Status PlantedFlush();
  // The log now continues after a snapshot at `index`: writes, atomically
  // and durably, a segment whose predecessor is `index`, holding the entries
  // of `after` past `index` and then `hs`. Segments before it become
  // releasable.
  [[nodiscard]] absl::Status Rebase(LogIndex index, const raft::HardState& hs,
                                    const std::vector<raft::Entry>& after);
  // A snapshot now covers the log up to `index`: removes every segment all
  // of whose live entries are at or below it (never the one being written).
  // Returns how many segments were removed.
  [[nodiscard]] absl::StatusOr<size_t> Release(LogIndex index);

  // Reads back entries lo..hi (inclusive) of the log as it is now, stopping
  // before the entry that would take the records read past `max_bytes` (at
  // least one is read), for a Raft log that keeps only recent entries in
  // memory. Entries close together in a segment (a Ready's entries, the
  // next Ready's after the hard state between them) are read with one ReadAt. Only entries after
  // the recovered snapshot (or after the index of the last Rebase or Release) can be read:
  // OUT_OF_RANGE for others. DATA_LOSS naming the segment and offset when a record read back is not
  // the entry expected (damaged, or not yet written: planted_lying_sync).
  // Reads what was appended, synced or not.
  [[nodiscard]] absl::Status ReadEntries(LogIndex lo, LogIndex hi, uint64_t max_bytes,
                                         std::vector<raft::Entry>* out) const;
  // The entries ReadEntries can read: (readable_after(), last_index()].
  LogIndex readable_after() const { return locs_from_; }

  LogIndex last_index() const { return last_index_; }
  uint64_t bytes() const;
  const std::string& dir() const { return dir_; }

 private:
  Wal(env::Disk& disk, std::string dir, const WalOptions& options)
      : disk_(disk), dir_(std::move(dir)), options_(options) {}
  absl::Status Recover(LogIndex after, bool repair);
  absl::Status RecoverSegment(size_t i, bool last, LogIndex after, bool repair);
  // Syncs and closes the current segment and starts segment `seq`, whose
  // predecessor entry is `prev_index`.
  absl::Status StartSegment(uint64_t seq, LogIndex prev_index);
  // Syncs the segment being written (before another one begins).
  absl::Status CloseSegment();
  // A segment's header and opening hard-state records; `rebase`: the segment
  // follows a snapshot (Rebase), not the segment before it (rotation).
  std::string SegmentStart(uint64_t seq, LogIndex prev_index, const raft::HardState& hs,
                           bool rebase) const;
  absl::Status Write(std::string_view bytes);
  absl::Status Fail(absl::Status s);
  std::string SegmentPath(uint64_t seq) const;
  // Where a record lies: segment, offset in it, header + payload bytes.
  struct EntryLoc {
    uint64_t seq;
    uint64_t offset;
    uint64_t size;
  };
  // Notes where entry `index` was just written: the log is cut back to
  // before it first (an overwrite).
  void NoteEntry(LogIndex index, EntryLoc loc);

  env::Disk& disk_;
  const std::string dir_;
  const WalOptions options_;
  std::shared_ptr<env::AppendFile> file_;
  std::vector<WalSegmentInfo> segments_;
  WalRecovered recovered_;
  raft::HardState hard_state_;
  LogIndex last_index_;
  // Where each entry after locs_from_ lies: locs_[i] is entry
  // locs_from_ + 1 + i, through last_index_ (24 bytes per entry in memory:
  // what lets the Raft log keep only recent entries).
  std::deque<EntryLoc> locs_;
  LogIndex locs_from_;
  // The term of entry last_index_; 0 when not known (the log ends at a
  // snapshot). Written into the next rotated segment's header.
  Term last_term_;
  std::string scratch_;                 // Append's encoding buffer
  std::vector<size_t> scratch_starts_;  // and where its records start
  std::string planted_pending_;         // planted_lying_sync: appended, not yet written
  // The first error of a write or sync; sticky.
  absl::Status failed_;
  // Expires with the log: a sync answered after it was closed is dropped.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Appends one framed record to `out` (exposed for tests and check-data).
void AppendWalRecord(std::string* out, uint8_t type, std::string_view payload);

// Record types.
inline constexpr uint8_t kWalSegmentHeader = 1;
inline constexpr uint8_t kWalHardState = 2;
inline constexpr uint8_t kWalEntry = 3;
inline constexpr size_t kWalRecordHeaderBytes = 13;
inline constexpr uint32_t kWalMagic = 0x4C575742;  // "BWWL" little-endian
inline constexpr uint32_t kWalVersion = 1;

}  // namespace bw::storage
