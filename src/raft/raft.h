// The Raft consensus core, after Ongaro's dissertation: a deterministic state
// machine with no I/O, no threads, no clock and no randomness of its own.
//
// The driver feeds it Tick(), Step(message) and proposals, and takes back a
// Ready batch that says what to persist, send and apply (see raft/types.h for
// the order). Exactly one Ready is outstanding at a time: after GetReady()
// the driver must call Advance() before the next GetReady(); Step(), Tick()
// and proposals may be called in between and land in the next Ready.
//
// Features: randomized elections with PreVote and CheckQuorum; per-follower
// progress (probe / replicate / snapshot) with a bounded pipeline; proposal
// batching per Ready; fast backtracking by conflict term; commitment of
// current-term entries only; log compaction and chunked InstallSnapshot;
// joint consensus with learners and automatic leave; leadership transfer;
// ReadIndex (and optional lease) reads; proposal forwarding; a bound on
// uncommitted bytes.
//
// Thread-safety: none. One owner thread calls everything.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "raft/config.h"
#include "raft/forwarded.h"
#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/raft_log.h"
#include "raft/types.h"

namespace bw::raft {

// What a node recovered from its disk at start.
struct Restored {
  HardState hard_state;
  // The latest snapshot (meta.index 0 for none). For a brand-new cluster,
  // meta.conf holds the initial voters.
  Snapshot snapshot;
  // Entries following the snapshot, in order.
  std::vector<Entry> entries;
  // The state machine's applied index (at least the snapshot's) and the
  // configuration in force at that index.
  LogIndex applied;
  ConfState conf;
};

// The recovered state of a member of a brand-new cluster: one committed
// configuration entry (index 1, term 1) that adds `voters`. Every initial
// member starts from the same entry, so a node that joins later learns the
// whole membership history from the log (or from a snapshot).
Restored BootstrapState(const std::vector<NodeId>& voters);

class Raft {
 public:
  // Validates `config`; fails with INVALID_ARGUMENT if it or `restored` is
  // inconsistent (entries that do not follow the snapshot, commit past the log).
  static absl::StatusOr<std::unique_ptr<Raft>> Create(const Config& config, Restored restored);

  // One unit of logical time.
  void Tick();
  // A message from a peer. Messages for another node or of a stale term are
  // dropped (OK); malformed ones return INVALID_ARGUMENT.
  absl::Status Step(Message m);

  // Appends a command (leader), forwards it (follower with forwarding on), or
  // refuses: UNAVAILABLE when there is no leader or a transfer is under way,
  // FAILED_PRECONDITION "not leader" when forwarding is off,
  // RESOURCE_EXHAUSTED when the uncommitted bytes would pass the limit.
  absl::Status Propose(std::string data);
  absl::Status ProposeBatch(std::vector<std::string> batch);
  // As Propose, for a configuration change; also FAILED_PRECONDITION while
  // another change is not yet applied, or when the change is invalid.
  absl::Status ProposeConfChange(const ConfChange& cc);
  // Asks for a linearizable read point. A ReadState with `context` appears in
  // a later Ready once leadership is confirmed; if leadership is lost first,
  // none appears and the caller's deadline decides.
  absl::Status ReadIndex(uint64_t context);
  // Hands leadership to `target` once its log is caught up.
  absl::Status TransferLeadership(NodeId target);
  // Starts an election now (tests and tooling; honours PreVote).
  void Campaign();

  // The driver calls this when it applies a committed kConfChange entry.
  // Returns the configuration now in force. An invalid change is ignored on
  // every node alike (the entry was committed; its effect is nothing).
  ConfState ApplyConfChange(const ConfChange& cc);
  // The state machine has a snapshot at the applied index: keep it to send to
  // lagging followers and drop log entries up to applied - keep_entries.
  void Compact(std::string snapshot_data, uint64_t keep_entries);
  // The same, with the state serialized only if a snapshot is taken, and
  // after the previous snapshot's bytes are let go (a large state is then
  // not held twice while the new one is made).
  void Compact(const std::function<std::string()>& serialize, uint64_t keep_entries);

  // Cluster time, as this member knows it (see Entry::time_us). A leader's
  // clock starts, when it is elected, from the latest stamp in its log (or
  // observed, below) and runs on by its own clock's elapsed time; it never
  // goes back. Along the committed log, stamps then advance no faster than
  // the leaders' clocks: each leader's stamps start from the last stamp
  // before its own entries, and every entry in a new leader's log is
  // committed by it. 0 without a local clock.
  int64_t ClusterTimeMicros();
  // The driver tells the core the time of its applied state (committed, so
  // on every later leader's log): after a snapshot is restored, or entries
  // from before stamping that carry their time in the state alone.
  void ObserveTime(int64_t time_us);
  // The latest stamp in the log, or observed.
  int64_t latest_stamp_us() const;

  bool HasReady() const;
  Ready GetReady();
  void Advance(const Ready& ready);

  // --- Introspection (for the driver, metrics and checkers) ---
  NodeId id() const { return config_.id; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return lead_; }
  Role role() const { return role_; }
  const RaftLog& log() const { return log_; }
  const ConfState& conf() const { return conf_; }
  const Config& config() const { return config_; }
  // Leader only: the progress of `id`, or nullptr.
  const Progress* progress(NodeId id) const;
  NodeId transferee() const { return lead_transferee_; }
  uint64_t uncommitted_bytes() const { return uncommitted_bytes_; }
  // Appends not sent because entries did not read back (Config::read_entries).
  uint64_t log_read_failures() const { return log_read_failures_; }
  // Entries sent to followers that were read back, not found in memory.
  uint64_t log_entries_read() const { return log_entries_read_; }
  const Snapshot& snapshot() const { return snapshot_; }
  // Whether this node could become leader (a voter of the configuration).
  bool Promotable() const;

 private:
  Raft(const Config& config, Restored restored);

  enum class CampaignKind { kPreElection, kElection, kTransfer };

  void BecomeFollower(Term term, NodeId lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void ResetTerm(Term term);
  void ResetRandomizedTimeout();
  void StartCampaign(CampaignKind kind);
  VoteResult Poll(NodeId from, bool granted);
  bool HasUnappliedConfChange() const;

  void TickElection();
  void TickHeartbeat();

  void StepLeader(Message& m);
  void StepCandidate(Message& m);
  void StepFollower(Message& m);
  void HandleVoteRequest(const Message& m);
  void HandleAppend(Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshotChunk(Message& m);
  void InstallSnapshot(Snapshot snap, NodeId from);
  void HandleAppendResponse(const Message& m);

  absl::Status AppendAsLeader(std::vector<Entry>& entries);
  absl::Status LeaderConfChange(Entry e);
  // A follower's proposals: to the leader, or refused naming it.
  absl::Status ForwardToLeader(std::vector<Entry> entries);
  bool MaybeCommit();
  void OnCommitAdvanced(LogIndex old_commit);
  bool CommittedInCurrentTerm() const;

  bool SendAppend(NodeId to, bool send_if_empty);
  void SendSnapshotChunk(NodeId to, Progress& pr);
  void BcastAppend();
  void BcastHeartbeat(uint64_t context);
  void Send(Message m);

  void LeaderRead(NodeId from, uint64_t context);
  void ReleaseRead(NodeId from, LogIndex index, uint64_t context);
  void ReleaseAckedReads();

  Progress* MutableProgress(NodeId id);
  void SyncProgress();
  void AbortTransfer() { lead_transferee_ = kNoNode; }
  uint64_t NextRandom();

  Config config_;
  RaftLog log_;
  Term term_;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;
  ConfState conf_;
  // Leader: one entry per member (voters of both halves and learners).
  std::vector<std::pair<NodeId, Progress>> progress_;
  // Candidate / pre-candidate: answers received this round.
  std::vector<std::pair<NodeId, bool>> votes_;

  uint32_t election_elapsed_ = 0;
  uint32_t heartbeat_elapsed_ = 0;
  uint32_t randomized_election_ticks_ = 0;
  uint64_t rng_state_;
  // The latest time ObserveTime was told.
  int64_t observed_us_ = 0;
  // Leader: its cluster clock reads clock_base_stamp_us_ plus how far its
  // local clock moved since clock_base_local_us_ (both set on election).
  int64_t clock_base_stamp_us_ = 0;
  int64_t clock_base_local_us_ = 0;

  NodeId lead_transferee_ = kNoNode;
  uint32_t transfer_elapsed_ = 0;
  // Invariant (leader): no conf change may be proposed while this is > applied.
  LogIndex pending_conf_index_;
  uint64_t uncommitted_bytes_ = 0;
  uint64_t log_read_failures_ = 0;
  uint64_t log_entries_read_ = 0;
  // Forwarded proposals placed lately: a copy the network delivers again
  // is not placed twice (raft/forwarded.h).
  ForwardedWindow forwarded_{4096};
  bool pending_broadcast_ = false;

  // The latest snapshot this node holds (to send), and one being received.
  Snapshot snapshot_;
  std::optional<Snapshot> incoming_snapshot_;
  // A received snapshot not yet handed out in a Ready.
  std::optional<Snapshot> pending_snapshot_;
  // A snapshot received whole while a Ready was outstanding: installed at
  // Advance, once the entries that Ready handed out are applied.
  std::optional<Snapshot> deferred_snapshot_;
  NodeId deferred_snapshot_from_ = kNoNode;

  struct PendingRead {
    uint64_t ctx;  // leader-internal, increasing
    LogIndex index;
    NodeId from;
    uint64_t client_ctx;
  };
  std::deque<PendingRead> pending_reads_;
  std::vector<PendingRead> reads_before_commit_;
  uint64_t next_read_ctx_ = 1;
  bool pending_read_heartbeat_ = false;
  std::vector<ReadState> read_states_;

  std::vector<Message> msgs_;
  HardState prev_hard_state_;
  SoftState prev_soft_state_;
  bool ready_outstanding_ = false;
};

}  // namespace bw::raft
