// Quorum arithmetic for a possibly joint configuration. Pure functions.
#pragma once

#include <functional>
#include <vector>

#include "core/types.h"
#include "raft/types.h"

namespace bw::raft {

enum class VoteResult { kPending, kLost, kWon };

// The largest index that a majority of `voters` has acknowledged, given each
// voter's acknowledged index. An empty voter set places no constraint
// (returns the maximum value) so that it composes in joint configurations.
LogIndex MajorityCommitted(const std::vector<NodeId>& voters,
                           const std::function<LogIndex(NodeId)>& acked);

// Joint: the minimum of both halves.
LogIndex JointCommitted(const ConfState& conf, const std::function<LogIndex(NodeId)>& acked);

// votes(id) returns 1 for granted, 0 for rejected, -1 for no answer yet.
VoteResult MajorityVoteResult(const std::vector<NodeId>& voters,
                              const std::function<int(NodeId)>& votes);
VoteResult JointVoteResult(const ConfState& conf, const std::function<int(NodeId)>& votes);

bool IsVoter(const ConfState& conf, NodeId id);
bool IsLearner(const ConfState& conf, NodeId id);
// Every node that receives replication: voters of both halves and learners.
std::vector<NodeId> AllMembers(const ConfState& conf);

}  // namespace bw::raft
