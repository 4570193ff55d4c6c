// The leader's view of one follower's log: match index, next index, the
// replication state and the flow-control window. Owned by the Raft core.
#pragma once

#include <cstdint>
#include <vector>

#include "core/types.h"

namespace bw::raft {

// A ring of the append messages in flight to one follower, bounded in count
// and bytes. Invariant: the recorded last indexes are strictly increasing.
class Inflights {
 public:
  Inflights(uint64_t max_count, uint64_t max_bytes)
      : max_count_(max_count), max_bytes_(max_bytes) {}
  bool Full() const { return count_ >= max_count_ || bytes_ >= max_bytes_; }
  void Add(LogIndex last, uint64_t bytes);
  // Releases every message whose last index is <= `index`.
  void FreeLE(LogIndex index);
  // Releases the oldest message (its answer is presumed lost).
  void FreeFirst();
  void Reset();
  uint64_t count() const { return count_; }
  uint64_t bytes() const { return bytes_; }

 private:
  struct Slot {
    LogIndex last;
    uint64_t bytes;
  };
  uint64_t max_count_;
  uint64_t max_bytes_;
  std::vector<Slot> ring_;
  uint64_t start_ = 0;
  uint64_t count_ = 0;
  uint64_t bytes_ = 0;
};

enum class ProgressState : uint8_t {
  // Unsure where the follower's log ends: one append at a time.
  kProbe,
  // The follower is keeping up: appends are pipelined up to the window.
  kReplicate,
  // The follower needs a snapshot; appends wait until it is installed.
  kSnapshot,
};
const char* ProgressStateName(ProgressState s);

struct Progress {
  Progress(LogIndex next_index, uint64_t max_inflight, uint64_t max_inflight_bytes, bool learner)
      : next(next_index), inflights(max_inflight, max_inflight_bytes), is_learner(learner) {}

  // Invariant: match < next, unless a follower lost acknowledged entries
  // (then it is probed below its old match).
  LogIndex match;
  LogIndex next;
  ProgressState state = ProgressState::kProbe;
  // In kProbe: an append was sent and no answer has come since the last
  // heartbeat; send nothing more until one does.
  bool probe_sent = false;
  // In kSnapshot: the snapshot being sent and the next chunk offset.
  LogIndex pending_snapshot;
  uint64_t snapshot_offset = 0;
  bool snapshot_acked = false;
  // Heard from since the last CheckQuorum round.
  bool recent_active = false;
  Inflights inflights;
  bool is_learner = false;
  // The largest read-index context this follower acknowledged this term.
  uint64_t read_ack = 0;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(LogIndex snapshot_index);
  // An accepting answer for `index`. Returns false if it was stale.
  bool MaybeUpdate(LogIndex index);
  // A rejection of the append that followed `rejected`; `hint` is where the
  // logs may agree. Returns false if the rejection was stale.
  bool MaybeDecrTo(LogIndex rejected, LogIndex hint);
  // Whether the leader should hold further appends back.
  bool Paused() const;
  // Records an append of entries up to `last` (Replicate: optimistic next).
  void SentEntries(LogIndex last, uint64_t bytes);
};

}  // namespace bw::raft
