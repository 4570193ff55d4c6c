// One replica: the Raft core, the key-value state machine and durable
// storage, wired together on an env::Env. The same code runs in the
// simulator (SimEnv) and in the server (RealEnv).
//
// The Ready loop follows the core's contract: persist (and sync), then send,
// then apply, then Advance. Sync may take time (the simulator models fsync
// latency); while it is under way the node keeps stepping messages and
// ticking, and the next Ready waits.
//
// Thread-safety: none. Everything runs on the env's event-loop thread.
#pragma once

#include <any>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/histogram.h"
#include "core/status.h"
#include "env/env.h"
#include "kv/state_machine.h"
#include "raft/raft.h"
#include "storage/raft_store.h"

namespace bw::node {

// Bugs planted on purpose in the driver, to prove the checkers catch them.
// Compiled only with BW_PLANTED_BUGS.
struct NodeBugs {
  // Send messages (votes, append acknowledgements) before the sync completes.
  bool ack_before_persist = false;
  // The log reports appends synced at once but keeps them in memory until
  // the next tick (a disk whose cache lies about fsync): a crash of the
  // members that acknowledged an entry loses it.
  bool wal_lying_sync = false;
  // Serve "linearizable" reads from local state without ReadIndex.
  bool reads_without_read_index = false;
  // Recover the WAL without verifying record checksums.
  bool wal_skip_checksums = false;
};

struct NodeOptions {
  NodeId id = kNoNode;
  // Voters of a brand-new cluster; empty for a node that joins an existing
  // cluster (it learns the configuration from the leader).
  std::vector<NodeId> initial_voters;
  raft::Config raft;
  std::string data_dir = "data";
  // The cluster this member belongs to; recorded in every WAL segment, so a
  // data directory of another cluster is refused.
  uint64_t cluster_id = 0;
  // WAL segment size (the simulator uses small ones to exercise rotation).
  uint64_t wal_segment_bytes = 64 << 20;
  int64_t tick_us = 100'000;
  // Take a snapshot every this many applied entries (0 = never), keeping
  // this many entries behind it for slow followers.
  uint64_t snapshot_every = 0;
  uint64_t snapshot_keep_entries = 0;
  // Makes the replicated state machine (required): the member's MVCC store,
  // or a test's.
  std::function<std::unique_ptr<kv::StateMachine>()> state_machine;
  // A waiting caller is answered DEADLINE_EXCEEDED (outcome unknown) after
  // this long; bounds the memory of requests whose entries never apply.
  int64_t request_timeout_us = 5'000'000;
  // Waiting callers at most; more are refused with RESOURCE_EXHAUSTED.
  size_t max_pending = 10'000;
  NodeBugs bugs;
  // Fault sites in rarely taken paths (after FoundationDB's BUGGIFY): the
  // simulator answers whether the named site fires now. Null in production.
  std::function<bool(const char* site)> buggify;

  [[nodiscard]] absl::Status Validate() const;
};

// Hooks for checkers and traces. Called on the event-loop thread.
class NodeObserver {
 public:
  virtual ~NodeObserver() = default;
  // A Ready was persisted (entries and hard state are durable from here).
  virtual void OnPersisted(NodeId id, const raft::Ready& rd) {}
  // An entry was applied; `digest` is the state machine's after it (0 when
  // WantsDigest() is false).
  virtual void OnApplied(NodeId id, const raft::Entry& e, uint64_t digest) {}
  // Whether OnApplied and OnSnapshotInstalled need the digest. Computing it
  // walks every lease and member, so a production member, which has no use
  // for it, does not pay for it at every applied entry.
  virtual bool WantsDigest() const { return true; }
  virtual void OnSnapshotInstalled(NodeId id, const raft::SnapshotMeta& meta, uint64_t digest) {}
  // The role changed; called as the Ready is taken, so raft() shows the
  // state in which the role was held.
  virtual void OnRoleChange(NodeId id, const raft::SoftState& ss) {}
  // Storage failed in a way that cannot be retried (a failed write or sync,
  // damage): the node has stopped and must be restarted, which recovers from
  // what is durable. Called once; do not destroy the node inside the call.
  virtual void OnHalted(NodeId id, const absl::Status& why) {}
};

// The result of a proposal as the state machine returned it.
using ProposeCallback = std::function<void(absl::StatusOr<std::any>)>;
using BarrierCallback = std::function<void(absl::Status)>;

class Node {
 public:
  // Loads (or bootstraps) durable state and starts ticking and listening.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Node>> Start(env::Env& env,
                                                                   NodeOptions options,
                                                                   NodeObserver* observer);
  // Stops timers and the receiver; waiting callers get UNAVAILABLE.
  ~Node();

  // Proposes an entry for the state machine; `request_id` (non-zero,
  // unique among this node's waiting proposals) matches the applied entry to
  // the caller. `done` runs once: with the state machine's result when the
  // entry is applied here; DEADLINE_EXCEEDED when the outcome is unknown (it
  // was proposed but not seen applied in time, or the node stopped); any
  // other error means it was certainly not applied.
  void Propose(uint64_t request_id, std::string data, ProposeCallback done);
  // Runs `done` once the state machine may be read: at once for a local
  // (serializable) read; for a linearizable one after ReadIndex confirms
  // leadership and the state machine has applied up to the read index.
  void ReadBarrier(bool linearizable, BarrierCallback done);

  absl::Status ProposeConfChange(const raft::ConfChange& cc);
  absl::Status TransferLeadership(NodeId target);
  // Starts an election now, as if the election timeout had passed (the
  // simulator's nemesis: a node whose timer happens to fire first).
  void Campaign();

  NodeId id() const { return options_.id; }
  const raft::Raft& raft() const { return *raft_; }
  kv::StateMachine& state_machine() { return *state_; }
  LogIndex applied_index() const { return applied_index_; }
  // Non-OK once storage failed: the node does nothing more (see OnHalted).
  const absl::Status& halted() const { return halted_; }
  // True while the disk is full (etcd's NOSPACE alarm): writes are refused
  // with RESOURCE_EXHAUSTED and persisting is retried every tick.
  bool no_space() const { return !blocked_.empty(); }
  // True while a Ready's fsync is in flight (what arrives meanwhile goes
  // into the next Ready).
  bool persisting() const { return persisting_; }
  // Durations of the WAL syncs this node made (seconds, by its env clock),
  // and how often it saw the leader change.
  const core::Histogram& sync_seconds() const { return sync_seconds_; }
  uint64_t leader_changes() const { return leader_changes_; }
  uint64_t proposals() const { return proposals_; }
  // Pending client callbacks (bounded by the clients' own concurrency).
  size_t pending() const { return pending_writes_.size() + pending_reads_.size(); }

 private:
  Node(env::Env& env, NodeOptions options, NodeObserver* observer);
  absl::Status Init();
  void OnTick();
  void OnMessage(NodeId from, std::string_view bytes);
  // Runs the Ready loop as far as it can go now.
  void Pump();
  // Pumps once the loop has run what is queued now (group commit).
  void PumpSoon();
  // A leader's appends, heartbeats and snapshot chunks leave before its
  // own fsync (removed from rd.messages).
  void SendLeaderMessagesEarly(raft::Ready& rd);
  void FinishReady(raft::Ready rd);
  void SendMessages(std::vector<raft::Message>& msgs);
  void Apply(const raft::Ready& rd);
  void ServeReads();
  void MaybeSnapshot();
  // Answers every waiting caller: writes DEADLINE_EXCEEDED (outcome
  // unknown), reads UNAVAILABLE.
  void FailAll();
  void ExpireRequests();
  // Persists a Ready's snapshot, hard state and entries; false (and the
  // Ready kept in blocked_ for the next tick) when the disk is full, false
  // after halting on any other failure.
  bool Persist(raft::Ready& rd);
  void Halt(const absl::Status& why);
  bool Buggify(const char* site) const { return options_.buggify && options_.buggify(site); }

  env::Env& env_;
  NodeOptions options_;
  NodeObserver* observer_;
  std::unique_ptr<storage::RaftStore> store_;
  std::unique_ptr<raft::Raft> raft_;
  std::unique_ptr<kv::StateMachine> state_;
  env::TimerId tick_timer_ = 0;
  uint64_t planted_flush_ticks_ = 0;  // NodeBugs::wal_lying_sync
  env::TimerId sync_timer_ = 0;
  // The applied index before which a snapshot refused for lack of space is
  // not tried again.
  LogIndex snapshot_retry_at_{0};
  // A Ready is being made durable (its sync is offloaded); the next waits.
  bool persisting_ = false;
  // Expires with the node: an offloaded sync answered later is dropped.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  // The term and vote known to be on disk (synced).
  raft::HardState durable_;
  // A Pump is queued behind what the loop holds now (PumpSoon).
  bool pump_scheduled_ = false;
  env::TimerId pump_timer_ = 0;
  absl::Status halted_;
  core::Histogram sync_seconds_ = core::Histogram::LatencySeconds();
  uint64_t leader_changes_ = 0;
  NodeId last_leader_ = kNoNode;
  uint64_t proposals_ = 0;
  // A Ready that could not be written for want of space (at most one).
  std::vector<raft::Ready> blocked_;
  bool blocked_snapshot_saved_ = false;
  LogIndex last_snapshot_index_;
  // What the state machine holds. The core's own applied mark runs ahead
  // of it while a Ready (or an installed snapshot) is still being applied.
  LogIndex applied_index_;

  struct PendingWrite {
    ProposeCallback done;
    int64_t deadline_us;
  };
  std::map<uint64_t, PendingWrite> pending_writes_;
  struct PendingRead {
    BarrierCallback done;
    int64_t deadline_us;
    LogIndex index;  // known once the read index is confirmed
  };
  uint64_t next_read_ctx_ = 1;
  std::map<uint64_t, PendingRead> pending_reads_;
  std::vector<uint64_t> confirmed_reads_;
};

}  // namespace bw::node
