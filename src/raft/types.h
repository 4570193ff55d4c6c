// The Raft core's value types: entries, hard state, configurations,
// snapshots and messages. Plain data; no behaviour beyond small helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace bw::raft {

enum class EntryType : uint8_t {
  kNormal = 0,      // application command (may be empty: the leader's no-op)
  kConfChange = 1,  // data holds an encoded ConfChange
};

struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  std::string data;
  // Cluster time when the leader appended the entry, in microseconds
  // (Raft::ClusterTimeMicros): the time the state machine decides lease and
  // record expiry by, so that no member's lag or clock can move it. 0: not
  // stamped (a leader without a clock, or an entry from before stamping).
  // Invariant: >= 0; along a log, stamped entries' times never decrease.
  int64_t time_us = 0;

  // Bytes this entry counts for in size limits.
  size_t Bytes() const { return data.size() + 24; }
  bool operator==(const Entry&) const = default;
};

// What must be durable before any message that depends on it is sent.
struct HardState {
  Term term;
  NodeId vote = kNoNode;
  LogIndex commit;
  bool operator==(const HardState&) const = default;
};

// A cluster configuration. Outside a joint configuration `voters_outgoing`
// is empty. Inside one, decisions need a majority of `voters` AND a majority
// of `voters_outgoing`. Invariant: learners and learners_next are disjoint
// from voters; learners are disjoint from voters_outgoing; learners_next are
// nodes that are outgoing voters and become learners when the joint config
// is left.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> voters_outgoing;
  std::vector<NodeId> learners;
  std::vector<NodeId> learners_next;
  bool auto_leave = false;
  bool operator==(const ConfState&) const = default;
  bool Joint() const { return !voters_outgoing.empty(); }
};

enum class ConfChangeType : uint8_t { kAddVoter = 0, kAddLearner = 1, kRemoveNode = 2 };

struct ConfChangeSingle {
  ConfChangeType type;
  NodeId node;
  bool operator==(const ConfChangeSingle&) const = default;
};

enum class ConfTransition : uint8_t {
  // One voter changed at most: applied directly. More: joint, left automatically.
  kAuto = 0,
  // Enter a joint configuration and leave it automatically.
  kJointImplicit = 1,
  // Enter a joint configuration and stay until an empty change leaves it.
  kJointExplicit = 2,
};

// An empty `changes` list means "leave the joint configuration".
struct ConfChange {
  ConfTransition transition = ConfTransition::kAuto;
  std::vector<ConfChangeSingle> changes;
  bool operator==(const ConfChange&) const = default;
  bool LeaveJoint() const { return changes.empty(); }
};

struct SnapshotMeta {
  LogIndex index;
  Term term;
  ConfState conf;
  bool operator==(const SnapshotMeta&) const = default;
};

struct Snapshot {
  SnapshotMeta meta;
  std::string data;
  bool Empty() const { return meta.index == LogIndex(0); }
};

enum class MessageType : uint8_t {
  kAppend = 0,
  kAppendResponse = 1,
  kVote = 2,
  kVoteResponse = 3,
  kPreVote = 4,
  kPreVoteResponse = 5,
  kHeartbeat = 6,
  kHeartbeatResponse = 7,
  kSnapshot = 8,          // one chunk of InstallSnapshot
  kSnapshotResponse = 9,  // ack of a chunk (or a request to restart)
  kTimeoutNow = 10,       // leadership transfer: campaign now
  kReadIndex = 11,        // follower asks the leader for a read index
  kReadIndexResponse = 12,
  kPropose = 13,  // follower forwards proposals to the leader
};
inline constexpr int kMessageTypeCount = 14;

const char* MessageTypeName(MessageType t);

struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term;
  // Append: index/term of the entry preceding `entries`. Vote: candidate's
  // last index/term. AppendResponse: the last index matched (accept) or the
  // rejected index (reject).
  Term log_term;
  LogIndex index;
  std::vector<Entry> entries;
  LogIndex commit;
  bool reject = false;
  // Fast backtracking: on a rejected append, the follower's hint of where the
  // logs may agree, with the term it holds there.
  LogIndex reject_hint;
  // Snapshot chunks: the snapshot's metadata on every chunk, the byte offset
  // of `data` within it, the whole size, and the chunk's bytes.
  SnapshotMeta snapshot_meta;
  uint64_t snapshot_offset = 0;
  uint64_t snapshot_size = 0;
  std::string data;
  // ReadIndex / heartbeat context; TimeoutNow and Vote use it as a
  // "forced" (leadership transfer) marker.
  uint64_t context = 0;
};

// A read that may be served once the local applied index reaches `index`.
struct ReadState {
  LogIndex index;
  uint64_t context = 0;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role r);

// Volatile state the driver may want to observe (and that checkers must see
// as of the moment the Ready was taken: the term is the one this role held).
struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  Term term;
  bool operator==(const SoftState&) const = default;
};

// Everything the driver must do, in this order:
//   1. persist `hard_state`, `snapshot` and `entries` (fsync);
//   2. send `messages`;
//   3. apply `snapshot` (if any) and then `committed` entries, serve `read_states`;
//   4. call Raft::Advance(ready).
struct Ready {
  std::optional<SoftState> soft_state;
  std::optional<HardState> hard_state;
  Snapshot snapshot;
  std::vector<Entry> entries;
  std::vector<Message> messages;
  std::vector<Entry> committed;
  std::vector<ReadState> read_states;
  // `hard_state` changes the term or the vote (not only the commit index).
  bool term_or_vote_changed = false;

  // Whether step 1 needs an fsync before step 2. A commit index alone does
  // not (etcd's MustSync does the same): it is written with the Ready and
  // made durable by the next sync, and a crash that loses it only makes the
  // node learn it again from the leader (the entries it covers are durable
  // on a majority). Syncing it cost a leader a second fsync per commit, on
  // the path of every answer.
  bool MustSync() const { return term_or_vote_changed || !entries.empty() || !snapshot.Empty(); }
};

}  // namespace bw::raft
