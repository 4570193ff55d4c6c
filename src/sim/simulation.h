// The simulator's insides, shared by simulator.cc (the cluster, the
// faults, the registers workload and the final checks) and one file per
// other workload (workload_*.cc). Not the simulator's interface: that is
// sim/simulator.h.
#pragma once

#include <any>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "check/auth_revocation.h"
#include "check/exactly_once.h"
#include "check/history.h"
#include "check/lease_expiry.h"
#include "check/raft_invariants.h"
#include "check/record_fencing.h"
#include "check/watch_stream.h"
#include "client/pipeline.h"
#include "env/sim/sim_world.h"
#include "kv/mvcc.h"
#include "member/member.h"
#include "sim/simulator.h"

namespace bw::sim::detail {

// Every fault family and its name (--faults).
inline constexpr std::pair<Fault, const char*> kFaultNames[] = {
    {kFaultDrop, "drop"},
    {kFaultDuplicate, "duplicate"},
    {kFaultReorder, "reorder"},
    {kFaultPartition, "partition"},
    {kFaultCrash, "crash"},
    {kFaultDrift, "drift"},
    {kFaultMembership, "membership"},
    {kFaultSnapshot, "snapshot"},
    {kFaultBuggify, "buggify"},
    {kFaultTransfer, "transfer"},
    {kFaultFigure8, "figure8"},
    {kFaultDisk, "disk"},
};

// The proposer id of the figure-8 fault's empty entries (no workload client
// has it).
constexpr uint64_t kFigure8Client = uint64_t{1} << 23;

// The clients' clock and timers (SimOptions::sdk_clients): true simulated
// time, on the world's event queue. Clients run on no member's machine, so
// no member's clock drift touches them.
class ClientTime final : public env::Clock, public env::Timers {
 public:
  explicit ClientTime(env::SimWorld& world) : world_(world) {}
  int64_t NowMicros() override { return world_.now_us(); }
  env::TimerId Schedule(int64_t delay_us, std::function<void()> fn) override;
  void Cancel(env::TimerId id) override { pending_.erase(id); }

 private:
  env::SimWorld& world_;
  env::TimerId next_ = 0;
  std::set<env::TimerId> pending_;
};

class Simulation : public node::NodeObserver {
 public:
  explicit Simulation(const SimOptions& o) : o_(o), world_(o.seed) { history_.set_time_unit("ns"); }
  // Members answer their waiting clients as they go; they must go first.
  ~Simulation() override { members_.clear(); }

  SimResult Run();
  // The result of a run stopped by an assertion.
  SimResult Aborted(const std::string& what);

  // --- NodeObserver ---
  void OnPersisted(NodeId id, const raft::Ready& rd) override;
  void OnApplied(NodeId id, const raft::Entry& e, uint64_t digest) override;
  void OnSnapshotInstalled(NodeId id, const raft::SnapshotMeta& meta, uint64_t digest) override;
  void OnRoleChange(NodeId id, const raft::SoftState& ss) override;
  void OnHalted(NodeId id, const absl::Status& why) override;

 private:
  struct Client {
    uint64_t id;
    uint64_t seq = 0;
    NodeId target;
    bool busy = false;
    uint64_t op_serial = 0;  // guards against late callbacks
    // The exactly-once workload: the keyed request being retried (an index
    // into keyed_), -1 for none; requests started so far.
    int64_t keyed_op = -1;
    uint64_t keyed_started = 0;
    // The leases workload: the client's lease (0 for none).
    int64_t lease = 0;
    int64_t lease_ttl_s = 0;
    int keepalives_left = 0;  // then it is left to lapse
    // The watches workload: a watcher (or a writer), the member it watches
    // through, its stream there and the incarnation of that member's hub.
    bool watcher = false;
    NodeId watch_node = kNoNode;
    uint64_t watch_stream = 0;
    uint64_t watch_gen = 0;
    // The records workload: the job key held, its token and lock, the
    // checkpoints left before it completes.
    std::string record_key;
    uint64_t record_token = 0;
    int64_t record_ttl_ms = 0;
    int record_steps_left = 0;
    // The auth workload: the token this user's client holds ("" for none),
    // and how many it asked for.
    std::string auth_token;
    uint64_t auth_tokens = 0;
    // SDK clients: the client's pipeline (every member of universe_ an
    // endpoint, in order) and its attempts so far (each attempt is a
    // proposal of its own, with a request id of its own).
    std::unique_ptr<client::Pipeline> pipeline;
    uint64_t sdk_attempts = 0;
  };
  // One operation of the registers workload: a read of `key`, or a put or
  // compare-and-set of `value` (unique to the write) sent as `Keyed(k)`.
  struct RegisterOp {
    check::OpKind kind = check::OpKind::kRead;
    std::string key;
    std::string value;
    std::string expected;  // a compare-and-set's
    etcdserverpb::PutRequest put;
    etcdserverpb::TxnRequest txn;  // a compare-and-set's
    // The write's request with idempotency key `k`.
    bulwark::internal::Request Keyed(const std::string& k) const;
  };
  // A lease of the leases workload: on which replicas it was seen.
  struct LeaseTrack {
    std::set<NodeId> seen_on;
    bool revoked = false;
    // The latest an answered extension can make it end, in true time (its
    // TTL on the slowest clock, from the answer).
    int64_t latest_end_us = 0;
  };
  // One keyed request of the exactly-once workload and every answer to it.
  struct KeyedOp {
    check::KeyedRequest seen;  // what the checker is given
    uint64_t client = 0;
    bulwark::internal::Request request;  // without a proposal id
    int64_t invoke_stamp = 0;
  };

  // History times: virtual nanoseconds, strictly increasing in event order,
  // so that two events at the same simulated microsecond keep their real
  // order (the checker treats equal times as concurrent).
  int64_t Stamp() {
    last_stamp_ = std::max(last_stamp_ + 1, world_.now_us() * 1000);
    return last_stamp_;
  }
  void Trace(std::string line);
  void Fail(std::string what);
  bool failed() const { return !result_.violation.empty(); }
  env::Random& rng() { return world_.random(); }

  void SetUpNode(NodeId id, bool initial);
  void StartNode(NodeId id);
  // The member `id` as this run constructs it (its node's options, the
  // planted bugs, the simulation as its observer).
  member::MemberOptions MemberOptionsFor(NodeId id);
  // Latent corruption of o_.corrupt_nodes voters (see SimOptions).
  void Corrupt();
  // A majority of the initial voters is damaged: no progress is possible.
  bool HaltExpected() const;
  void CheckHalted();
  // Linearizability of the whole history.
  void CheckHistory();
  // Sets node `id`'s disk faults: the background ones, or none (`calm`).
  void SetDiskFaults(NodeId id, bool calm);
  void CrashNode(NodeId id);
  void ScheduleRestart(NodeId id);
  void ScheduleProgress();
  void Figure8();
  void Figure8OtherLeader(NodeId o, NodeId f, Term old_term, int tries);
  // Cuts the other side's leader `m` off from every node, crashes it soon
  // after and heals the rest (then Figure8KillNext).
  void Figure8CutOff(NodeId m);
  // Waits for a leader elected after `m`'s term (OnRoleChange), crashes it
  // soon after and starts `m` again (Figure8Kill).
  void Figure8KillNext(NodeId m, Term m_term);
  void Figure8Kill(NodeId l, NodeId m);
  void ChurnStep(int64_t until_us);
  // The live member `id` (its node), or null.
  node::Node* Live(NodeId id);
  member::Member* LiveMember(NodeId id);
  std::vector<NodeId> Members();  // voters and learners of the latest config
  std::vector<NodeId> Voters();   // voters (both halves) of the latest config
  const raft::ConfState* LatestConf();
  NodeId LeaderNode();

  void ClientStep(Client& c);
  // The registers workload (see Workload::kRegisters).
  void RegistersClientStep(Client& c);
  RegisterOp NextRegisterOp(Client& c);
  // The registers workload's operation as one call of the client's SDK
  // pipeline (SimOptions::sdk_clients).
  void RegistersSdkCall(Client& c, RegisterOp op);
  // One attempt of such a call on member universe_[a.endpoint].
  void RegistersSdkAttempt(Client& c, const RegisterOp& op, const client::Attempt& a,
                           client::Pipeline::AttemptDone done,
                           std::function<void(std::string, bool, bool)> answer);
  // The SDK clients' pipelines' counts, into the stats.
  void CollectSdkStats();
  // Adds a member's Raft log reads to the stats (before it goes).
  void CollectLogStats(NodeId id);
  // One attempt of the client's keyed request, to c.target (`members`: where
  // a concurrent copy may go).
  void KeyedClientStep(Client& c, const std::vector<NodeId>& members);
  // A new keyed request for client `c` (an index into keyed_).
  int64_t NewKeyedOp(Client& c);
  // Sends one attempt of keyed_[op] to node `n`; `drives` is false for a
  // concurrent copy whose answer is recorded but does not move the client on.
  void SendKeyed(Client& c, int64_t op, NodeId n, bool drives);
  // Checks the exactly-once workload against the leader's store (see Workload).
  void CheckExactlyOnce(node::Node& leader);
  bool keyed() const { return o_.workload == Workload::kExactlyOnce; }
  bool leases() const { return o_.workload == Workload::kLeases; }
  bool watches() const { return o_.workload == Workload::kWatches; }
  bool records() const { return o_.workload == Workload::kRecords; }
  bool auth() const { return o_.workload == Workload::kAuth; }
  // The auth workload (see Workload::kAuth): the administrator (the first
  // client) and the users.
  void AuthClientStep(Client& c);
  void AuthAdminStep(Client& c);
  void AuthUserStep(Client& c);
  // After node `id` applied `e`: a write applied must have been permitted
  // at that point of the log.
  void ObserveAuthApply(NodeId id, const raft::Entry& e);
  // At the end: some user operation was answered after healing.
  void CheckAuthServed();
  // The records workload (see Workload::kRecords).
  void RecordsClientStep(Client& c);
  // After node `id` applied something: the tokens its records now hold.
  void ObserveRecords(NodeId id);
  // At the end: some job was completed after healing.
  void CheckRecordsServed();
  // The watches workload (see Workload::kWatches).
  void WatchesClientStep(Client& c);
  void WriterStep(Client& c);
  // Whether the watcher's stream is still open on a live member's hub.
  bool WatchConnected(const Client& c);
  // Opens the watcher's stream on node `id`, from the revision it needs.
  void ConnectWatcher(Client& c, NodeId id);
  void OnWatchReply(Client& c, uint64_t gen, const etcdserverpb::WatchResponse& r);
  // At the end: every watcher catches up with the leader.
  void CheckWatchesCaughtUp(NodeId leader);
  // The leases workload (see Workload::kLeases).
  void LeaseClientStep(Client& c);
  // Proposes `r` through member `id` (member::Member::Propose: the quota,
  // its reckoning of log time) with the client's request id.
  void ProposeAsMember(NodeId id, bulwark::internal::Request r, uint64_t request_id,
                       node::ProposeCallback done);
  // After node `id` applied something: revocations.
  void ObserveLeases(NodeId id);
  // At the end: the service answered after healing, and every lease whose
  // time ran out well before the end is gone.
  void CheckLeasesExpired();
  void ScheduleClient(Client& c, int64_t delay_us);
  // Starts an operation of client `c` (busy until it ends) and returns what
  // ends it: called with true when it was answered, and with false by itself
  // once the client's timeout passes. The first call counts the outcome,
  // forgets the member after no answer, and schedules the client's next step
  // after `pause(client, answered)`; later calls (and an older operation's)
  // do nothing.
  using Finish = std::function<void(bool)>;
  Finish StartOp(Client& c, std::function<int64_t(Client&, bool)> pause);
  void Nemesis();
  void ScheduleNemesis();
  void Partition();
  void ChangeMembership(node::Node& leader);
  void Heal();

  bool CheckLiveness();
  // Every member has applied everything the leader holds.
  bool Converged();
  void CheckFinal();
  // Replaces each damaged voter with a spare member (see SimOptions).
  void Rebuild();

  const SimOptions& o_;
  env::SimWorld world_;
  std::vector<NodeId> universe_;
  // Every live member, as production constructs it (member::Member).
  std::map<NodeId, std::unique_ptr<member::Member>> members_;
  std::map<NodeId, node::NodeOptions> node_options_;
  // The SDK clients' time (before clients_: their pipelines cancel timers
  // as they go).
  ClientTime client_time_{world_};
  std::vector<Client> clients_;
  check::History history_;
  check::RaftInvariants invariants_;
  // The registers workload: the values of acknowledged writes.
  std::set<std::string> acked_values_;
  std::vector<KeyedOp> keyed_;
  std::deque<std::string> trace_;
  SimResult result_;
  bool safety_phase_ = true;
  // A figure-8 fault waiting for the other side to elect a leader, which
  // OnRoleChange cuts off the moment it is elected (see Figure8).
  struct Figure8Watch {
    uint64_t serial = 0;
    NodeId o, f;
    Term old_term;
  };
  std::optional<Figure8Watch> figure8_;
  // Then the leader elected after the cut-off one's term (o is the cut-off
  // one, old_term its term).
  std::optional<Figure8Watch> figure8_next_;
  uint64_t figure8_serial_ = 0;
  // The nemesis leaves a figure-8 under way alone until then: the other
  // side needs an election timeout or two to elect its leader, longer than
  // the nemesis usually waits before it heals or cuts the network again.
  int64_t figure8_quiet_until_us_ = 0;
  bool clients_running_ = true;
  bool buggify_ = false;
  int64_t last_stamp_ = 0;
  // Acknowledged writes invoked after healing (the service must work again).
  int64_t heal_stamp_ = -1;
  // When the latent corruption struck (Corrupt), and whom it struck.
  int64_t corrupt_stamp_ = -1;
  std::set<NodeId> damaged_;
  // Each live member's store (set as the member makes it, so that what it
  // applies while it starts is seen too), and the leases workload's leases.
  std::map<NodeId, kv::MvccStore*> stores_;
  std::map<int64_t, LeaseTrack> leases_;
  check::LeaseExpiryChecker lease_checker_;
  double max_clock_rate_ = 1.0;
  double min_clock_rate_ = 1.0;
  bool lease_served_after_heal_ = false;
  // The watches workload: each member's incarnation (a restart ends every
  // stream of its hub), the checker.
  std::map<NodeId, uint64_t> hub_gen_;
  check::WatchStreamChecker watch_checker_;
  uint64_t watch_serial_ = 0;
  // The records workload: each job slot's current generation (a completed
  // job moves its slot on to a new key), the checker.
  std::vector<uint64_t> record_gen_;
  check::RecordFencingChecker record_checker_;
  bool record_served_after_heal_ = false;
  // The auth workload: the administrator's next setup step (the setup is
  // done once it passes the last), whether each user's permission is
  // granted as the administrator last asked, the checker, each store's
  // revision after the last entry it applied (-1: not known).
  std::vector<bulwark::internal::Request> auth_setup_;  // built once, at the first step
  size_t auth_setup_step_ = 0;
  std::map<uint64_t, bool> auth_granted_;
  check::AuthRevocationChecker auth_checker_;
  std::map<NodeId, int64_t> auth_last_revision_;
  bool auth_served_after_heal_ = false;
};

}  // namespace bw::sim::detail
