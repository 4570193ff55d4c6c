#include "node/node.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "core/error_kind.h"
#include "kv/etcd_errors.h"
#include "raft/codec.h"

namespace bw::node {

absl::Status NodeOptions::Validate() const {
  if (id == kNoNode) return absl::InvalidArgumentError("node: id must be non-zero");
  if (tick_us <= 0) return absl::InvalidArgumentError("node: tick must be positive");
  if (request_timeout_us <= 0 || max_pending == 0) {
    return absl::InvalidArgumentError("node: request timeout and max pending must be positive");
  }
#ifndef BW_PLANTED_BUGS
  if (bugs.ack_before_persist || bugs.reads_without_read_index || bugs.wal_skip_checksums ||
      bugs.wal_lying_sync) {
    return absl::InvalidArgumentError("node: planted bugs are not compiled in this build");
  }
#endif
  raft::Config c = raft;
  c.id = id;
  return c.Validate();
}

absl::StatusOr<std::unique_ptr<Node>> Node::Start(env::Env& env, NodeOptions options,
                                                  NodeObserver* observer) {
  BW_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<Node> node(new Node(env, std::move(options), observer));
  BW_RETURN_IF_ERROR(node->Init());
  return node;
}

Node::Node(env::Env& env, NodeOptions options, NodeObserver* observer)
    : env_(env), options_(std::move(options)), observer_(observer) {
  BW_ASSERT_MSG(options_.state_machine != nullptr, "node: no state machine given");
  state_ = options_.state_machine();
}

Node::~Node() {
  env_.timers().Cancel(tick_timer_);
  env_.timers().Cancel(sync_timer_);
  env_.timers().Cancel(pump_timer_);
  env_.network().SetReceiver(nullptr);
  FailAll();
}

absl::Status Node::Init() {
  storage::WalOptions wal;
  wal.cluster_id = options_.cluster_id;
  wal.node_id = options_.id;
  wal.segment_bytes = options_.wal_segment_bytes;
  wal.planted_skip_checksums = options_.bugs.wal_skip_checksums;
  wal.planted_lying_sync = options_.bugs.wal_lying_sync;
  BW_ASSIGN_OR_RETURN(store_, storage::RaftStore::Open(env_.disk(), options_.data_dir, wal));
  raft::Restored restored;
  if (store_->fresh()) {
    if (!options_.initial_voters.empty()) {
      restored = raft::BootstrapState(options_.initial_voters);
      BW_RETURN_IF_ERROR(store_->Append(restored.hard_state, restored.entries));
      BW_RETURN_IF_ERROR(store_->Sync());
    }
  } else {
    restored = store_->TakeLoaded();
  }
  const bool from_snapshot = !restored.snapshot.Empty();
  if (from_snapshot) {
    BW_RETURN_IF_ERROR(state_->Restore(restored.snapshot.data));
    last_snapshot_index_ = restored.snapshot.meta.index;
    applied_index_ = restored.snapshot.meta.index;
  }
  // Read contexts must never repeat across restarts: an answer to a read
  // made before a crash could otherwise complete a newer read with a stale
  // index. Start each incarnation at a random point.
  next_read_ctx_ = (env_.random().Next() | 1) & ~(uint64_t{1} << 63);
  raft::Config cfg = options_.raft;
  cfg.id = options_.id;
  // The leader stamps entries with cluster time from this member's clock.
  if (!cfg.local_clock_us) cfg.local_clock_us = [this] { return env_.clock().NowMicros(); };
  // Entries that left the Raft log's memory are read back from the WAL.
  if (!cfg.read_entries) {
    cfg.read_entries = [this](LogIndex lo, LogIndex hi, uint64_t max_bytes,
                              std::vector<raft::Entry>* out) {
      return store_->ReadEntries(lo, hi, max_bytes, out);
    };
  }
  BW_ASSIGN_OR_RETURN(raft_, raft::Raft::Create(cfg, std::move(restored)));
  if (from_snapshot) raft_->ObserveTime(state_->log_time_us());
  durable_ = raft::HardState{raft_->term(), raft_->vote(), raft_->log().committed()};
  env_.network().SetReceiver(
      [this](NodeId from, std::string_view bytes) { OnMessage(from, bytes); });
  tick_timer_ = env_.timers().Schedule(options_.tick_us, [this] { OnTick(); });
  Pump();
  return absl::OkStatus();
}

void Node::OnTick() {
  tick_timer_ = env_.timers().Schedule(options_.tick_us, [this] { OnTick(); });
#ifdef BW_PLANTED_BUGS
  // NodeBugs::wal_lying_sync: what was "synced" reaches the file every
  // 20th tick (about 2 s at 100 ms), so a power loss loses whole seconds of
  // acknowledged writes; a flush every tick left a window so short that a
  // chaos run's three power losses sometimes missed it (one CI run).
  if (options_.bugs.wal_lying_sync && ++planted_flush_ticks_ % 20 == 0) {
    absl::Status s = store_->PlantedFlush();
    if (!s.ok()) {
      Halt(s);
      return;
    }
  }
#endif
  // An event loop that stalls (a long GC-like pause) loses a tick.
  if (!Buggify("node.stall_tick")) raft_->Tick();
  ExpireRequests();
  Pump();
}

void Node::OnMessage(NodeId from, std::string_view bytes) {
  absl::StatusOr<raft::Message> m = raft::DecodeMessage(bytes);
  // A malformed message is dropped; the sender is a peer, not a client.
  if (!m.ok() || m->from != from) return;
  (void)raft_->Step(std::move(*m));
  PumpSoon();
}

void Node::Propose(uint64_t request_id, std::string data, ProposeCallback done) {
  if (!halted_.ok()) {
    done(core::WithKind(absl::UnavailableError(absl::StrCat("node: stopped: ", halted_.message())),
                        core::ErrorKind::kStopped));
    return;
  }
  if (no_space()) {
    // etcd's NOSPACE alarm: the write is certainly not applied.
    done(core::WithKind(kv::etcd_errors::NoSpace(), core::ErrorKind::kNoSpace));
    return;
  }
  if (pending_writes_.size() + pending_reads_.size() >= options_.max_pending) {
    done(absl::ResourceExhaustedError("node: too many requests waiting"));
    return;
  }
  if (pending_writes_.count(request_id)) {
    done(absl::AlreadyExistsError("node: request id already in flight"));
    return;
  }
  absl::Status s = raft_->Propose(std::move(data));
  if (!s.ok()) {
    done(s);
    return;
  }
  ++proposals_;
  pending_writes_[request_id] =
      PendingWrite{std::move(done), env_.clock().NowMicros() + options_.request_timeout_us};
  PumpSoon();
}

void Node::PumpSoon() {
  // Group commit: proposals and messages that arrive together (queued on
  // the loop while the last Ready was being synced) become one Ready, one
  // write and one fsync, instead of one each.
  if (pump_scheduled_) return;
  pump_scheduled_ = true;
  pump_timer_ = env_.timers().Schedule(0, [this] {
    pump_scheduled_ = false;
    Pump();
  });
}

void Node::ReadBarrier(bool linearizable, BarrierCallback done) {
  bool local = !linearizable;
#ifdef BW_PLANTED_BUGS
  if (options_.bugs.reads_without_read_index) local = true;
#endif
  if (local) {
    done(absl::OkStatus());
    return;
  }
  if (!halted_.ok()) {
    done(core::WithKind(absl::UnavailableError(absl::StrCat("node: stopped: ", halted_.message())),
                        core::ErrorKind::kStopped));
    return;
  }
  if (pending_writes_.size() + pending_reads_.size() >= options_.max_pending) {
    done(absl::ResourceExhaustedError("node: too many requests waiting"));
    return;
  }
  uint64_t ctx = next_read_ctx_++;
  absl::Status s = raft_->ReadIndex(ctx);
  if (!s.ok()) {
    done(s);
    return;
  }
  pending_reads_[ctx] = PendingRead{
      std::move(done), env_.clock().NowMicros() + options_.request_timeout_us, LogIndex(0)};
  Pump();
}

absl::Status Node::ProposeConfChange(const raft::ConfChange& cc) {
  absl::Status s = raft_->ProposeConfChange(cc);
  Pump();
  return s;
}

void Node::Campaign() {
  if (!halted_.ok()) return;
  raft_->Campaign();
  Pump();
}

absl::Status Node::TransferLeadership(NodeId target) {
  absl::Status s = raft_->TransferLeadership(target);
  Pump();
  return s;
}

void Node::Pump() {
  if (!halted_.ok()) return;
  while (!persisting_ && (!blocked_.empty() || raft_->HasReady())) {
    raft::Ready rd;
    if (!blocked_.empty()) {
      rd = std::move(blocked_.front());
      blocked_.clear();
    } else {
      rd = raft_->GetReady();
      if (rd.soft_state.has_value()) {
        if (rd.soft_state->leader != last_leader_ && rd.soft_state->leader != kNoNode) {
          ++leader_changes_;
        }
        last_leader_ = rd.soft_state->leader;
        if (observer_ != nullptr) observer_->OnRoleChange(options_.id, *rd.soft_state);
      }
    }
    bool early_send = false;
#ifdef BW_PLANTED_BUGS
    early_send = options_.bugs.ack_before_persist;
#endif
    if (!Persist(rd)) return;
    if (early_send) {
      SendMessages(rd.messages);
    } else {
      SendLeaderMessagesEarly(rd);
    }
    if (rd.MustSync()) {
      // One path in production and in the simulator: the fsync runs off
      // the loop (env::Env::Offload), which meanwhile keeps stepping
      // messages, ticking and queueing proposals for the next Ready.
      persisting_ = true;
      std::weak_ptr<int> alive = alive_;
      auto sync = [this, alive, rd = std::move(rd)]() mutable {
        if (alive.expired() || !halted_.ok()) return;
        const int64_t start = env_.clock().NowMicros();
        store_->SyncAsync(env_, [this, alive, start, rd = std::move(rd)](absl::Status s) mutable {
          if (alive.expired() || !halted_.ok()) return;
          persisting_ = false;
          sync_seconds_.Observe(static_cast<double>(env_.clock().NowMicros() - start) / 1e6);
          if (!s.ok()) {
            Halt(s);
            return;
          }
          FinishReady(std::move(rd));
          Pump();
        });
      };
      // A disk that is sometimes much slower than usual.
      if (Buggify("node.slow_sync")) {
        sync_timer_ = env_.timers().Schedule(20'000, std::move(sync));
      } else {
        sync();
      }
      return;
    }
    FinishReady(std::move(rd));
    if (!halted_.ok()) return;
  }
}

bool Node::Persist(raft::Ready& rd) {
  if (!rd.snapshot.Empty() && !blocked_snapshot_saved_) {
    absl::Status s =
        store_->SaveSnapshot(rd.snapshot,
                             rd.hard_state.value_or(raft::HardState{raft_->term(), raft_->vote(),
                                                                    raft_->log().committed()}),
                             {});
    if (absl::IsResourceExhausted(s)) {
      // No room for the snapshot: nothing of it replaced what was there.
      // Keep the Ready and try again at the next tick (the NOSPACE alarm).
      blocked_.push_back(std::move(rd));
      return false;
    }
    if (!s.ok()) {
      Halt(s);
      return false;
    }
  }
  absl::Status s = store_->Append(rd.hard_state, rd.entries);
  if (absl::IsResourceExhausted(s)) {
    // Nothing was written (the log refuses before it writes): keep the
    // Ready and try again at the next tick; writes are refused meanwhile.
    // A snapshot in it is saved already and is not written twice.
    blocked_snapshot_saved_ = !rd.snapshot.Empty();
    blocked_.push_back(std::move(rd));
    return false;
  }
  blocked_snapshot_saved_ = false;
  if (!s.ok()) {
    Halt(s);
    return false;
  }
  return true;
}

void Node::Halt(const absl::Status& why) {
  if (!halted_.ok()) return;
  // A failed write or sync is fatal: the data may be lost, and continuing
  // could acknowledge what is not durable. Restarting recovers from what
  // reached the disk.
  halted_ = why;
  env_.timers().Cancel(tick_timer_);
  env_.timers().Cancel(sync_timer_);
  env_.timers().Cancel(pump_timer_);
  pump_scheduled_ = false;
  persisting_ = false;
  env_.network().SetReceiver(nullptr);
  FailAll();
  if (observer_ != nullptr) observer_->OnHalted(options_.id, why);
}

void Node::FinishReady(raft::Ready rd) {
  if (rd.hard_state.has_value()) durable_ = *rd.hard_state;
  if (observer_ != nullptr) observer_->OnPersisted(options_.id, rd);
  SendMessages(rd.messages);
  Apply(rd);
  for (const raft::ReadState& rs : rd.read_states) {
    auto it = pending_reads_.find(rs.context);
    if (it == pending_reads_.end()) continue;
    it->second.index = rs.index;
    confirmed_reads_.push_back(rs.context);
  }
  if (rd.soft_state.has_value()) {
    // Read requests sent to a leader that is gone will never be answered.
    for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
      if (it->second.index == LogIndex(0)) {
        BarrierCallback done = std::move(it->second.done);
        it = pending_reads_.erase(it);
        done(core::WithKind(absl::UnavailableError("leader changed before the read was confirmed"),
                            core::ErrorKind::kLeaderChanged));
      } else {
        ++it;
      }
    }
  }
  raft_->Advance(rd);
  // Reads confirmed now may also be served at the next Ready.
  if (!Buggify("node.defer_reads")) ServeReads();
  MaybeSnapshot();
}

void Node::SendLeaderMessagesEarly(raft::Ready& rd) {
  // A leader may write its log in parallel with replicating it (the Raft
  // dissertation, 10.2.1): appends, heartbeats and snapshot chunks claim
  // nothing about the leader's own disk, and an entry is applied and
  // answered only after the Ready that appended it here was synced (Readies
  // are finished in order). So those go out before the fsync, and a
  // follower's write overlaps the leader's. Everything that does vouch for
  // this node's durable state — votes, append acknowledgements — waits for
  // the sync, as does every message of a Ready that changes term or vote.
  if (raft_->role() != raft::Role::kLeader || rd.messages.empty()) return;
  if (rd.hard_state.has_value() &&
      (rd.hard_state->term != durable_.term || rd.hard_state->vote != durable_.vote)) {
    return;
  }
  std::vector<raft::Message> early;
  std::vector<raft::Message> late;
  for (raft::Message& m : rd.messages) {
    bool leader_only = m.type == raft::MessageType::kAppend ||
                       m.type == raft::MessageType::kHeartbeat ||
                       m.type == raft::MessageType::kSnapshot;
    (leader_only ? early : late).push_back(std::move(m));
  }
  rd.messages = std::move(late);
  SendMessages(early);
}

void Node::SendMessages(std::vector<raft::Message>& msgs) {
  for (raft::Message& m : msgs) {
    NodeId to = m.to;
    env_.network().Send(to, raft::EncodeMessage(m));
  }
  msgs.clear();
}

void Node::Apply(const raft::Ready& rd) {
  if (!rd.snapshot.Empty()) {
    absl::Status s = state_->Restore(rd.snapshot.data);
    BW_ASSERT_MSG(s.ok(), s.ToString());
    last_snapshot_index_ = rd.snapshot.meta.index;
    applied_index_ = rd.snapshot.meta.index;
    raft_->ObserveTime(state_->log_time_us());
    if (observer_ != nullptr) {
      observer_->OnSnapshotInstalled(options_.id, rd.snapshot.meta,
                                     observer_->WantsDigest() ? state_->digest() : 0);
    }
  }
  const bool digests = observer_ != nullptr && observer_->WantsDigest();
  for (const raft::Entry& e : rd.committed) {
    if (e.type == raft::EntryType::kConfChange) {
      absl::StatusOr<raft::ConfChange> cc = raft::DecodeConfChange(e.data);
      BW_ASSERT_MSG(cc.ok(), cc.status().ToString());
      raft_->ApplyConfChange(*cc);
    } else if (!e.data.empty()) {
      kv::StateMachine::Applied res = state_->ApplyEntry(e.index, e.time_us, e.data);
      auto it = res.request_id == 0 ? pending_writes_.end() : pending_writes_.find(res.request_id);
      if (it != pending_writes_.end()) {
        ProposeCallback done = std::move(it->second.done);
        pending_writes_.erase(it);
        done(std::move(res.result));
      }
    }
    applied_index_ = e.index;
    if (observer_ != nullptr) observer_->OnApplied(options_.id, e, digests ? state_->digest() : 0);
  }
  // Entries from before stamping carry their time in the state alone.
  if (!rd.committed.empty()) raft_->ObserveTime(state_->log_time_us());
}

void Node::ServeReads() {
  LogIndex applied = applied_index_;
  std::vector<BarrierCallback> ready;
  for (auto it = confirmed_reads_.begin(); it != confirmed_reads_.end();) {
    auto p = pending_reads_.find(*it);
    if (p == pending_reads_.end()) {
      it = confirmed_reads_.erase(it);
      continue;
    }
    if (p->second.index > applied) {
      ++it;
      continue;
    }
    ready.push_back(std::move(p->second.done));
    pending_reads_.erase(p);
    it = confirmed_reads_.erase(it);
  }
  // Called after the walk: a callback may start another read.
  for (BarrierCallback& done : ready)
    done(absl::OkStatus());
}

void Node::MaybeSnapshot() {
  // Not while a Ready's sync is in flight (a callback answered while the
  // last Ready finished may have pumped the next one): releasing segments
  // may sync the one being written, and when snapshots still rewrote the
  // log, one taken then left the unsynced entries out (the simulator's auth
  // workload, seed 8617). One thing at a time on the log.
  if (persisting_) return;
  LogIndex applied = raft_->log().applied();
  bool early = applied > last_snapshot_index_ && Buggify("node.early_snapshot");
  if (!early) {
    if (options_.snapshot_every == 0) return;
    if (applied - last_snapshot_index_ < options_.snapshot_every) return;
    // After a full disk refused one: not before a tenth of the interval more
    // (serializing the whole state at every apply would starve the member).
    if (applied < snapshot_retry_at_) return;
  }
  raft_->Compact([this] { return state_->Serialize(); }, options_.snapshot_keep_entries);
  // The log goes on as it is; the segments the compaction point passed go.
  absl::Status s = store_->SaveOwnSnapshot(raft_->snapshot(), raft_->log().offset());
  // A full disk: the log still holds everything the snapshot would cover,
  // so the node goes on and tries again a little later.
  if (absl::IsResourceExhausted(s)) {
    snapshot_retry_at_ =
        LogIndex(applied.value() + std::max<uint64_t>(1, options_.snapshot_every / 10));
    return;
  }
  if (!s.ok()) {
    Halt(s);
    return;
  }
  last_snapshot_index_ = applied;
}

void Node::ExpireRequests() {
  int64_t now = env_.clock().NowMicros();
  for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
    if (it->second.deadline_us > now) {
      ++it;
      continue;
    }
    ProposeCallback done = std::move(it->second.done);
    it = pending_writes_.erase(it);
    done(absl::DeadlineExceededError("write outcome unknown: not applied before the deadline"));
  }
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    if (it->second.deadline_us > now) {
      ++it;
      continue;
    }
    BarrierCallback done = std::move(it->second.done);
    it = pending_reads_.erase(it);
    done(absl::DeadlineExceededError("read not confirmed before the deadline"));
  }
}

void Node::FailAll() {
  std::map<uint64_t, PendingWrite> writes = std::move(pending_writes_);
  std::map<uint64_t, PendingRead> reads = std::move(pending_reads_);
  pending_writes_.clear();
  pending_reads_.clear();
  confirmed_reads_.clear();
  // A proposed write may still commit after this node is gone.
  for (auto& [id, w] : writes) {
    w.done(absl::DeadlineExceededError("node stopped; write outcome unknown"));
  }
  for (auto& [id, r] : reads)
    r.done(core::WithKind(absl::UnavailableError("node stopped"), core::ErrorKind::kStopped));
}

}  // namespace bw::node
