#include "raft/quorum.h"

#include <algorithm>
#include <limits>

namespace bw::raft {

namespace {
bool Contains(const std::vector<NodeId>& v, NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}
}  // namespace

LogIndex MajorityCommitted(const std::vector<NodeId>& voters,
                           const std::function<LogIndex(NodeId)>& acked) {
  if (voters.empty()) return LogIndex(std::numeric_limits<uint64_t>::max());
  // Small clusters: a fixed buffer avoids allocation on the commit path.
  LogIndex buf[16];
  std::vector<LogIndex> heap;
  LogIndex* idx = buf;
  if (voters.size() > 16) {
    heap.resize(voters.size());
    idx = heap.data();
  }
  for (size_t i = 0; i < voters.size(); ++i)
    idx[i] = acked(voters[i]);
  std::sort(idx, idx + voters.size());
  // With n voters sorted ascending, the entry at n - (n/2 + 1) is held by a majority.
  size_t n = voters.size();
  return idx[n - (n / 2 + 1)];
}

LogIndex JointCommitted(const ConfState& conf, const std::function<LogIndex(NodeId)>& acked) {
  LogIndex a = MajorityCommitted(conf.voters, acked);
  LogIndex b = MajorityCommitted(conf.voters_outgoing, acked);
  LogIndex c = std::min(a, b);
  // Both halves empty: nothing is committed.
  if (c == LogIndex(std::numeric_limits<uint64_t>::max())) return LogIndex(0);
  return c;
}

VoteResult MajorityVoteResult(const std::vector<NodeId>& voters,
                              const std::function<int(NodeId)>& votes) {
  if (voters.empty()) return VoteResult::kWon;
  size_t yes = 0, missing = 0;
  for (NodeId id : voters) {
    int v = votes(id);
    if (v > 0) {
      ++yes;
    } else if (v < 0) {
      ++missing;
    }
  }
  size_t q = voters.size() / 2 + 1;
  if (yes >= q) return VoteResult::kWon;
  if (yes + missing >= q) return VoteResult::kPending;
  return VoteResult::kLost;
}

VoteResult JointVoteResult(const ConfState& conf, const std::function<int(NodeId)>& votes) {
  VoteResult a = MajorityVoteResult(conf.voters, votes);
  VoteResult b = MajorityVoteResult(conf.voters_outgoing, votes);
  if (a == b) return a;
  if (a == VoteResult::kLost || b == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;
}

bool IsVoter(const ConfState& conf, NodeId id) {
  return Contains(conf.voters, id) || Contains(conf.voters_outgoing, id);
}

bool IsLearner(const ConfState& conf, NodeId id) {
  return Contains(conf.learners, id) || Contains(conf.learners_next, id);
}

std::vector<NodeId> AllMembers(const ConfState& conf) {
  std::vector<NodeId> out = conf.voters;
  for (const auto* v : {&conf.voters_outgoing, &conf.learners, &conf.learners_next}) {
    for (NodeId id : *v) {
      if (!Contains(out, id)) out.push_back(id);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace bw::raft
