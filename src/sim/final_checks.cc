// The simulator's final checks (see simulator.h): a stable leader after
// healing, replicas that converge, every acknowledged write on every member
// and none applied twice, the workload's own verdict, and the
// linearizability of the history; or, with a damaged majority, a halt that
// acknowledged nothing more.
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "check/linearizability.h"
#include "core/limits.h"
#include "sim/simulation.h"

namespace bw::sim::detail {

bool Simulation::CheckLiveness() {
  // A stable leader: one leader that every live voter of its configuration follows.
  NodeId l = LeaderNode();
  if (l == kNoNode) return false;
  const raft::ConfState& conf = Live(l)->raft().conf();
  for (NodeId id : raft::AllMembers(conf)) {
    if (damaged_.count(id)) continue;
    node::Node* n = Live(id);
    if (n == nullptr || n->raft().leader() != l) return false;
  }
  return true;
}

bool Simulation::Converged() {
  NodeId l = LeaderNode();
  if (l == kNoNode) return false;
  node::Node* leader = Live(l);
  if (leader->applied_index() != leader->raft().log().last_index()) return false;
  for (NodeId id : raft::AllMembers(leader->raft().conf())) {
    if (damaged_.count(id)) continue;
    node::Node* n = Live(id);
    if (n == nullptr || n->applied_index() != leader->applied_index()) return false;
  }
  return true;
}

void Simulation::CheckFinal() {
  NodeId l = LeaderNode();
  if (l == kNoNode) {
    Fail("liveness: no leader at the end of the liveness phase");
    return;
  }
  node::Node* leader = Live(l);
  if (o_.rebuild_damaged) {
    const raft::ConfState& conf = leader->raft().conf();
    int healthy = 0;
    for (NodeId id : conf.voters)
      healthy += damaged_.count(id) ? 0 : 1;
    if (healthy != o_.nodes || conf.voters.size() != static_cast<size_t>(o_.nodes)) {
      Fail(absl::StrCat("rebuild: ", healthy, " healthy voters of ", conf.voters.size(),
                        " after rebuilding, expected ", o_.nodes));
      return;
    }
  }
  std::vector<NodeId> members = raft::AllMembers(leader->raft().conf());
  for (NodeId id : members) {
    if (damaged_.count(id)) continue;
    node::Node* n = Live(id);
    if (n->applied_index() != leader->applied_index()) {
      Fail(absl::StrCat("liveness: node ", id.value(), " applied ", n->applied_index().value(),
                        " but the leader applied ", leader->applied_index().value()));
      return;
    }
    if (n->state_machine().digest() != leader->state_machine().digest()) {
      Fail(absl::StrCat("state divergence: node ", id.value(), " and leader ", l.value(),
                        " hold different state at applied index ", n->applied_index().value()));
      return;
    }
    if (o_.workload == Workload::kRegisters) {
      // Every acknowledged write is in each member's history of the keys,
      // and no write is there twice (each writes a value of its own; a
      // retry or a duplicated proposal must be recognised by its key).
      std::vector<mvccpb::Event> events;
      absl::Status read =
          stores_.at(id)->EventsSince("k", "l", 1, std::numeric_limits<size_t>::max(), &events);
      std::map<std::string, int64_t> values;
      for (const mvccpb::Event& e : events) {
        if (e.type() != mvccpb::Event::PUT) continue;
        auto [it, fresh] = values.emplace(e.kv().value(), e.kv().mod_revision());
        if (!fresh) {
          Fail(absl::StrCat("exactly-once: the write of ", e.kv().value(), " to ", e.kv().key(),
                            " was applied twice on node ", id.value(), " (revisions ", it->second,
                            " and ", e.kv().mod_revision(), ")"));
          return;
        }
      }
      for (const std::string& v : acked_values_) {
        if (!read.ok() || !values.count(v)) {
          Fail(absl::StrCat("lost write: ", v, " was acknowledged but node ", id.value(),
                            " never applied it"));
          return;
        }
      }
    }
  }
  result_.final_digest = leader->state_machine().digest();
  if (keyed()) {
    CheckExactlyOnce(*leader);
    return;
  }
  if (leases()) {
    CheckLeasesExpired();
    return;
  }
  if (watches()) {
    CheckWatchesCaughtUp(l);
    return;
  }
  if (records()) {
    CheckRecordsServed();
    return;
  }
  if (auth()) {
    CheckAuthServed();
    return;
  }
  if (o_.clients > 0) {
    bool served = false;
    for (const check::Operation& op : history_.ops()) {
      served |= op.kind != check::OpKind::kRead && op.outcome == check::Outcome::kOk &&
                op.invoke_us >= heal_stamp_;
    }
    if (!served) {
      Fail("liveness: no write invoked after healing was acknowledged");
      return;
    }
  }
  CheckHistory();
}

void Simulation::CheckHalted() {
  // A majority cannot start: nothing may be acknowledged after the damage
  // (there is no quorum to make it durable), and what was answered before
  // must still be linearizable.
  if (LeaderNode() != kNoNode) {
    Fail(absl::StrCat("halt: node ", LeaderNode().value(),
                      " leads although a majority of the voters is damaged"));
    return;
  }
  for (const check::Operation& op : history_.ops()) {
    if (op.kind != check::OpKind::kRead && op.outcome == check::Outcome::kOk &&
        op.invoke_us >= corrupt_stamp_) {
      Fail("halt: a write invoked after a majority was damaged was acknowledged");
      return;
    }
  }
  CheckHistory();
}

void Simulation::CheckHistory() {
  check::CheckOptions lin_options;
  lin_options.max_steps = limits::kSimLinearizabilitySteps;
  check::LinearizabilityResult lin = check::CheckLinearizable(history_, lin_options);
  if (lin.verdict == check::Verdict::kNotLinearizable) {
    Fail("linearizability: key " + lin.key + ": " + lin.explanation);
  } else if (lin.verdict == check::Verdict::kGaveUp) {
    // Never a silent pass: a history too hard to check is reported.
    Fail("linearizability: the check gave up on key " + lin.key + " (" + lin.explanation +
         "); use more keys or a shorter run");
  }
}

}  // namespace bw::sim::detail
