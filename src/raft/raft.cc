#include "raft/raft.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/assert.h"
#include "core/error_kind.h"
#include "core/splitmix.h"
#include "raft/codec.h"
#include "raft/conf_change.h"
#include "raft/quorum.h"

namespace bw::raft {

namespace {

// Marks a vote request made for a leadership transfer: it may disturb a
// leader lease, because the current leader asked for it.
constexpr uint64_t kTransferContext = 1;

MessageType VoteResponseType(MessageType t) {
  return t == MessageType::kPreVote ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
}

}  // namespace

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kAppend:
      return "Append";
    case MessageType::kAppendResponse:
      return "AppendResponse";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResponse:
      return "VoteResponse";
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResponse:
      return "PreVoteResponse";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::kSnapshot:
      return "Snapshot";
    case MessageType::kSnapshotResponse:
      return "SnapshotResponse";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kReadIndex:
      return "ReadIndex";
    case MessageType::kReadIndexResponse:
      return "ReadIndexResponse";
    case MessageType::kPropose:
      return "Propose";
  }
  return "?";
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

Restored BootstrapState(const std::vector<NodeId>& voters) {
  ConfChange cc;
  cc.transition = ConfTransition::kAuto;
  for (NodeId id : voters)
    cc.changes.push_back({ConfChangeType::kAddVoter, id});
  Restored r;
  r.entries.push_back(Entry{Term(1), LogIndex(1), EntryType::kConfChange, EncodeConfChange(cc)});
  r.hard_state = HardState{Term(1), kNoNode, LogIndex(1)};
  return r;
}

absl::StatusOr<std::unique_ptr<Raft>> Raft::Create(const Config& config, Restored restored) {
  BW_RETURN_IF_ERROR(config.Validate());
  LogIndex expect = restored.snapshot.meta.index + 1;
  for (const Entry& e : restored.entries) {
    if (e.index != expect) {
      return absl::InvalidArgumentError(absl::StrCat("raft restore: entry index ", e.index.value(),
                                                     " where ", expect.value(), " was expected"));
    }
    expect = expect + 1;
  }
  LogIndex last = expect - 1;
  if (restored.hard_state.commit > last) {
    return absl::InvalidArgumentError(absl::StrCat("raft restore: commit index ",
                                                   restored.hard_state.commit.value(),
                                                   " is past the last entry ", last.value()));
  }
  if (restored.applied > restored.hard_state.commit &&
      restored.applied > restored.snapshot.meta.index) {
    return absl::InvalidArgumentError("raft restore: applied index is past the commit index");
  }
  return std::unique_ptr<Raft>(new Raft(config, std::move(restored)));
}

Raft::Raft(const Config& config, Restored restored)
    : config_(config),
      log_(restored.snapshot.meta.index, restored.snapshot.meta.term),
      rng_state_(config.random_seed ^ (config.id.value() * 0x9E3779B97F4A7C15ULL)) {
  for (Entry& e : restored.entries)
    log_.Append(std::move(e));
  log_.StableTo(log_.last_index(), log_.last_term());
  log_.CommitTo(std::max(restored.hard_state.commit, restored.snapshot.meta.index));
  log_.AppliedTo(std::max(restored.applied, restored.snapshot.meta.index));
  if (config_.read_entries) log_.SetReader(config_.read_entries, config_.log_cache_bytes);
  term_ = restored.hard_state.term;
  vote_ = restored.hard_state.vote;
  conf_ =
      restored.applied > restored.snapshot.meta.index ? restored.conf : restored.snapshot.meta.conf;
  snapshot_ = std::move(restored.snapshot);
  prev_hard_state_ = HardState{term_, vote_, log_.committed()};
  BecomeFollower(term_, kNoNode);
  prev_soft_state_ = SoftState{lead_, role_, term_};
}

void Raft::ObserveTime(int64_t time_us) {
  BW_ASSERT_GE(time_us, 0);
  observed_us_ = std::max(observed_us_, time_us);
}

int64_t Raft::latest_stamp_us() const {
  // Stamps never decrease along a log: the last stamped entry holds the
  // latest. Only the entries in the log count, never those it dropped (a
  // deposed leader's tail ran on a clock the next leader did not continue).
  const int64_t t = log_.LatestStamp();
  return t != 0 ? std::max(t, observed_us_) : observed_us_;
}

int64_t Raft::ClusterTimeMicros() {
  if (!config_.local_clock_us) return 0;
  if (role_ != Role::kLeader) return latest_stamp_us();
  const int64_t local_us = config_.local_clock_us();
  BW_ASSERT_GE(local_us, clock_base_local_us_);
  int64_t t = clock_base_stamp_us_ + (local_us - clock_base_local_us_);
  if (t < observed_us_) {
    // The state replayed a later time (entries from before stamping carry
    // it in the state alone): carry on from it, counting from now.
    clock_base_stamp_us_ = observed_us_;
    clock_base_local_us_ = local_us;
    t = observed_us_;
  }
  return std::max(t, int64_t{1});  // 0 would mean "not stamped"
}

uint64_t Raft::NextRandom() {
  return core::SplitMix64(rng_state_);
}

bool Raft::Promotable() const {
  return IsVoter(conf_, config_.id);
}

const Progress* Raft::progress(NodeId id) const {
  for (const auto& [pid, pr] : progress_) {
    if (pid == id) return &pr;
  }
  return nullptr;
}

Progress* Raft::MutableProgress(NodeId id) {
  for (auto& [pid, pr] : progress_) {
    if (pid == id) return &pr;
  }
  return nullptr;
}

void Raft::SyncProgress() {
  std::vector<NodeId> members = AllMembers(conf_);
  std::vector<std::pair<NodeId, Progress>> next;
  next.reserve(members.size());
  for (NodeId id : members) {
    bool learner = IsLearner(conf_, id) && !IsVoter(conf_, id);
    Progress* old = MutableProgress(id);
    if (old != nullptr) {
      old->is_learner = learner;
      next.emplace_back(id, std::move(*old));
    } else {
      Progress pr(log_.last_index() + 1, config_.max_inflight_messages, config_.max_inflight_bytes,
                  learner);
      pr.recent_active = true;
      if (id == config_.id) pr.match = log_.last_index();
      next.emplace_back(id, std::move(pr));
    }
  }
  progress_ = std::move(next);
}

// ---------------------------------------------------------------------------
// Role changes

void Raft::ResetRandomizedTimeout() {
  randomized_election_ticks_ =
      config_.election_ticks + static_cast<uint32_t>(NextRandom() % config_.election_ticks);
}

void Raft::ResetTerm(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedTimeout();
  AbortTransfer();
  votes_.clear();
  pending_reads_.clear();
  reads_before_commit_.clear();
  pending_read_heartbeat_ = false;
  pending_broadcast_ = false;
  uncommitted_bytes_ = 0;
}

void Raft::BecomeFollower(Term term, NodeId lead) {
  ResetTerm(term);
  lead_ = lead;
  role_ = Role::kFollower;
  progress_.clear();
}

void Raft::BecomePreCandidate() {
  BW_ASSERT(role_ != Role::kLeader);
  // A pre-candidate changes neither term nor vote.
  votes_.clear();
  lead_ = kNoNode;
  role_ = Role::kPreCandidate;
  progress_.clear();
}

void Raft::BecomeCandidate() {
  BW_ASSERT(role_ != Role::kLeader);
  ResetTerm(term_ + 1);
  vote_ = config_.id;
  role_ = Role::kCandidate;
  progress_.clear();
}

void Raft::BecomeLeader() {
  BW_ASSERT(role_ == Role::kCandidate);
  ResetTerm(term_);
  lead_ = config_.id;
  role_ = Role::kLeader;
  if (config_.local_clock_us) {
    // The cluster clock carries on from the latest stamp this leader has.
    clock_base_stamp_us_ = latest_stamp_us();
    clock_base_local_us_ = config_.local_clock_us();
  }
  progress_.clear();
  SyncProgress();
  for (auto& [id, pr] : progress_) {
    pr.next = log_.last_index() + 1;
    pr.match = id == config_.id ? log_.last_index() : LogIndex(0);
    pr.BecomeProbe();
    pr.next = log_.last_index() + 1;
    pr.recent_active = true;
    pr.read_ack = 0;
  }
  // An empty entry of the new term: committing it commits everything before
  // it, and until it is applied no configuration change may be proposed (the
  // fix for the 2015 single-server membership bug).
  bool skip_noop = false;
#ifdef BW_PLANTED_BUGS
  // Implementations that commit earlier-term entries by counting usually
  // have no no-op either (it would close most of the window); the planted
  // bug models them whole.
  skip_noop = config_.bugs.commit_previous_term_by_counting;
#endif
  if (!skip_noop) {
    std::vector<Entry> noop(1);
    noop[0].type = EntryType::kNormal;
    absl::Status s = AppendAsLeader(noop);
    BW_ASSERT(s.ok());
  } else {
    // Without a no-op to send, empty appends at once, as the paper's leader
    // sends on election; they bring the followers' logs up to the leader's.
    pending_broadcast_ = true;
  }
  pending_conf_index_ = log_.last_index();
}

bool Raft::HasUnappliedConfChange() const {
  if (log_.committed() <= log_.applied()) return false;
  for (LogIndex i = log_.applied() + 1; i <= log_.committed(); ++i) {
    if (i <= log_.offset()) continue;
    if (log_.At(i).type == EntryType::kConfChange) return true;
  }
  return false;
}

void Raft::Campaign() {
  if (role_ == Role::kLeader) return;
  StartCampaign(config_.pre_vote ? CampaignKind::kPreElection : CampaignKind::kElection);
}

void Raft::StartCampaign(CampaignKind kind) {
  if (!Promotable()) return;
  // A committed configuration change that is not applied yet may change who
  // votes; campaigning under the old configuration could elect two leaders.
  if (HasUnappliedConfChange()) return;
  Term vote_term;
  MessageType type;
  if (kind == CampaignKind::kPreElection) {
    BecomePreCandidate();
    vote_term = term_ + 1;
    type = MessageType::kPreVote;
  } else {
    BecomeCandidate();
    vote_term = term_;
    type = MessageType::kVote;
  }
  if (Poll(config_.id, true) == VoteResult::kWon) {
    if (kind == CampaignKind::kPreElection) {
      StartCampaign(CampaignKind::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  std::vector<NodeId> voters = conf_.voters;
  for (NodeId id : conf_.voters_outgoing) {
    if (std::find(voters.begin(), voters.end(), id) == voters.end()) voters.push_back(id);
  }
  for (NodeId id : voters) {
    if (id == config_.id) continue;
    Message m;
    m.type = type;
    m.to = id;
    m.term = vote_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.context = kind == CampaignKind::kTransfer ? kTransferContext : 0;
    Send(std::move(m));
  }
}

VoteResult Raft::Poll(NodeId from, bool granted) {
  bool seen = false;
  for (auto& [id, g] : votes_) {
    if (id == from) seen = true;
  }
  if (!seen) votes_.emplace_back(from, granted);
  return JointVoteResult(conf_, [this](NodeId id) {
    for (const auto& [vid, g] : votes_) {
      if (vid == id) return g ? 1 : 0;
    }
    return -1;
  });
}

// ---------------------------------------------------------------------------
// Time

void Raft::Tick() {
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_ticks_) {
    election_elapsed_ = 0;
    StartCampaign(config_.pre_vote ? CampaignKind::kPreElection : CampaignKind::kElection);
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (lead_transferee_ != kNoNode && ++transfer_elapsed_ >= config_.election_ticks) {
    AbortTransfer();
  }
  if (election_elapsed_ >= config_.election_ticks) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      VoteResult active = JointVoteResult(conf_, [this](NodeId id) {
        if (id == config_.id) return 1;
        const Progress* pr = progress(id);
        return pr != nullptr && pr->recent_active ? 1 : 0;
      });
      for (auto& [id, pr] : progress_) {
        if (id != config_.id) pr.recent_active = false;
      }
      if (active != VoteResult::kWon) {
        BecomeFollower(term_, kNoNode);
        return;
      }
    }
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    BcastHeartbeat(pending_reads_.empty() ? 0 : pending_reads_.back().ctx);
    // Resend a snapshot chunk that has gone unanswered for a heartbeat.
    for (auto& [id, pr] : progress_) {
      if (id == config_.id || pr.state != ProgressState::kSnapshot) continue;
      if (!pr.snapshot_acked) SendSnapshotChunk(id, pr);
      pr.snapshot_acked = false;
    }
  }
}

// ---------------------------------------------------------------------------
// Messages

void Raft::Send(Message m) {
  m.from = config_.id;
  // Requests routed to the leader carry no term: they are valid whatever the
  // term, and the leader re-checks its own role.
  if (m.type != MessageType::kPropose && m.type != MessageType::kReadIndex &&
      m.type != MessageType::kReadIndexResponse && m.type != MessageType::kPreVote &&
      m.type != MessageType::kPreVoteResponse && m.type != MessageType::kVote &&
      m.type != MessageType::kVoteResponse) {
    m.term = term_;
  }
  msgs_.push_back(std::move(m));
}

absl::Status Raft::Step(Message m) {
  if (m.to != config_.id) return absl::OkStatus();
  if (m.from == kNoNode || m.from == config_.id) {
    return absl::InvalidArgumentError("raft: message with an invalid sender");
  }
  if (m.type == MessageType::kAppend) {
    // A leader's entries follow the entry the append names, one index after
    // another, with terms that never fall. Anything else is malformed, and
    // the log asserts on it (entries that skip or repeat an index).
    Term prev_term = m.log_term;
    for (size_t i = 0; i < m.entries.size(); ++i) {
      const Entry& e = m.entries[i];
      if (e.index != m.index + 1 + i || e.term < prev_term) {
        return absl::InvalidArgumentError(
            absl::StrCat("raft: append after ", m.index.value(), " holds entry ", e.index.value(),
                         " of term ", e.term.value(), " at position ", i));
      }
      prev_term = e.term;
    }
  }
  if (m.term == Term(0)) {
    // Only proposals and read-index traffic travel without a term; anything
    // else at term 0 would skip every term check.
    if (m.type != MessageType::kPropose && m.type != MessageType::kReadIndex &&
        m.type != MessageType::kReadIndexResponse) {
      return absl::InvalidArgumentError(
          absl::StrCat("raft: ", MessageTypeName(m.type), " message without a term"));
    }
  } else if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      bool forced = m.context == kTransferContext;
      bool in_lease =
          config_.check_quorum && lead_ != kNoNode && election_elapsed_ < config_.election_ticks;
      // A node that heard from a leader recently ignores elections: the
      // candidate was cut off, not the leader.
      if (!forced && in_lease) return absl::OkStatus();
    }
    if (m.type == MessageType::kPreVote) {
      // A pre-vote never changes our term.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // Granted for a term we will campaign in; nothing to change yet.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      BecomeFollower(m.term, m.from);
    } else if (m.type == MessageType::kVote) {
      // Follow the higher term, but keep our election timer running: only
      // granting the vote (below) restarts it. Otherwise a candidate with a
      // stale log, campaigning again and again, would keep everyone else
      // from ever timing out and electing a leader that can win.
      uint32_t elapsed = election_elapsed_;
      BecomeFollower(m.term, kNoNode);
      election_elapsed_ = elapsed;
    } else {
      BecomeFollower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // A stale leader: tell it our term so it steps down. Without this, a
      // leader cut off and then healed could stay stuck (PreVote keeps our
      // term from reaching it otherwise).
      Message resp;
      resp.type = MessageType::kAppendResponse;
      resp.to = m.from;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote) {
      Message resp;
      resp.type = MessageType::kPreVoteResponse;
      resp.to = m.from;
      resp.term = term_;
      resp.reject = true;
      Send(std::move(resp));
    }
    return absl::OkStatus();
  }

  if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
    HandleVoteRequest(m);
    return absl::OkStatus();
  }
  switch (role_) {
    case Role::kLeader:
      StepLeader(m);
      break;
    case Role::kCandidate:
    case Role::kPreCandidate:
      StepCandidate(m);
      break;
    case Role::kFollower:
      StepFollower(m);
      break;
  }
  return absl::OkStatus();
}

void Raft::HandleVoteRequest(const Message& m) {
  bool can_vote = vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) ||
                  (m.type == MessageType::kPreVote && m.term > term_);
  bool up_to_date = log_.IsUpToDate(m.index, m.log_term);
#ifdef BW_PLANTED_BUGS
  if (config_.bugs.skip_vote_log_check) up_to_date = true;
#endif
  Message resp;
  resp.type = VoteResponseType(m.type);
  resp.to = m.from;
  if (can_vote && up_to_date) {
    // The response carries the candidate's term so it counts there.
    resp.term = m.term;
    resp.reject = false;
    if (m.type == MessageType::kVote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
  }
  Send(std::move(resp));
}

void Raft::StepFollower(Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleSnapshotChunk(m);
      break;
    case MessageType::kTimeoutNow:
      // The leader hands over: campaign at once, past any lease.
      StartCampaign(CampaignKind::kTransfer);
      break;
    case MessageType::kReadIndexResponse:
      read_states_.push_back(ReadState{m.index, m.context});
      break;
    default:
      break;
  }
}

void Raft::StepCandidate(Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      BecomeFollower(m.term, m.from);
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      BecomeFollower(m.term, m.from);
      HandleSnapshotChunk(m);
      break;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse: {
      bool mine = (role_ == Role::kCandidate && m.type == MessageType::kVoteResponse) ||
                  (role_ == Role::kPreCandidate && m.type == MessageType::kPreVoteResponse);
      if (!mine) break;
      switch (Poll(m.from, !m.reject)) {
        case VoteResult::kWon:
          if (role_ == Role::kPreCandidate) {
            StartCampaign(CampaignKind::kElection);
          } else {
            BecomeLeader();
          }
          break;
        case VoteResult::kLost:
          BecomeFollower(term_, kNoNode);
          break;
        case VoteResult::kPending:
          break;
      }
      break;
    }
    default:
      break;
  }
}

void Raft::HandleAppend(Message& m) {
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = m.from;
  if (m.index < log_.committed()) {
    resp.index = log_.committed();
    Send(std::move(resp));
    return;
  }
  if (log_.MatchTerm(m.index, m.log_term)) {
    LogIndex last_new = log_.MaybeAppend(m.index, m.entries);
    log_.CommitTo(std::min(m.commit, last_new));
    resp.index = last_new;
    Send(std::move(resp));
    return;
  }
  // Reject with a hint: the last index at or before the leader's probe whose
  // term is no greater than the leader's term there. The leader can skip a
  // whole term of mismatching entries per round trip.
  LogIndex hint = log_.FindConflictByTerm(std::min(m.index, log_.last_index()), m.log_term);
  resp.reject = true;
  resp.index = m.index;
  resp.reject_hint = hint;
  resp.log_term = log_.TermAt(hint).value_or(Term(0));
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  log_.CommitTo(std::min(m.commit, log_.last_index()));
  Message resp;
  resp.type = MessageType::kHeartbeatResponse;
  resp.to = m.from;
  resp.context = m.context;
  Send(std::move(resp));
}

void Raft::HandleSnapshotChunk(Message& m) {
  const SnapshotMeta& meta = m.snapshot_meta;
  if (meta.index <= log_.committed()) {
    // Already have everything it covers.
    incoming_snapshot_.reset();
    Message resp;
    resp.type = MessageType::kAppendResponse;
    resp.to = m.from;
    resp.index = log_.committed();
    Send(std::move(resp));
    return;
  }
  if (deferred_snapshot_.has_value() && deferred_snapshot_->meta == meta) {
    return;  // already whole, waiting for Advance
  }
  if (m.snapshot_offset == 0) {
    incoming_snapshot_ = Snapshot{meta, std::string()};
    incoming_snapshot_->data.reserve(m.snapshot_size);
  } else if (!incoming_snapshot_.has_value() || !(incoming_snapshot_->meta == meta) ||
             incoming_snapshot_->data.size() != m.snapshot_offset) {
    // Out of step (a lost chunk, or we restarted): say where to resume.
    Message resp;
    resp.type = MessageType::kSnapshotResponse;
    resp.to = m.from;
    resp.index = meta.index;
    resp.reject = true;
    resp.snapshot_offset = incoming_snapshot_.has_value() && incoming_snapshot_->meta == meta
                               ? incoming_snapshot_->data.size()
                               : 0;
    if (resp.snapshot_offset == 0) incoming_snapshot_.reset();
    Send(std::move(resp));
    return;
  }
  incoming_snapshot_->data.append(m.data);
  if (incoming_snapshot_->data.size() < m.snapshot_size) {
    Message resp;
    resp.type = MessageType::kSnapshotResponse;
    resp.to = m.from;
    resp.index = meta.index;
    resp.snapshot_offset = incoming_snapshot_->data.size();
    Send(std::move(resp));
    return;
  }
  // Complete.
  Snapshot snap = std::move(*incoming_snapshot_);
  incoming_snapshot_.reset();
  if (ready_outstanding_) {
    // The outstanding Ready may hand the driver committed entries (among
    // them configuration changes) that it will apply after this point;
    // installing now would let them be applied on top of the snapshot's
    // newer configuration. Install at Advance instead.
    deferred_snapshot_ = std::move(snap);
    deferred_snapshot_from_ = m.from;
    return;
  }
  InstallSnapshot(std::move(snap), m.from);
}

void Raft::InstallSnapshot(Snapshot snap, NodeId from) {
  const SnapshotMeta meta = snap.meta;
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = from;
  if (meta.index <= log_.committed()) {
    resp.index = log_.committed();
  } else if (log_.MatchTerm(meta.index, meta.term)) {
    // Our log already holds the snapshot's last entry: just commit up to
    // it. Entries after it are not known to match the leader's, so the
    // answer is the commit index, not our last index.
    log_.CommitTo(meta.index);
    resp.index = log_.committed();
  } else {
    log_.Restore(meta);
    conf_ = meta.conf;
    snapshot_ = snap;
    pending_snapshot_ = std::move(snap);
    resp.index = meta.index;
  }
  Send(std::move(resp));
}

void Raft::StepLeader(Message& m) {
  Progress* pr = MutableProgress(m.from);
  switch (m.type) {
    case MessageType::kAppendResponse:
      if (pr != nullptr) {
        pr->recent_active = true;
        HandleAppendResponse(m);
      }
      break;
    case MessageType::kHeartbeatResponse:
      if (pr == nullptr) break;
      pr->recent_active = true;
      pr->probe_sent = false;
      // An append lost in flight leaves the window full or the follower
      // behind with nothing more to send: free a slot and send an append
      // (empty if need be) whose rejection restarts the probe.
      if (pr->state == ProgressState::kReplicate && pr->inflights.Full()) {
        pr->inflights.FreeFirst();
      }
      if (pr->match < log_.last_index()) SendAppend(m.from, true);
      if (m.context > pr->read_ack) {
        pr->read_ack = m.context;
        ReleaseAckedReads();
      }
      break;
    case MessageType::kSnapshotResponse:
      if (pr == nullptr) break;
      pr->recent_active = true;
      if (pr->state != ProgressState::kSnapshot || m.index != pr->pending_snapshot) break;
      // Only an answer that moves the transfer sends the next chunk: a
      // duplicated or stale answer would otherwise start a second stream of
      // chunks beside the first, and duplication would multiply them (a
      // rejection names the offset the follower holds; one equal to ours
      // says nothing new).
      if (m.reject ? m.snapshot_offset == pr->snapshot_offset
                   : m.snapshot_offset <= pr->snapshot_offset) {
        break;
      }
      pr->snapshot_offset = m.snapshot_offset;
      pr->snapshot_acked = true;
      SendSnapshotChunk(m.from, *pr);
      break;
    case MessageType::kReadIndex:
      LeaderRead(m.from, m.context);
      break;
    case MessageType::kPropose: {
      // Forwarded proposals: placed if we can, dropped otherwise (the
      // follower's client times out and retries), and never twice (a copy
      // the network delivered again is dropped).
      std::vector<Entry> normal;
      std::vector<ForwardedWindow::Key> keys;
      for (Entry& e : m.entries) {
        const ForwardedWindow::Key key = ForwardedWindow::KeyOf(m.from, e);
        if (forwarded_.IsCopy(key, log_)) continue;
        if (e.type == EntryType::kConfChange) {
          if (LeaderConfChange(std::move(e)).ok()) {
            forwarded_.Remember(key, log_.last_index(), term_);
          }
        } else {
          normal.push_back(std::move(e));
          keys.push_back(key);
        }
      }
      if (normal.empty() || !AppendAsLeader(normal).ok()) break;
      LogIndex at = log_.last_index() + 1 - keys.size();
      for (const ForwardedWindow::Key& key : keys) {
        forwarded_.Remember(key, at, term_);
        ++at;
      }
      break;
    }
    default:
      break;
  }
}

void Raft::HandleAppendResponse(const Message& m) {
  Progress* pr = MutableProgress(m.from);
  // A response can only be about entries this leader sent, all within its
  // log. One past the log is malformed: trusting it would set the
  // follower's next index beyond the log (SendAppend then has no term for
  // the previous entry, and asserts) or its match index there.
  if (m.index > log_.last_index()) return;
  if (m.reject) {
    LogIndex hint = m.reject_hint;
    if (m.log_term > Term(0)) hint = log_.FindConflictByTerm(m.reject_hint, m.log_term);
    if (pr->MaybeDecrTo(m.index, hint)) SendAppend(m.from, true);
    return;
  }
  bool was_paused = pr->Paused();
  if (!pr->MaybeUpdate(m.index)) {
    if (was_paused && !pr->Paused()) SendAppend(m.from, false);
    return;
  }
  switch (pr->state) {
    case ProgressState::kProbe:
      pr->BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      if (pr->match >= pr->pending_snapshot) {
        pr->BecomeProbe();
        pr->BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr->inflights.FreeLE(m.index);
      break;
  }
  if (MaybeCommit()) {
    pending_broadcast_ = true;
  }
  // Fill the pipeline.
  while (SendAppend(m.from, false)) {
  }
  if (m.from == lead_transferee_ && pr->match == log_.last_index()) {
    Message t;
    t.type = MessageType::kTimeoutNow;
    t.to = m.from;
    Send(std::move(t));
  }
}

}  // namespace bw::raft
