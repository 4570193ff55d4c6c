// Raft (raft.h), continued: ReadIndex reads, configuration changes as
// they are applied, compaction, and the Ready/Advance hand-off to the
// driver.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "core/error_kind.h"
#include "raft/conf_change.h"
#include "raft/quorum.h"
#include "raft/raft.h"

namespace bw::raft {

// ---------------------------------------------------------------------------
// Reads

absl::Status Raft::ReadIndex(uint64_t context) {
  if (role_ == Role::kLeader) {
    if (pending_reads_.size() + reads_before_commit_.size() >= config_.max_pending_reads) {
      return absl::ResourceExhaustedError("raft: too many pending reads");
    }
    LeaderRead(config_.id, context);
    return absl::OkStatus();
  }
  if (lead_ == kNoNode)
    return core::WithKind(absl::UnavailableError("raft: no leader"), core::ErrorKind::kNoLeader);
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = lead_;
  m.context = context;
  Send(std::move(m));
  return absl::OkStatus();
}

void Raft::LeaderRead(NodeId from, uint64_t context) {
  if (pending_reads_.size() + reads_before_commit_.size() >= config_.max_pending_reads) return;
  if (!CommittedInCurrentTerm()) {
    // A new leader does not know the commit index until an entry of its own
    // term commits; answering earlier could miss a write acknowledged by the
    // previous leader.
    reads_before_commit_.push_back(PendingRead{0, LogIndex(0), from, context});
    return;
  }
  bool single =
      conf_.voters.size() == 1 && conf_.voters[0] == config_.id && conf_.voters_outgoing.empty();
  if (single || config_.lease_reads) {
    ReleaseRead(from, log_.committed(), context);
    return;
  }
  pending_reads_.push_back(PendingRead{next_read_ctx_++, log_.committed(), from, context});
  pending_read_heartbeat_ = true;
}

void Raft::ReleaseRead(NodeId from, LogIndex index, uint64_t context) {
  if (from == config_.id) {
    read_states_.push_back(ReadState{index, context});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = from;
  m.index = index;
  m.context = context;
  Send(std::move(m));
}

void Raft::ReleaseAckedReads() {
  while (!pending_reads_.empty()) {
    uint64_t ctx = pending_reads_.front().ctx;
    VoteResult r = JointVoteResult(conf_, [this, ctx](NodeId id) {
      if (id == config_.id) return 1;
      const Progress* pr = progress(id);
      return pr != nullptr && pr->read_ack >= ctx ? 1 : -1;
    });
    if (r != VoteResult::kWon) return;
    PendingRead read = pending_reads_.front();
    pending_reads_.pop_front();
    ReleaseRead(read.from, read.index, read.client_ctx);
  }
}

// ---------------------------------------------------------------------------
// Configuration and compaction

ConfState Raft::ApplyConfChange(const ConfChange& cc) {
  absl::StatusOr<ConfState> next = ApplyConfChangeTo(conf_, cc);
  if (!next.ok()) return conf_;
  conf_ = std::move(*next);
  if (role_ == Role::kLeader) {
    // A member removed here learns it only by applying this entry, and
    // nothing more is sent to it once its progress goes: it would wait for
    // the commit index forever (etcd's transport answers a removed
    // member's messages with "removed" instead). So it is sent the commit
    // index one last time, as an empty append after what was sent to it
    // (even if its acknowledgements lag: it gets the append after the ones
    // in flight, and it commits only what matches the leader's log).
    const std::vector<NodeId> members = AllMembers(conf_);
    for (const auto& [id, pr] : progress_) {
      if (id == config_.id || pr.state == ProgressState::kSnapshot ||
          std::find(members.begin(), members.end(), id) != members.end()) {
        continue;
      }
      std::optional<Term> prev_term = log_.TermAt(pr.next - 1);
      if (!prev_term.has_value()) continue;
      Message m;
      m.type = MessageType::kAppend;
      m.to = id;
      m.index = pr.next - 1;
      m.log_term = *prev_term;
      m.commit = log_.committed();
      Send(std::move(m));
    }
    SyncProgress();
    if (!IsVoter(conf_, config_.id)) {
      // Removed or demoted: step down and let the others elect a leader.
      BecomeFollower(term_, kNoNode);
      return conf_;
    }
    if (lead_transferee_ != kNoNode && !IsVoter(conf_, lead_transferee_)) AbortTransfer();
    if (MaybeCommit()) pending_broadcast_ = true;
    pending_broadcast_ = true;
    ReleaseAckedReads();
  }
  return conf_;
}

void Raft::Compact(std::string snapshot_data, uint64_t keep_entries) {
  Compact([&snapshot_data] { return std::move(snapshot_data); }, keep_entries);
}

void Raft::Compact(const std::function<std::string()>& serialize, uint64_t keep_entries) {
  LogIndex applied = log_.applied();
  if (applied == LogIndex(0) || (!snapshot_.Empty() && snapshot_.meta.index >= applied)) return;
  std::optional<Term> t = log_.TermAt(applied);
  BW_ASSERT(t.has_value());
  // Nothing is sent between here and the end of this call, so no chunk of
  // the old snapshot is needed meanwhile (a follower that was receiving it
  // starts over with the new one).
  std::string().swap(snapshot_.data);
  snapshot_.meta = SnapshotMeta{applied, *t, conf_};
  snapshot_.data = serialize();
  if (applied.value() > keep_entries) log_.CompactTo(applied - keep_entries);
}

// ---------------------------------------------------------------------------
// Ready

bool Raft::HasReady() const {
  if (ready_outstanding_) return false;
  if (pending_broadcast_ || pending_read_heartbeat_) return true;
  if (!(SoftState{lead_, role_, term_} == prev_soft_state_)) return true;
  if (!(HardState{term_, vote_, log_.committed()} == prev_hard_state_)) return true;
  return pending_snapshot_.has_value() || log_.HasUnstable() || !msgs_.empty() ||
         log_.HasNextCommitted() || !read_states_.empty();
}

Ready Raft::GetReady() {
  BW_ASSERT(!ready_outstanding_);
  if (role_ == Role::kLeader && pending_broadcast_) BcastAppend();
  pending_broadcast_ = false;
  if (role_ == Role::kLeader && pending_read_heartbeat_ && !pending_reads_.empty()) {
    BcastHeartbeat(pending_reads_.back().ctx);
  }
  pending_read_heartbeat_ = false;

  Ready rd;
  SoftState ss{lead_, role_, term_};
  if (!(ss == prev_soft_state_)) {
    rd.soft_state = ss;
    prev_soft_state_ = ss;
  }
  HardState hs{term_, vote_, log_.committed()};
  if (!(hs == prev_hard_state_)) {
    rd.hard_state = hs;
    rd.term_or_vote_changed = hs.term != prev_hard_state_.term || hs.vote != prev_hard_state_.vote;
    prev_hard_state_ = hs;
  }
  if (pending_snapshot_.has_value()) {
    rd.snapshot = std::move(*pending_snapshot_);
    pending_snapshot_.reset();
  }
  log_.Unstable(&rd.entries);
  rd.messages = std::move(msgs_);
  msgs_.clear();
  log_.NextCommitted(config_.max_apply_bytes, &rd.committed);
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  ready_outstanding_ = true;
  return rd;
}

void Raft::Advance(const Ready& rd) {
  BW_ASSERT(ready_outstanding_);
  ready_outstanding_ = false;
  if (!rd.entries.empty()) log_.StableTo(rd.entries.back().index, rd.entries.back().term);
  if (!rd.committed.empty()) {
    LogIndex last = rd.committed.back().index;
    // A snapshot installed meanwhile may already cover these.
    if (last > log_.applied()) log_.AppliedTo(last);
  }
  if (deferred_snapshot_.has_value()) {
    Snapshot snap = std::move(*deferred_snapshot_);
    deferred_snapshot_.reset();
    // Only a follower installs; a node that became candidate or leader
    // meanwhile lets the leader resend it.
    if (role_ == Role::kFollower && lead_ == deferred_snapshot_from_) {
      InstallSnapshot(std::move(snap), deferred_snapshot_from_);
    }
  }
  if (role_ == Role::kLeader && conf_.Joint() && conf_.auto_leave &&
      pending_conf_index_ <= log_.applied()) {
    // Leave the joint configuration as soon as entering it is applied.
    (void)ProposeConfChange(ConfChange{});
  }
}

}  // namespace bw::raft
