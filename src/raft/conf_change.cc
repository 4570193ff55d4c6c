#include "raft/conf_change.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace bw::raft {

namespace {

bool Has(const std::vector<NodeId>& v, NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}
void Erase(std::vector<NodeId>& v, NodeId id) {
  v.erase(std::remove(v.begin(), v.end(), id), v.end());
}
void Add(std::vector<NodeId>& v, NodeId id) {
  if (!Has(v, id)) v.push_back(id);
}

}  // namespace

absl::StatusOr<ConfState> ApplyConfChangeTo(const ConfState& cur, const ConfChange& cc) {
  if (cc.LeaveJoint()) {
    if (!cur.Joint()) {
      return absl::FailedPreconditionError("conf change: not in a joint configuration");
    }
    ConfState out;
    out.voters = cur.voters;
    out.learners = cur.learners;
    for (NodeId id : cur.learners_next)
      Add(out.learners, id);
    std::sort(out.learners.begin(), out.learners.end());
    return out;
  }
  if (cur.Joint()) {
    return absl::FailedPreconditionError(
        "conf change: already in a joint configuration; leave it first");
  }
  std::vector<NodeId> voters = cur.voters;
  std::vector<NodeId> learners = cur.learners;
  for (const ConfChangeSingle& c : cc.changes) {
    if (c.node == kNoNode) return absl::InvalidArgumentError("conf change: node id 0");
    switch (c.type) {
      case ConfChangeType::kAddVoter:
        Erase(learners, c.node);
        Add(voters, c.node);
        break;
      case ConfChangeType::kAddLearner:
        Erase(voters, c.node);
        Add(learners, c.node);
        break;
      case ConfChangeType::kRemoveNode:
        Erase(voters, c.node);
        Erase(learners, c.node);
        break;
    }
  }
  if (voters.empty()) return absl::InvalidArgumentError("conf change: removes every voter");
  std::sort(voters.begin(), voters.end());
  std::sort(learners.begin(), learners.end());

  size_t changed = 0;
  for (NodeId id : voters)
    changed += !Has(cur.voters, id);
  for (NodeId id : cur.voters)
    changed += !Has(voters, id);

  ConfState out;
  out.voters = voters;
  // The bootstrap entry of a new cluster adds every voter to an empty
  // configuration: there is no old majority to overlap with.
  bool bootstrap = cur.voters.empty() && cur.learners.empty();
  if (bootstrap || (cc.transition == ConfTransition::kAuto && changed <= 1)) {
    out.learners = learners;
    return out;
  }
  // Joint consensus: decisions need majorities of both the old and the new
  // voters until the configuration is left. A demoted voter stays a voter of
  // the outgoing half and becomes a learner when the joint config is left.
  out.voters_outgoing = cur.voters;
  std::sort(out.voters_outgoing.begin(), out.voters_outgoing.end());
  for (NodeId id : learners) {
    if (Has(out.voters_outgoing, id)) {
      out.learners_next.push_back(id);
    } else {
      out.learners.push_back(id);
    }
  }
  out.auto_leave = cc.transition != ConfTransition::kJointExplicit;
  return out;
}

std::string ConfStateString(const ConfState& cs) {
  auto list = [](const std::vector<NodeId>& v) {
    std::string out = "(";
    for (size_t i = 0; i < v.size(); ++i)
      absl::StrAppend(&out, i ? " " : "", v[i].value());
    return out + ")";
  };
  return absl::StrCat("voters=", list(cs.voters), " outgoing=", list(cs.voters_outgoing),
                      " learners=", list(cs.learners), " learners_next=", list(cs.learners_next),
                      " auto_leave=", cs.auto_leave ? 1 : 0);
}

}  // namespace bw::raft
