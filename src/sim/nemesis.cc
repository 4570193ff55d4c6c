// The nemesis of a simulation: which fault strikes when (partitions, crashes,
// membership changes, leadership transfers, clock drift, disk faults), the
// figure-8 fault played out, and the churn of the liveness phase.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "raft/quorum.h"
#include "sim/simulation.h"

namespace bw::sim::detail {

// --- Nemesis ---

void Simulation::ScheduleNemesis() {
  world_.At(100'000 + static_cast<int64_t>(rng().Below(1'400'000)), [this] {
    if (!safety_phase_ || failed()) return;
    Nemesis();
    ScheduleNemesis();
  });
}

void Simulation::Partition() {
  world_.HealPartitions();
  std::vector<NodeId> ids = universe_;
  // Shuffle deterministically.
  for (size_t i = ids.size(); i > 1; --i)
    std::swap(ids[i - 1], ids[rng().Below(i)]);
  size_t n = ids.size();
  auto cut = [this](NodeId a, NodeId b) {
    world_.Block(a, b);
    world_.Block(b, a);
  };
  switch (rng().Below(6)) {
    case 0: {  // symmetric split at a random point
      size_t k = 1 + rng().Below(n - 1);
      for (size_t i = 0; i < k; ++i)
        for (size_t j = k; j < n; ++j)
          cut(ids[i], ids[j]);
      Trace(absl::StrCat("partition: split ", k, "/", n - k));
      break;
    }
    case 1: {  // the leader alone in a minority
      NodeId l = LeaderNode();
      if (l == kNoNode) l = ids[0];
      for (NodeId other : ids)
        if (other != l) cut(l, other);
      Trace(absl::StrCat("partition: isolate leader ", l.value()));
      break;
    }
    case 2: {  // one-way loss on random links
      int links = 1 + static_cast<int>(rng().Below(n));
      for (int i = 0; i < links; ++i) {
        NodeId a = ids[rng().Below(n)];
        NodeId b = ids[rng().Below(n)];
        if (a != b) world_.Block(a, b);
      }
      Trace(absl::StrCat("partition: ", links, " one-way links cut"));
      break;
    }
    case 3: {  // bridge: two halves that only the middle node joins
      size_t mid = n / 2;
      for (size_t i = 0; i < mid; ++i)
        for (size_t j = mid + 1; j < n; ++j)
          cut(ids[i], ids[j]);
      Trace(absl::StrCat("partition: bridge through node ", ids[mid].value()));
      break;
    }
    case 4: {  // ring: each node hears only its neighbours
      for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j) {
          size_t d = std::min(j - i, n - (j - i));
          if (d > 1) cut(ids[i], ids[j]);
        }
      Trace("partition: ring");
      break;
    }
    default: {  // majority / minority with a random minority
      size_t k = (n - 1) / 2;
      for (size_t i = 0; i < k; ++i)
        for (size_t j = k; j < n; ++j)
          cut(ids[i], ids[j]);
      Trace(absl::StrCat("partition: minority of ", k));
      break;
    }
  }
  ++result_.stats.partitions;
}

void Simulation::ChangeMembership(node::Node& leader) {
  const raft::ConfState& conf = leader.raft().conf();
  if (conf.Joint()) return;
  std::vector<NodeId> outside;
  for (NodeId id : universe_) {
    if (!raft::IsVoter(conf, id) && !raft::IsLearner(conf, id)) outside.push_back(id);
  }
  raft::ConfChange cc;
  std::string what;
  uint64_t pick = rng().Below(4);
  if (pick == 0 && !outside.empty()) {
    NodeId id = outside[rng().Below(outside.size())];
    cc.changes.push_back({raft::ConfChangeType::kAddLearner, id});
    what = absl::StrCat("add learner ", id.value());
  } else if (pick == 1 && !conf.learners.empty()) {
    NodeId id = conf.learners[rng().Below(conf.learners.size())];
    cc.changes.push_back({raft::ConfChangeType::kAddVoter, id});
    what = absl::StrCat("promote learner ", id.value());
  } else if (pick == 2 && conf.voters.size() > static_cast<size_t>(std::max(3, o_.nodes))) {
    NodeId id = conf.voters[rng().Below(conf.voters.size())];
    cc.changes.push_back({raft::ConfChangeType::kRemoveNode, id});
    what = absl::StrCat("remove voter ", id.value());
  } else if (pick == 3 && !outside.empty() && conf.voters.size() >= 3) {
    // Replace a voter with a new one in one joint-consensus step.
    NodeId in = outside[rng().Below(outside.size())];
    NodeId out = conf.voters[rng().Below(conf.voters.size())];
    cc.transition = raft::ConfTransition::kJointImplicit;
    cc.changes.push_back({raft::ConfChangeType::kAddVoter, in});
    cc.changes.push_back({raft::ConfChangeType::kRemoveNode, out});
    what = absl::StrCat("joint: replace voter ", out.value(), " with ", in.value());
  } else {
    return;
  }
  absl::Status s = leader.ProposeConfChange(cc);
  Trace(absl::StrCat("membership: ", what, s.ok() ? "" : " (refused: " + s.ToString() + ")"));
  if (s.ok()) ++result_.stats.conf_changes;
}

void Simulation::Nemesis() {
  std::vector<Fault> choices;
  for (const auto& [bit, name] : kFaultNames) {
    if ((o_.faults & bit) && bit != kFaultSnapshot && bit != kFaultBuggify) choices.push_back(bit);
  }
  if (choices.empty()) return;
  if (world_.now_us() < figure8_quiet_until_us_) return;
  // Heal now and then so that progress happens between faults.
  if (rng().Chance(0.3)) {
    env::NetworkFaults calm;
    bool disturbed = world_.Partitioned() || world_.faults().drop > 0 ||
                     world_.faults().duplicate > 0 || world_.faults().spike > 0 ||
                     world_.faults().delay_max_us != calm.delay_max_us;
    world_.HealPartitions();
    world_.faults() = calm;
    if (disturbed) Trace("heal network");
    return;
  }
  Fault f = choices[rng().Below(choices.size())];
  env::NetworkFaults& nf = world_.faults();
  switch (f) {
    case kFaultDrop:
      nf.drop = rng().Uniform() * 0.2;
      Trace(absl::StrFormat("network: drop %.0f%%", nf.drop * 100));
      break;
    case kFaultDuplicate:
      nf.duplicate = rng().Uniform() * 0.1;
      Trace(absl::StrFormat("network: duplicate %.0f%%", nf.duplicate * 100));
      break;
    case kFaultReorder:
      nf.delay_max_us = 2000 + static_cast<int64_t>(rng().Below(50'000));
      nf.spike = rng().Uniform() * 0.02;
      nf.spike_us = static_cast<int64_t>(rng().Below(500'000));
      Trace(absl::StrFormat("network: delay up to %.1fms, spikes %.1f%%", nf.delay_max_us / 1e3,
                            nf.spike * 100));
      break;
    case kFaultPartition:
      Partition();
      break;
    case kFaultCrash: {
      if (rng().Chance(0.25)) {
        // Leader churn, after the Figure 8 test of MIT 6.824: for a while,
        // kill every leader after a very short reign, keeping a majority up.
        int64_t until = world_.now_us() + 2'000'000 + static_cast<int64_t>(rng().Below(4'000'000));
        Trace("leader churn begins");
        ChurnStep(until);
        break;
      }
      std::vector<NodeId> up;
      for (auto& [id, m] : members_)
        up.push_back(id);
      if (up.empty()) break;
      NodeId victim =
          rng().Chance(0.4) && LeaderNode() != kNoNode ? LeaderNode() : up[rng().Below(up.size())];
      CrashNode(victim);
      ScheduleRestart(victim);
      if (rng().Chance(0.2)) {
        // A correlated failure (a rack loses power): a majority at once.
        for (NodeId id : up) {
          if (Live(id) != nullptr && rng().Chance(0.6)) {
            CrashNode(id);
            ScheduleRestart(id);
          }
        }
      }
      break;
    }
    case kFaultDisk: {
      // The disk of one node fills up for a while, then space returns.
      NodeId id = universe_[rng().Below(universe_.size())];
      env::SimDisk& disk = world_.env(id).sim_disk();
      env::SimDiskFaults f = disk.faults();
      f.capacity_bytes = disk.used_bytes() + rng().Below(8192);
      disk.set_faults(f);
      ++result_.stats.disk_full;
      Trace(absl::StrFormat("disk: node %d full", static_cast<int>(id.value())));
      world_.At(500'000 + static_cast<int64_t>(rng().Below(3'000'000)), [this, id] {
        env::SimDisk& d = world_.env(id).sim_disk();
        env::SimDiskFaults g = d.faults();
        g.capacity_bytes = env::SimDiskFaults::kUnlimitedCapacity;
        d.set_faults(g);
        Trace(absl::StrFormat("disk: node %d has space again", static_cast<int>(id.value())));
      });
      break;
    }
    case kFaultDrift: {
      NodeId id = universe_[rng().Below(universe_.size())];
      double rate = 0.8 + rng().Uniform() * 0.4;
      world_.SetClockRate(id, rate);
      max_clock_rate_ = std::max(max_clock_rate_, rate);
      min_clock_rate_ = std::min(min_clock_rate_, rate);
      lease_checker_.set_max_clock_rate(max_clock_rate_);
      record_checker_.set_max_clock_rate(max_clock_rate_);
      Trace(absl::StrFormat("clock: node %d runs at %.2fx", static_cast<int>(id.value()), rate));
      break;
    }
    case kFaultMembership: {
      // A burst of changes, each proposed once the previous one can be.
      int changes = 1 + static_cast<int>(rng().Below(4));
      for (int i = 0; i < changes; ++i) {
        world_.At(static_cast<int64_t>(i) * 150'000, [this] {
          if (!safety_phase_ || failed()) return;
          node::Node* l = Live(LeaderNode());
          if (l != nullptr) ChangeMembership(*l);
        });
      }
      break;
    }
    case kFaultFigure8:
      Figure8();
      break;
    case kFaultTransfer: {
      node::Node* l = Live(LeaderNode());
      if (l == nullptr) break;
      const auto& voters = l->raft().conf().voters;
      NodeId to = voters[rng().Below(voters.size())];
      if (to == l->id()) break;
      absl::Status s = l->TransferLeadership(to);
      ++result_.stats.transfers;
      Trace(absl::StrCat("transfer leadership ", l->id().value(), " -> ", to.value(),
                         s.ok() ? "" : " refused"));
      break;
    }
    default:
      break;
  }
}

void Simulation::ChurnStep(int64_t until_us) {
  if (!safety_phase_ || failed()) return;
  if (world_.now_us() >= until_us) {
    // Churn over: what it left down comes back in a while, as after any crash.
    for (NodeId id : universe_) {
      if (Live(id) == nullptr) ScheduleRestart(id);
    }
    return;
  }
  NodeId l = LeaderNode();
  if (l != kNoNode) {
    CrashNode(l);
  }
  // Keep a majority of the voters up (learners do not count).
  std::vector<NodeId> voters = Voters();
  size_t up = 0;
  std::vector<NodeId> down;
  for (NodeId id : voters) {
    if (Live(id) != nullptr) {
      ++up;
    } else {
      down.push_back(id);
    }
  }
  while (up <= voters.size() / 2 && !down.empty()) {
    size_t k = rng().Below(down.size());
    Trace(absl::StrCat("restart node ", down[k].value()));
    StartNode(down[k]);
    down.erase(down.begin() + static_cast<long>(k));
    ++up;
  }
  int64_t pause = rng().Chance(0.1) ? static_cast<int64_t>(rng().Below(500'000))
                                    : static_cast<int64_t>(rng().Below(15'000));
  world_.At(pause, [this, until_us] { ChurnStep(until_us); });
}

void Simulation::Figure8() {
  NodeId o = LeaderNode();
  if (o == kNoNode) return;
  std::vector<NodeId> members = Members();
  std::vector<NodeId> others;
  for (NodeId id : members) {
    if (id != o) others.push_back(id);
  }
  if (others.size() < 2) return;
  NodeId f = others[rng().Below(others.size())];
  world_.HealPartitions();
  for (NodeId id : universe_) {
    if (id == o || id == f) continue;
    for (NodeId side : {o, f}) {
      world_.Block(id, side);
      world_.Block(side, id);
    }
  }
  Trace(absl::StrCat("figure 8: leader ", o.value(), " and node ", f.value(),
                     " cut off from the rest"));
  Term old_term = Live(o)->raft().term();
  figure8_quiet_until_us_ = world_.now_us() + 6'000'000;
  if (rng().Chance(0.5)) {
    // The dissertation's S5 (Figure 3.7): the other side's leader is cut
    // off the moment it is elected, so the first entry of its term (its
    // no-op, any write it takes) stays on it alone. Found later, that leader
    // has already spread the no-op to its side, whose newer last term then
    // keeps o from being elected again: the history the commitment rule is
    // about would not come up.
    uint64_t serial = ++figure8_serial_;
    figure8_ = Figure8Watch{serial, o, f, old_term};
    world_.At(4'000'000, [this, serial] {
      if (!figure8_ || figure8_->serial != serial) return;
      figure8_.reset();  // no leader on the other side: give up
      figure8_quiet_until_us_ = 0;
      world_.HealPartitions();
    });
    return;
  }
  world_.At(200'000 + static_cast<int64_t>(rng().Below(800'000)),
            [this, o, f, old_term] { Figure8OtherLeader(o, f, old_term, 0); });
}

void Simulation::Figure8OtherLeader(NodeId o, NodeId f, Term old_term, int tries) {
  if (!safety_phase_ || failed()) return;
  NodeId m = kNoNode;
  for (auto& [id, mb] : members_) {
    const raft::Raft& r = mb->node().raft();
    if (id != o && id != f && r.role() == raft::Role::kLeader && r.term() > old_term) {
      m = id;
    }
  }
  if (m == kNoNode) {
    if (tries < 40) {
      world_.At(100'000,
                [this, o, f, old_term, tries] { Figure8OtherLeader(o, f, old_term, tries + 1); });
    } else {
      world_.HealPartitions();
    }
    return;
  }
  // Let the new leader take a few writes, then cut it off and crash it.
  world_.At(static_cast<int64_t>(rng().Below(20'000)), [this, m] {
    if (Live(m) == nullptr || !safety_phase_) return;
    Figure8CutOff(m);
  });
}

void Simulation::Figure8CutOff(NodeId m) {
  world_.HealPartitions();
  for (NodeId id : universe_) {
    if (id != m) {
      world_.Block(id, m);
      world_.Block(m, id);
    }
  }
  world_.At(static_cast<int64_t>(rng().Below(30'000)), [this, m] {
    if (!safety_phase_) return;
    Term m_term;
    if (node::Node* n = Live(m); n != nullptr) {
      m_term = n->raft().term();
      CrashNode(m);
    }
    world_.HealPartitions();
    Trace(absl::StrCat("figure 8: leader ", m.value(), " cut off and crashed; the rest healed"));
    Figure8KillNext(m, m_term);
  });
}

void Simulation::Figure8KillNext(NodeId m, Term m_term) {
  if (!safety_phase_ || failed()) return;
  // OnRoleChange crashes the next leader elected after m's term (polling
  // would leave it tens of milliseconds to take writes of its own term and
  // spread them, which ends the history); m returns as it goes.
  uint64_t serial = ++figure8_serial_;
  figure8_next_ = Figure8Watch{serial, m, kNoNode, m_term};
  world_.At(3'000'000, [this, serial, m] {
    if (!figure8_next_ || figure8_next_->serial != serial) return;
    figure8_next_.reset();  // nobody was elected: give up
    figure8_quiet_until_us_ = 0;
    if (safety_phase_ && Live(m) == nullptr) StartNode(m);
  });
}

void Simulation::Figure8Kill(NodeId l, NodeId m) {
  // The next leader reigns only briefly; then the crashed one returns.
  world_.At(3'000 + static_cast<int64_t>(rng().Below(6'000)), [this, l, m] {
    if (!safety_phase_) return;
    if (Live(l) != nullptr) {
      CrashNode(l);
      ScheduleRestart(l);
    }
    if (Live(m) == nullptr) {
      Trace(absl::StrCat("figure 8: restart node ", m.value()));
      StartNode(m);
      // m's timer fires first: just past an election timeout, when the
      // others no longer hold l's lease (CheckQuorum) but before most of
      // their randomized timers end.
      world_.At(static_cast<int64_t>(o_.election_ticks) * o_.tick_us + 20'000, [this, m] {
        if (!safety_phase_ || failed()) return;
        if (node::Node* n = Live(m); n != nullptr) n->Campaign();
      });
    }
    figure8_quiet_until_us_ = 0;  // played out
  });
}

}  // namespace bw::sim::detail
