// Raft (raft.h), continued: replication — appends, snapshots sent in
// chunks, commitment, the leader's own appends and configuration changes —
// and the proposals that feed it. raft.cc has the roles, elections, time
// and the message dispatch; raft_reads.cc the reads, applied configuration
// changes, compaction and Ready.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "core/error_kind.h"
#include "raft/codec.h"
#include "raft/conf_change.h"
#include "raft/quorum.h"
#include "raft/raft.h"

namespace bw::raft {

// ---------------------------------------------------------------------------
// Replication

bool Raft::SendAppend(NodeId to, bool send_if_empty) {
  Progress* pr = MutableProgress(to);
  if (pr == nullptr || to == config_.id || pr->Paused()) return false;
  LogIndex prev = pr->next - 1;
  std::optional<Term> prev_term = log_.TermAt(prev);
  if (!prev_term.has_value()) {
    // The follower needs entries we compacted: send the snapshot instead.
    BW_ASSERT(!snapshot_.Empty());
    pr->BecomeSnapshot(snapshot_.meta.index);
    SendSnapshotChunk(to, *pr);
    return false;
  }
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  if (pr->state == ProgressState::kReplicate || pr->state == ProgressState::kProbe) {
    absl::Status read =
        log_.Slice(pr->next, log_.last_index(), config_.max_append_bytes, &m.entries);
    if (!read.ok()) {
      // Entries that left memory did not read back (the reader reports
      // why): nothing is sent now; the next heartbeat's answer tries again.
      ++log_read_failures_;
      return false;
    }
    if (!m.entries.empty() && m.entries.front().index <= log_.cached_after()) {
      log_entries_read_ +=
          std::min(log_.cached_after(), m.entries.back().index) - m.entries.front().index + 1;
    }
  }
  if (m.entries.empty() && !send_if_empty) return false;
  m.commit = log_.committed();
  uint64_t bytes = 0;
  for (const Entry& e : m.entries)
    bytes += e.Bytes();
  if (!m.entries.empty()) pr->SentEntries(m.entries.back().index, bytes);
  if (pr->state == ProgressState::kProbe) pr->probe_sent = true;
  Send(std::move(m));
  return true;
}

void Raft::SendSnapshotChunk(NodeId to, Progress& pr) {
  if (snapshot_.meta.index != pr.pending_snapshot) {
    // A newer snapshot replaced the one in transfer: start over with it.
    pr.BecomeSnapshot(snapshot_.meta.index);
  }
  if (pr.snapshot_offset > snapshot_.data.size()) pr.snapshot_offset = 0;
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  m.snapshot_meta = snapshot_.meta;
  m.snapshot_offset = pr.snapshot_offset;
  m.snapshot_size = snapshot_.data.size();
  uint64_t n =
      std::min<uint64_t>(config_.snapshot_chunk_bytes, snapshot_.data.size() - pr.snapshot_offset);
  m.data = snapshot_.data.substr(pr.snapshot_offset, n);
  Send(std::move(m));
}

void Raft::BcastAppend() {
  for (const auto& [id, pr] : progress_) {
    if (id != config_.id) SendAppend(id, true);
  }
}

void Raft::BcastHeartbeat(uint64_t context) {
  for (const auto& [id, pr] : progress_) {
    if (id == config_.id) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = id;
    // Only what the follower is known to hold may be committed there.
    m.commit = std::min(pr.match, log_.committed());
    m.context = context;
    Send(std::move(m));
  }
}

bool Raft::CommittedInCurrentTerm() const {
  return log_.TermAt(log_.committed()) == std::optional<Term>(term_);
}

bool Raft::MaybeCommit() {
  LogIndex mci = JointCommitted(conf_, [this](NodeId id) {
    const Progress* pr = progress(id);
    return pr == nullptr ? LogIndex(0) : pr->match;
  });
  if (mci <= log_.committed()) return false;
  bool current_term = log_.TermAt(mci) == std::optional<Term>(term_);
#ifdef BW_PLANTED_BUGS
  if (config_.bugs.commit_previous_term_by_counting) current_term = true;
#endif
  // Only entries of the leader's own term are committed by counting
  // replicas; earlier ones commit with them (dissertation, Figure 3.7).
  if (!current_term) return false;
  LogIndex old = log_.committed();
  log_.CommitTo(mci);
  OnCommitAdvanced(old);
  return true;
}

void Raft::OnCommitAdvanced(LogIndex old_commit) {
  for (LogIndex i = std::max(old_commit, log_.offset()) + 1; i <= log_.committed(); ++i) {
    const Entry& e = log_.At(i);
    // The same rule as AppendAsLeader's: empty entries (no-ops) count 0.
    uint64_t bytes = e.data.empty() ? 0 : e.Bytes();
    if (e.term == term_) uncommitted_bytes_ -= std::min<uint64_t>(uncommitted_bytes_, bytes);
  }
  if (!reads_before_commit_.empty() && CommittedInCurrentTerm()) {
    std::vector<PendingRead> waiting = std::move(reads_before_commit_);
    reads_before_commit_.clear();
    for (const PendingRead& r : waiting)
      LeaderRead(r.from, r.client_ctx);
  }
}

absl::Status Raft::AppendAsLeader(std::vector<Entry>& entries) {
  if (lead_transferee_ != kNoNode) {
    return absl::UnavailableError("raft: leadership transfer in progress");
  }
  uint64_t bytes = 0;
  for (const Entry& e : entries)
    bytes += e.data.empty() ? 0 : e.Bytes();
  if (uncommitted_bytes_ > 0 && bytes > 0 &&
      uncommitted_bytes_ + bytes > config_.max_uncommitted_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("raft: too many uncommitted bytes (",
                                                     uncommitted_bytes_, " + ", bytes, " > ",
                                                     config_.max_uncommitted_bytes, ")"));
  }
  uncommitted_bytes_ += bytes;
  const int64_t now_us = ClusterTimeMicros();  // 0 without a clock: unstamped
  for (Entry& e : entries) {
    e.term = term_;
    e.index = log_.last_index() + 1;
    e.time_us = now_us;
    log_.Append(std::move(e));
  }
  Progress* self = MutableProgress(config_.id);
  if (self != nullptr) self->MaybeUpdate(log_.last_index());
  MaybeCommit();
  pending_broadcast_ = true;
  return absl::OkStatus();
}

absl::Status Raft::LeaderConfChange(Entry e) {
  if (pending_conf_index_ > log_.applied()) {
    return core::WithKind(
        absl::FailedPreconditionError(
            "raft: a configuration change is pending; propose after it is applied"),
        core::ErrorKind::kConfChangePending);
  }
  absl::StatusOr<ConfChange> cc = DecodeConfChange(e.data);
  if (!cc.ok()) return cc.status();
  // conf_ is the applied configuration, and nothing is pending, so it is the
  // latest: the change can be validated exactly.
  absl::StatusOr<ConfState> next = ApplyConfChangeTo(conf_, *cc);
  if (!next.ok()) return next.status();
  std::vector<Entry> one(1);
  one[0].type = EntryType::kConfChange;
  one[0].data = std::move(e.data);
  BW_RETURN_IF_ERROR(AppendAsLeader(one));
  pending_conf_index_ = log_.last_index();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Proposals

absl::Status Raft::Propose(std::string data) {
  std::vector<std::string> one;
  one.push_back(std::move(data));
  return ProposeBatch(std::move(one));
}

absl::Status Raft::ProposeBatch(std::vector<std::string> batch) {
  std::vector<Entry> entries(batch.size());
  for (size_t i = 0; i < batch.size(); ++i)
    entries[i].data = std::move(batch[i]);
  if (role_ == Role::kLeader) return AppendAsLeader(entries);
  return ForwardToLeader(std::move(entries));
}

absl::Status Raft::ForwardToLeader(std::vector<Entry> entries) {
  if (lead_ == kNoNode)
    return core::WithKind(absl::UnavailableError("raft: no leader"), core::ErrorKind::kNoLeader);
  if (!config_.forward_proposals) {
    return absl::FailedPreconditionError(
        absl::StrCat("raft: not the leader; the leader is ", lead_.value()));
  }
  Message m;
  m.type = MessageType::kPropose;
  m.to = lead_;
  m.entries = std::move(entries);
  Send(std::move(m));
  return absl::OkStatus();
}

absl::Status Raft::ProposeConfChange(const ConfChange& cc) {
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = EncodeConfChange(cc);
  if (role_ == Role::kLeader) return LeaderConfChange(std::move(e));
  std::vector<Entry> one;
  one.push_back(std::move(e));
  return ForwardToLeader(std::move(one));
}

absl::Status Raft::TransferLeadership(NodeId target) {
  if (role_ != Role::kLeader) {
    return absl::FailedPreconditionError("raft: only the leader can transfer leadership");
  }
  if (target == config_.id) return absl::OkStatus();
  if (!IsVoter(conf_, target)) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft: transfer target ", target.value(), " is not a voter"));
  }
  if (lead_transferee_ == target) return absl::OkStatus();
  lead_transferee_ = target;
  transfer_elapsed_ = 0;
  Progress* pr = MutableProgress(target);
  if (pr->match == log_.last_index()) {
    Message t;
    t.type = MessageType::kTimeoutNow;
    t.to = target;
    Send(std::move(t));
  } else {
    // Catch it up first; the TimeoutNow follows its acknowledgement.
    SendAppend(target, true);
  }
  return absl::OkStatus();
}

}  // namespace bw::raft
