#include "sim/simulator.h"

#include "sim/simulation.h"

#include <algorithm>
#include <any>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "check/exactly_once.h"
#include "check/history.h"
#include "check/lease_expiry.h"
#include "check/linearizability.h"
#include "check/raft_invariants.h"
#include "core/assert.h"
#include "env/sim/sim_world.h"
#include "kv/mvcc.h"
#include "member/member.h"
#include "raft/quorum.h"

namespace bw::sim {

namespace {

uint64_t HashData(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001B3ULL;
  return h;
}

check::EntryObservation Observe(const raft::Entry& e) {
  return check::EntryObservation{e.index.value(), e.term.value(), HashData(e.data)};
}

}  // namespace

absl::StatusOr<Workload> ParseWorkload(const std::string& name) {
  if (name == "registers") return Workload::kRegisters;
  if (name == "exactly-once") return Workload::kExactlyOnce;
  if (name == "leases") return Workload::kLeases;
  if (name == "watches") return Workload::kWatches;
  if (name == "records") return Workload::kRecords;
  if (name == "auth") return Workload::kAuth;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown workload '", name,
                   "' (known: registers, exactly-once, leases, watches, records, auth)"));
}

std::string WorkloadName(Workload w) {
  switch (w) {
    case Workload::kExactlyOnce:
      return "exactly-once";
    case Workload::kLeases:
      return "leases";
    case Workload::kWatches:
      return "watches";
    case Workload::kRecords:
      return "records";
    case Workload::kAuth:
      return "auth";
    case Workload::kRegisters:
      break;
  }
  return "registers";
}

absl::StatusOr<uint32_t> ParseFaults(const std::string& list) {
  if (list == "all") return static_cast<uint32_t>(kFaultAll);
  if (list == "none" || list.empty()) return 0u;
  uint32_t out = 0;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    bool found = false;
    for (const auto& [bit, name] : detail::kFaultNames) {
      if (part == name) {
        out |= bit;
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat("unknown fault '", std::string(part),
                                                     "'; known: ", KnownFaults(), ", all, none"));
    }
  }
  return out;
}

std::string KnownFaults() {
  std::string known;
  for (const auto& [bit, name] : detail::kFaultNames)
    absl::StrAppend(&known, known.empty() ? "" : ",", name);
  return known;
}

std::string FaultNames(uint32_t faults) {
  if (faults == kFaultAll) return "all";
  std::string out;
  for (const auto& [bit, name] : detail::kFaultNames) {
    if (faults & bit) absl::StrAppend(&out, out.empty() ? "" : ",", name);
  }
  return out.empty() ? "none" : out;
}

absl::Status SimOptions::Validate() const {
  if (nodes < 1 || nodes > static_cast<int>(limits::kMaxSimNodes) - 2) {
    return absl::InvalidArgumentError(absl::StrCat("--nodes must be between 1 and ",
                                                   limits::kMaxSimNodes - 2, " (got ", nodes, ")"));
  }
  if (clients < 0 || clients > static_cast<int>(limits::kMaxSimClients)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--clients must be between 0 and ", limits::kMaxSimClients));
  }
  if (keys < 1) return absl::InvalidArgumentError("--keys must be at least 1");
  if (rebuild_damaged && (corrupt_nodes == 0 || corrupt_nodes * 2 >= nodes)) {
    return absl::InvalidArgumentError(
        "--rebuild needs --corrupt-nodes to be a minority (a majority cannot agree to rebuild)");
  }
  if (corrupt_nodes < 0 || corrupt_nodes > nodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--corrupt-nodes must be between 0 and --nodes (got ", corrupt_nodes, ")"));
  }
  if ((sdk_clients || planted_sdk_key_per_attempt || planted_sdk_unknown_as_failed) &&
      workload != Workload::kRegisters) {
    return absl::InvalidArgumentError("--sdk drives the registers workload's clients only");
  }
  if ((planted_sdk_key_per_attempt || planted_sdk_unknown_as_failed) && !sdk_clients) {
    return absl::InvalidArgumentError("the sdk-* planted bugs need --sdk");
  }
  if (tick_us <= 0 || safety_us < 0 || liveness_us <= 0) {
    return absl::InvalidArgumentError("durations must be positive");
  }
  raft::Config c;
  c.id = NodeId(1);
  c.election_ticks = election_ticks;
  c.heartbeat_ticks = heartbeat_ticks;
  return c.Validate();
}

namespace detail {

// An assertion that fired inside a simulated node: the run stops and the
// seed is reported like any other violation.
struct AssertionFired {
  std::string what;
};

[[noreturn]] void ThrowAssertion(const char* file, int line, const char* expr,
                                 const std::string& detail) {
  throw AssertionFired{absl::StrCat("assertion failed at ", file, ":", line, ": ", expr,
                                    detail.empty() ? "" : " — ", detail)};
}

void Simulation::Trace(std::string line) {
  std::string stamped = absl::StrFormat("%9.3fs %s", world_.now_us() / 1e6, line);
  if (o_.narrate) o_.narrate(stamped);
  trace_.push_back(std::move(stamped));
  while (trace_.size() > o_.trace_lines)
    trace_.pop_front();
}

void Simulation::Fail(std::string what) {
  if (!failed()) {
    result_.ok = false;
    result_.violation = std::move(what);
    Trace("VIOLATION: " + result_.violation);
  }
}

node::Node* Simulation::Live(NodeId id) {
  member::Member* m = LiveMember(id);
  return m == nullptr ? nullptr : &m->node();
}

member::Member* Simulation::LiveMember(NodeId id) {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : it->second.get();
}

NodeId Simulation::LeaderNode() {
  NodeId best = kNoNode;
  Term best_term;
  for (auto& [id, m] : members_) {
    const raft::Raft& r = m->node().raft();
    if (r.role() == raft::Role::kLeader && r.term() >= best_term) {
      best = id;
      best_term = r.term();
    }
  }
  return best;
}

const raft::ConfState* Simulation::LatestConf() {
  // The configuration of the most advanced live node.
  const raft::ConfState* conf = nullptr;
  LogIndex best;
  for (auto& [id, m] : members_) {
    const raft::Raft& r = m->node().raft();
    if (conf == nullptr || r.log().applied() > best) {
      conf = &r.conf();
      best = r.log().applied();
    }
  }
  return conf;
}

std::vector<NodeId> Simulation::Voters() {
  const raft::ConfState* conf = LatestConf();
  if (conf == nullptr) return {};
  std::vector<NodeId> out = conf->voters;
  for (NodeId id : conf->voters_outgoing) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

std::vector<NodeId> Simulation::Members() {
  const raft::ConfState* conf = LatestConf();
  if (conf == nullptr) return {};
  return raft::AllMembers(*conf);
}

void Simulation::SetUpNode(NodeId id, bool initial) {
  env::SimEnv& env = world_.AddNode(id);
  node::NodeOptions opt;
  opt.id = id;
  if (initial) {
    for (int i = 1; i <= o_.nodes; ++i)
      opt.initial_voters.push_back(NodeId(i));
  }
  opt.raft.election_ticks = o_.election_ticks;
  opt.raft.heartbeat_ticks = o_.heartbeat_ticks;
  opt.raft.lease_reads = o_.lease_reads;
  opt.raft.random_seed = rng().Next();
  // Small WAL segments, so rotation and release happen in every run (taken
  // from the seed already drawn: a new draw would move every seed's trajectory).
  opt.wal_segment_bytes = 4096 + opt.raft.random_seed % 65536;
  // In three runs of four a Raft log cache of a few KB: applied, durable
  // entries leave memory at once and lagging followers are fed from the WAL
  // (the same seed again, for the same reason).
  if ((opt.raft.random_seed >> 20) % 4 != 0) {
    opt.raft.log_cache_bytes = (opt.raft.random_seed >> 24) % 4096;
  }
  opt.raft.bugs = o_.raft_bugs;
  opt.tick_us = o_.tick_us;
  // fsync on real disks takes from a fraction of a millisecond to several.
  int64_t sync_latency_us = 100 + static_cast<int64_t>(rng().Below(5000));
  opt.request_timeout_us = o_.client_timeout_us;
  opt.bugs = o_.node_bugs;
  if (o_.faults & kFaultSnapshot) {
    // Sometimes very often: snapshots then race with everything else.
    opt.snapshot_every = rng().Chance(0.3) ? 3 + rng().Below(10) : 20 + rng().Below(200);
    opt.snapshot_keep_entries = rng().Below(3) == 0 ? 0 : rng().Below(50);
  }
  if (buggify_) {
    // Rare paths made common: tiny messages and windows, many-chunk snapshots.
    if (rng().Chance(0.4)) opt.raft.max_append_bytes = 1 + rng().Below(256);
    if (rng().Chance(0.3)) opt.raft.max_inflight_messages = 1 + rng().Below(4);
    // Chunks are sent one per round trip: at 16 bytes a 70 KB snapshot (the
    // exactly-once workload's records) takes longer than the convergence
    // window, which is the test's limit, not a bug.
    if (rng().Chance(0.5)) opt.raft.snapshot_chunk_bytes = 128 + rng().Below(2048);
    if (rng().Chance(0.2)) opt.raft.max_uncommitted_bytes = 256 + rng().Below(4096);
    if (rng().Chance(0.3)) sync_latency_us = 2000 + static_cast<int64_t>(rng().Below(20000));
    if (rng().Chance(0.2)) opt.raft.forward_proposals = false;
    if (rng().Chance(0.2)) opt.raft.pre_vote = false;
  }
  opt.raft.max_inflight_bytes = std::max(opt.raft.max_inflight_bytes, opt.raft.max_append_bytes);
  if (buggify_) {
    // Each fault site is enabled for the whole run with probability 1/2 and
    // then fires at its rate when reached (snapshots are costly: rarely).
    auto enabled = std::make_shared<std::map<std::string, double>>();
    for (auto [site, rate] : {std::pair<const char*, double>{"node.stall_tick", 0.05},
                              {"node.slow_sync", 0.05},
                              {"node.early_snapshot", 0.003},
                              {"node.defer_reads", 0.05}}) {
      if (rng().Chance(0.5)) (*enabled)[site] = rate;
    }
    opt.buggify = [this, enabled](const char* site) {
      auto it = enabled->find(site);
      return it != enabled->end() && rng().Chance(it->second);
    };
  }
  // The fsync's latency: the node's syncs are offloaded to its env.
  env.set_offload_latency_us(sync_latency_us);
  node_options_[id] = opt;
  SetDiskFaults(id, /*calm=*/false);
}

void Simulation::SetDiskFaults(NodeId id, bool calm) {
  if (!(o_.faults & kFaultDisk)) return;
  env::SimDiskFaults f;
  if (!calm) {
    f.torn_tail = 0.5;
    f.sync_eio = 0.0005;
    f.read_bit_flip = 0.02;
  }
  world_.env(id).sim_disk().set_faults(f);
}

member::MemberOptions Simulation::MemberOptionsFor(NodeId id) {
  member::MemberOptions mo;
  mo.node = node_options_[id];
  mo.name = absl::StrCat("n", id.value());
  mo.peer_urls = {absl::StrCat("sim://n", id.value())};
  mo.observer = this;
  mo.planted_auth_before_barrier = o_.planted_auth_before_barrier;
  mo.configure_store = [this, id](kv::MvccStore& store) {
    store.set_planted_compaction_drops_delete(o_.planted_compaction_drops_delete);
    store.set_planted_stale_token(o_.planted_stale_token);
    store.set_planted_skip_dedup(o_.planted_skip_dedup);
    store.set_planted_proposer_time(o_.planted_proposer_time);
    store.set_planted_skip_apply_auth(o_.planted_skip_apply_auth);
    auth_last_revision_[id] = -1;  // unknown until it applies an entry
    // A new incarnation: its state starts from what its disk holds.
    stores_[id] = &store;
    for (auto& [lease, t] : leases_)
      t.seen_on.erase(id);
  };
#ifdef BW_PLANTED_BUGS
  mo.configure_hub = [this](member::WatchHub& hub) {
    hub.set_planted_drop_events(o_.planted_watch_gaps);
  };
#endif
  return mo;
}

void Simulation::StartNode(NodeId id) {
  world_.Restart(id);
  auto n = member::Member::Start(world_.env(id), MemberOptionsFor(id));
  if (damaged_.count(id)) {
    if (n.ok()) {
      Fail(absl::StrCat("node ", id.value(), " started on a corrupted WAL without noticing"));
      members_[id] = std::move(*n);
      return;
    }
    stores_.erase(id);
    ++result_.stats.refused_starts;
    Trace(absl::StrCat("node ", id.value(), " (damaged) refused to start: ", n.status().message()));
    world_.Crash(id);
    return;
  }
  if (!n.ok() && (absl::IsDataLoss(n.status()) || absl::IsResourceExhausted(n.status())) &&
      (o_.faults & kFaultDisk)) {
    // A bit flipped as the log was read: the node refuses to start rather
    // than run on damaged state (the flip was in the read, not on the disk);
    // or the disk is full. Either way it is tried again later.
    stores_.erase(id);
    ++result_.stats.refused_starts;
    Trace(absl::StrCat("node ", id.value(), " refused to start: ", n.status().message()));
    world_.Crash(id);
    if (safety_phase_) {
      ScheduleRestart(id);
      return;
    }
    world_.Restart(id);
    n = member::Member::Start(world_.env(id), MemberOptionsFor(id));
  }
  if (!n.ok()) {
    stores_.erase(id);
    Fail(absl::StrCat("node ", id.value(), " failed to start: ", n.status().ToString()));
    return;
  }
  members_[id] = std::move(*n);
  // A new process: its watch streams ended with the old one.
  ++hub_gen_[id];
  if (leases()) ObserveLeases(id);
  // A restarted node's log starts from what survived on its disk.
  const raft::RaftLog& log = members_[id]->node().raft().log();
  invariants_.OnLogReset(id.value(), log.offset().value(), log.offset_term().value());
  // Entries it applied while starting may have left memory already: read
  // back from its WAL, where the disk's read faults (a bit flipped in what a
  // read returns, not in what is stored) make a read fail now and then. A
  // piece at a time, each tried again; a piece is one entry after a failed
  // try (a large read fails too often: one flip in it is enough).
  std::vector<raft::Entry> held;
  absl::Status read;
  for (LogIndex next = log.first_index(); next <= log.last_index() && read.ok();) {
    std::vector<raft::Entry> piece;
    for (int attempt = 0; attempt < 20; ++attempt) {
      piece.clear();
      read = log.Slice(next, log.last_index(), attempt == 0 ? 4096 : 1, &piece);
      if (read.ok()) break;
    }
    for (raft::Entry& e : piece)
      held.push_back(std::move(e));
    next = next + piece.size();
  }
  if (!read.ok()) {
    Fail(absl::StrCat("node ", id.value(), " cannot read its own log back: ", read.ToString()));
    return;
  }
  std::vector<check::EntryObservation> entries;
  for (const raft::Entry& e : held)
    entries.push_back(Observe(e));
  invariants_.OnLogAppend(id.value(), entries);
}

void Simulation::CollectLogStats(NodeId id) {
  auto it = members_.find(id);
  if (it == members_.end()) return;
  const raft::Raft& r = it->second->node().raft();
  result_.stats.log_entries_read += r.log_entries_read();
  result_.stats.log_read_failures += r.log_read_failures();
}

void Simulation::CrashNode(NodeId id) {
  // The member dies with the process (its watch streams with it); its disk
  // keeps what was synced.
  CollectLogStats(id);
  members_.erase(id);
  stores_.erase(id);  // its state machine was the node's
  world_.Crash(id);
  ++result_.stats.crashes;
  Trace(absl::StrCat("crash node ", id.value()));
}

void Simulation::Corrupt() {
  corrupt_stamp_ = Stamp();
  std::vector<NodeId> voters;
  for (int i = 1; i <= o_.nodes; ++i)
    voters.push_back(NodeId(i));
  for (int k = 0; k < o_.corrupt_nodes; ++k) {
    NodeId id = voters[rng().Below(voters.size())];
    voters.erase(std::find(voters.begin(), voters.end(), id));
    env::SimDisk& disk = world_.env(id).sim_disk();
    // The oldest segment: its records are synced and whole (segments are
    // synced before the next one starts, and the first of a fresh log holds
    // at least its header). Flip a bit in the middle of what is durable.
    absl::StatusOr<std::vector<std::string>> names = disk.List("data/wal");
    std::string path;
    if (names.ok()) {
      for (const std::string& n : *names) {
        if (n.size() > 4 && n.compare(n.size() - 4, 4, ".seg") == 0) {
          path = "data/wal/" + n;
          break;
        }
      }
    }
    uint64_t durable = path.empty() ? 0 : disk.durable_size(path);
    if (durable == 0) {
      Fail(absl::StrCat("corrupt: node ", id.value(), " has no synced WAL bytes to damage"));
      return;
    }
    absl::Status s = disk.FlipStoredBit(path, durable / 2, static_cast<int>(rng().Below(8)));
    if (!s.ok()) {
      Fail(absl::StrCat("corrupt: ", s.message()));
      return;
    }
    damaged_.insert(id);
    Trace(absl::StrFormat("disk: bit rot in %s of node %d at byte %d; node crashed", path,
                          static_cast<int>(id.value()), durable / 2));
    if (Live(id) != nullptr) CrashNode(id);
    // It must refuse to start; it stays down afterwards.
    StartNode(id);
  }
}

void Simulation::Rebuild() {
  for (NodeId bad : damaged_) {
    // A spare: in the universe, never a member so far.
    node::Node* l = Live(LeaderNode());
    if (l == nullptr) {
      Fail("rebuild: no leader");
      return;
    }
    NodeId spare = kNoNode;
    for (NodeId id : universe_) {
      if (!damaged_.count(id) && !raft::IsVoter(l->raft().conf(), id) &&
          !raft::IsLearner(l->raft().conf(), id) && Live(id) != nullptr) {
        spare = id;
      }
    }
    if (spare == kNoNode) {
      Fail("rebuild: no spare member");
      return;
    }
    // Retry until the change is in (a new leader, or one still settling,
    // refuses it), then until it applies and the joint step is left.
    int64_t deadline = world_.now_us() + 20'000'000;
    bool proposed = false;
    for (;;) {
      l = Live(LeaderNode());
      if (l != nullptr) {
        const raft::ConfState& conf = l->raft().conf();
        if (!conf.Joint() && !raft::IsVoter(conf, bad) && raft::IsVoter(conf, spare)) break;
        if (!proposed || !raft::IsVoter(conf, spare)) {
          raft::ConfChange cc;
          cc.transition = raft::ConfTransition::kJointImplicit;
          cc.changes.push_back({raft::ConfChangeType::kAddVoter, spare});
          cc.changes.push_back({raft::ConfChangeType::kRemoveNode, bad});
          if (l->ProposeConfChange(cc).ok()) {
            proposed = true;
            Trace(absl::StrCat("rebuild: replace damaged voter ", bad.value(), " with node ",
                               spare.value()));
          }
        }
      }
      if (world_.now_us() > deadline) {
        Fail(absl::StrCat("rebuild: damaged voter ", bad.value(), " not replaced within 20 s"));
        return;
      }
      world_.RunUntil(world_.now_us() + 200'000);
    }
    ++result_.stats.conf_changes;
  }
}

bool Simulation::HaltExpected() const {
  return static_cast<int>(damaged_.size()) * 2 >= o_.nodes;
}

// --- Observer ---

void Simulation::OnHalted(NodeId id, const absl::Status& why) {
  ++result_.stats.halts;
  Trace(absl::StrCat("node ", id.value(), " halted: ", why.message()));
  // The node cannot be destroyed inside its own call: crash it right after.
  world_.At(0, [this, id] {
    node::Node* n = Live(id);
    if (n == nullptr || n->halted().ok()) return;
    CrashNode(id);
    if (safety_phase_) {
      ScheduleRestart(id);
    } else {
      StartNode(id);
    }
  });
}

void Simulation::OnPersisted(NodeId id, const raft::Ready& rd) {
  if (!rd.snapshot.Empty()) {
    invariants_.OnLogReset(id.value(), rd.snapshot.meta.index.value(),
                           rd.snapshot.meta.term.value());
  }
  if (!rd.entries.empty()) {
    std::vector<check::EntryObservation> obs;
    obs.reserve(rd.entries.size());
    for (const raft::Entry& e : rd.entries)
      obs.push_back(Observe(e));
    invariants_.OnLogAppend(id.value(), obs);
  }
  // A commit index is durable only once synced (Ready::MustSync); one
  // written without a sync may be lost in a crash.
  if (rd.hard_state && rd.MustSync()) {
    invariants_.OnDurableCommit(id.value(), rd.hard_state->commit.value());
  } else if (rd.hard_state) {
    invariants_.OnCommitWritten(id.value(), rd.hard_state->commit.value());
  }
  if (!invariants_.ok()) Fail(invariants_.violation());
}

void Simulation::OnApplied(NodeId id, const raft::Entry& e, uint64_t digest) {
  invariants_.OnApplied(id.value(), Observe(e), digest);
  if (!invariants_.ok()) Fail(invariants_.violation());
  if (leases()) ObserveLeases(id);
  if (records()) ObserveRecords(id);
  if (auth()) ObserveAuthApply(id, e);
}

void Simulation::OnSnapshotInstalled(NodeId id, const raft::SnapshotMeta& meta, uint64_t digest) {
  ++result_.stats.snapshots_installed;
  Trace(absl::StrCat("node ", id.value(), " installed a snapshot at index ", meta.index.value()));
  invariants_.OnSnapshotApplied(id.value(), meta.index.value(), digest);
  if (!invariants_.ok()) Fail(invariants_.violation());
  if (leases()) ObserveLeases(id);
  if (auto it = stores_.find(id); it != stores_.end())
    auth_last_revision_[id] = it->second->revision();
}

void Simulation::OnRoleChange(NodeId id, const raft::SoftState& ss) {
  Term term = ss.term;
  if (ss.role != raft::Role::kLeader) return;
  ++result_.stats.elections;
  Trace(absl::StrCat("node ", id.value(), " is leader of term ", term.value()));
  if (figure8_ && id != figure8_->o && id != figure8_->f && term > figure8_->old_term &&
      safety_phase_) {
    // Before this Ready's messages leave (Node::Pump reports the role first).
    figure8_.reset();
    Trace(absl::StrCat("figure 8: node ", id.value(), " cut off as it is elected"));
    Figure8CutOff(id);
    // It takes an entry of its term (the dissertation's S5 takes a client's;
    // a planted commit_previous_term_by_counting has no no-op). Empty: the
    // state machine skips it, so no client's history is involved.
    if (node::Node* n = Live(id); n != nullptr) {
      n->Propose(kv::MakeRequestId(kFigure8Client, ++figure8_serial_), std::string(),
                 [](absl::StatusOr<std::any>) {});
    }
  }
  if (figure8_next_ && id != figure8_next_->o && term > figure8_next_->old_term && safety_phase_) {
    NodeId m = figure8_next_->o;
    figure8_next_.reset();
    Figure8Kill(id, m);
  }
  node::Node* n = Live(id);
  if (n == nullptr) return;
  if ((o_.faults & kFaultCrash) && safety_phase_ && rng().Chance(0.15)) {
    // Kill some leaders young, before their first entries spread: old
    // leaders with uncommitted tails are where commitment rules matter.
    int64_t delay = static_cast<int64_t>(rng().Below(30'000));
    world_.At(delay, [this, id] {
      if (Live(id) == nullptr || !safety_phase_) return;
      CrashNode(id);
      ScheduleRestart(id);
    });
  }
  const raft::RaftLog& log = n->raft().log();
  invariants_.OnBecameLeader(
      id.value(), term.value(),
      [&log](uint64_t i) -> std::optional<uint64_t> {
        auto t = log.TermAt(LogIndex(i));
        if (!t.has_value()) return std::nullopt;
        return t->value();
      },
      log.offset().value());
  if (!invariants_.ok()) Fail(invariants_.violation());
}

// --- Clients ---

void Simulation::ScheduleClient(Client& c, int64_t delay_us) {
  Client* cp = &c;
  world_.At(delay_us, [this, cp] { ClientStep(*cp); });
}

Simulation::Finish Simulation::StartOp(Client& c, std::function<int64_t(Client&, bool)> pause) {
  const uint64_t serial = ++c.op_serial;
  Client* cp = &c;
  c.busy = true;
  Finish finish = [this, cp, serial, pause = std::move(pause)](bool ok) {
    if (cp->op_serial != serial || !cp->busy) return;
    cp->busy = false;
    ++(ok ? result_.stats.ops_ok : result_.stats.ops_unknown);
    if (!ok) cp->target = kNoNode;
    ScheduleClient(*cp, pause(*cp, ok));
  };
  world_.At(o_.client_timeout_us, [finish] { finish(false); });
  return finish;
}

void Simulation::ClientStep(Client& c) {
  if (!clients_running_ || failed() || c.busy) return;
  // Pick a node: stay with the last one that answered, sometimes wander.
  std::vector<NodeId> members = Members();
  if (members.empty()) {
    ScheduleClient(c, o_.client_think_us);
    return;
  }
  if (c.target == kNoNode || rng().Chance(0.1) ||
      std::find(members.begin(), members.end(), c.target) == members.end()) {
    c.target = members[rng().Below(members.size())];
  }
  if (keyed()) {
    KeyedClientStep(c, members);
    return;
  }
  if (leases()) {
    LeaseClientStep(c);
    return;
  }
  if (watches()) {
    WatchesClientStep(c);
    return;
  }
  if (records()) {
    RecordsClientStep(c);
    return;
  }
  if (auth()) {
    AuthClientStep(c);
    return;
  }
  RegistersClientStep(c);
}

// --- Progress, restarts, healing and the final checks ---

void Simulation::ScheduleProgress() {
  world_.At(o_.progress_every_us, [this] {
    if (failed() || !clients_running_) return;
    NodeId l = LeaderNode();
    const SimStats& st = result_.stats;
    Trace(absl::StrCat("clients so far: ", st.ops_ok, " ok, ", st.ops_failed, " refused, ",
                       st.ops_unknown, " unknown; ",
                       l == kNoNode ? std::string("no leader")
                                    : absl::StrCat("leader ", l.value(), " at index ",
                                                   Live(l)->applied_index().value())));
    ScheduleProgress();
  });
}

void Simulation::ScheduleRestart(NodeId id) {
  int64_t down_us = 100'000 + static_cast<int64_t>(rng().Below(3'000'000));
  world_.At(down_us, [this, id] {
    if (!Live(id) && safety_phase_ && !damaged_.count(id)) {
      Trace(absl::StrCat("restart node ", id.value()));
      StartNode(id);
    }
  });
}

void Simulation::Heal() {
  safety_phase_ = false;
  for (NodeId id : universe_)
    SetDiskFaults(id, /*calm=*/true);
  world_.HealPartitions();
  world_.faults() = env::NetworkFaults{};
  for (NodeId id : universe_) {
    if (!Live(id)) StartNode(id);
  }
  heal_stamp_ = Stamp();
  if (HaltExpected()) Trace("liveness phase: a majority is damaged; the cluster must stay halted");
  Trace("liveness phase: faults healed, every node up");
}

SimResult Simulation::Run() {
  buggify_ = (o_.faults & kFaultBuggify) != 0;
  // Spare members: for membership changes, and to rebuild damaged voters.
  int total = o_.nodes + ((o_.faults & kFaultMembership) ? 2 : 0) +
              (o_.rebuild_damaged ? o_.corrupt_nodes : 0);
  for (int i = 1; i <= total; ++i)
    universe_.push_back(NodeId(i));
  for (NodeId id : universe_)
    SetUpNode(id, id.value() <= static_cast<uint64_t>(o_.nodes));
  for (NodeId id : universe_)
    StartNode(id);
  Trace(absl::StrCat("seed ", o_.seed, ": ", o_.nodes, " nodes, ", o_.clients, " clients, faults ",
                     FaultNames(o_.faults), buggify_ ? ", buggify on" : ""));
  for (int i = 1; i <= o_.clients; ++i) {
    Client c;
    c.id = static_cast<uint64_t>(i);
    clients_.push_back(std::move(c));
  }
  for (Client& c : clients_)
    ScheduleClient(c, static_cast<int64_t>(rng().Below(200'000)));
  if (o_.faults != 0) ScheduleNemesis();
  ScheduleProgress();
  if (o_.corrupt_nodes > 0) world_.At(o_.safety_us / 2, [this] { Corrupt(); });

  // Run in slices so that a message storm (events multiplying without
  // bound) is reported instead of exhausting memory.
  for (int64_t t = 0; t < o_.safety_us && !failed(); t += 100'000) {
    world_.RunUntil(std::min(t + 100'000, o_.safety_us));
    if (world_.events_pending() > limits::kMaxSimPendingEvents) {
      Fail(absl::StrCat("event storm: ", world_.events_pending(),
                        " events pending (messages multiplying without bound)"));
    }
  }
  if (!failed() && HaltExpected()) {
    Heal();
    world_.RunUntil(world_.now_us() + o_.liveness_us);
    clients_running_ = false;
    world_.RunUntil(world_.now_us() + o_.client_timeout_us);
    if (!failed()) CheckHalted();
  } else if (!failed()) {
    Heal();
    int64_t heal_at = world_.now_us();
    // The election timer fires after at most 2x election_ticks; allow three.
    int64_t bound = 3 * 2 * static_cast<int64_t>(o_.election_ticks) * o_.tick_us;
    while (!failed() && world_.now_us() - heal_at <= bound && !CheckLiveness()) {
      world_.RunUntil(world_.now_us() + o_.tick_us / 2);
    }
    if (!failed()) {
      if (!CheckLiveness()) {
        Fail(absl::StrCat("liveness: no stable leader ", bound / 1000,
                          " ms after healing (3 election timeouts)"));
      } else {
        result_.stats.leader_after_heal_us = world_.now_us() - heal_at;
      }
    }
    if (!failed() && o_.rebuild_damaged) Rebuild();
    world_.RunUntil(std::max(world_.now_us(), heal_at + o_.liveness_us));
    clients_running_ = false;
    // Let in-flight operations finish or time out, then give replicas a
    // bounded time to catch up (slow disks and one-entry appends make that
    // take a while; a replica that never catches up is a liveness bug).
    world_.RunUntil(world_.now_us() + o_.client_timeout_us);
    int64_t deadline = world_.now_us() + limits::kSimConvergeUs;
    while (!failed() && world_.now_us() < deadline && !Converged()) {
      world_.RunUntil(world_.now_us() + 100'000);
    }
    if (!failed() && !Converged()) {
      // Where each replica stands, for whoever reads the failure.
      std::string where;
      const NodeId l = LeaderNode();
      if (l == kNoNode) {
        where = "no leader";
      } else {
        const node::Node& leader = *Live(l);
        where = absl::StrCat("leader ", l.value(), " applied ", leader.applied_index().value(),
                             " of ", leader.raft().log().last_index().value());
        for (NodeId id : raft::AllMembers(leader.raft().conf())) {
          const node::Node* n = Live(id);
          absl::StrAppend(&where, "; node ", id.value(), " ",
                          n == nullptr
                              ? std::string("down")
                              : absl::StrCat("applied ", n->applied_index().value(), " (term ",
                                             n->raft().term().value(), ", last ",
                                             n->raft().log().last_index().value(), ", commit ",
                                             n->raft().log().committed().value(), ")"));
        }
      }
      Fail(absl::StrCat("liveness: replicas did not converge within ",
                        limits::kSimConvergeUs / 1'000'000, " s after the clients stopped (", where,
                        ")"));
    }
    if (!failed()) CheckFinal();
  }
  CollectSdkStats();
  for (const auto& [id, m] : members_)
    CollectLogStats(id);
  result_.stats.virtual_us = world_.now_us();
  result_.stats.events = world_.events_run();
  result_.stats.messages = world_.messages_sent();
  result_.stats.messages_dropped = world_.messages_dropped();
  result_.stats.applied_entries = invariants_.applied_entries();
  result_.trace_tail.assign(trace_.begin(), trace_.end());
  // Members must go before the world they live in.
  members_.clear();
  return result_;
}

SimResult Simulation::Aborted(const std::string& what) {
  Fail(what);
  result_.stats.virtual_us = world_.now_us();
  result_.stats.events = world_.events_run();
  result_.trace_tail.assign(trace_.begin(), trace_.end());
  return result_;
}

}  // namespace detail

SimResult RunSimulation(const SimOptions& options) {
  core::AssertHandler old = core::SetAssertHandler(&detail::ThrowAssertion);
  SimResult result;
  {
    detail::Simulation sim(options);
    try {
      result = sim.Run();
    } catch (const detail::AssertionFired& a) {
      // Leave the handler in place while the half-run simulation unwinds.
      result = sim.Aborted(a.what);
    }
  }
  core::SetAssertHandler(old);
  return result;
}

}  // namespace bw::sim
