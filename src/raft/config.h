// Configuration of one Raft core. Durations are in ticks; only the driver
// knows how long a tick is.
#pragma once

#include <cstdint>
#include <functional>

#include "core/limits.h"
#include "core/status.h"
#include "core/types.h"
#include "raft/raft_log.h"

namespace bw::raft {

// Bugs planted on purpose, to prove that the checkers catch them. They exist
// only in builds with BW_PLANTED_BUGS (never in release binaries) and are
// all off by default.
struct PlantedBugs {
  // Commit an entry of an earlier term once it is on a majority (the
  // dissertation's Figure 3.7 mistake). A new leader then also skips its
  // no-op, as implementations that make this mistake do: with the no-op the
  // window is a few milliseconds wide.
  bool commit_previous_term_by_counting = false;
  // Grant votes without checking that the candidate's log is up to date.
  bool skip_vote_log_check = false;
};

struct Config {
  NodeId id = kNoNode;
  uint32_t election_ticks = limits::kElectionTicksDefault;
  uint32_t heartbeat_ticks = limits::kHeartbeatTicksDefault;
  // Poll before campaigning, so a node that was cut off cannot disrupt a
  // healthy cluster by raising the term.
  bool pre_vote = true;
  // A leader that has not heard from a quorum for an election timeout steps
  // down; followers that heard from a leader recently ignore vote requests.
  bool check_quorum = true;
  // Serve ReadIndex from the leader's lease without a heartbeat round. Safe
  // only while clock drift between nodes is bounded well below the election
  // timeout; requires check_quorum. Off by default.
  bool lease_reads = false;
  // A follower forwards proposals to the leader instead of refusing them.
  bool forward_proposals = true;
  uint64_t max_append_bytes = limits::kMaxAppendBytesDefault;
  uint64_t max_inflight_messages = limits::kMaxInflightMessagesDefault;
  uint64_t max_inflight_bytes = limits::kMaxInflightBytesDefault;
  uint64_t max_uncommitted_bytes = limits::kMaxUncommittedBytesDefault;
  uint64_t max_apply_bytes = limits::kMaxApplyBytesDefault;
  uint64_t snapshot_chunk_bytes = limits::kSnapshotChunkBytesDefault;
  uint64_t max_pending_reads = limits::kMaxPendingReadsDefault;
  // Where entries that left memory are read back from (the node's WAL).
  // With it, applied and durable entries past log_cache_bytes of them leave
  // memory (RaftLog::SetReader); without it every entry stays.
  EntryReader read_entries;
  uint64_t log_cache_bytes = limits::kLogCacheBytesDefault;
  // Seeds the randomized election timeout. The core has no other randomness.
  uint64_t random_seed = 1;
  // The driver's monotonic clock, in microseconds (env::Clock). With it, a
  // leader stamps each entry it appends with its cluster time
  // (Entry::time_us); without it (scripted tests) entries go unstamped. The
  // core never compares one member's reading with another's: it counts only
  // how far its own clock moved since it became leader.
  std::function<int64_t()> local_clock_us;
  PlantedBugs bugs;

  // Rejects impossible settings with INVALID_ARGUMENT and a message naming
  // the field.
  [[nodiscard]] absl::Status Validate() const;
};

}  // namespace bw::raft
