// Proves that no lease is revoked before its TTL has passed on the leader's
// clock, however far behind the member that granted it reckons log time —
// the open bug "leases granted through a lagging follower can expire early".
//
// Three nodes run the member's own pieces in simulated time: node::Node with
// the MVCC state machine, member::LogTime stamping proposals and deciding
// the leader's ticks, exactly as server::EtcdServer uses them. A follower is
// made to apply the leader's ticks late (its link from the leader is cut for
// a while, or its clock runs slow), and a lease is granted through it at the
// moment its reckoning of log time is furthest behind. The test measures, on
// the leader's clock, how long the lease lived: from its grant applying on
// the leader to its revocation applying there.
//
// The planted bug `proposer time` (MvccStore::set_planted_proposer_time:
// leases start from the proposer's reckoning, as before the leader stamped
// entries) makes the same runs revoke the lease early, so the measurement
// can fail.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "env/sim/sim_world.h"
#include "kv/mvcc.h"
#include "member/log_time.h"
#include "node/node.h"

namespace bw::member {
namespace {

constexpr int64_t kTickUs = 100'000;  // the member's heartbeat, and its lease timer
constexpr int64_t kTtlS = 3;

class Observer : public node::NodeObserver {
 public:
  explicit Observer(std::function<void(NodeId)> applied) : applied_(std::move(applied)) {}
  void OnApplied(NodeId id, const raft::Entry&, uint64_t) override { applied_(id); }
  void OnSnapshotInstalled(NodeId id, const raft::SnapshotMeta&, uint64_t) override {
    applied_(id);
  }

 private:
  std::function<void(NodeId)> applied_;
};

// One member's pieces on a SimEnv, as EtcdServer wires them.
struct Member {
  env::SimEnv* env = nullptr;
  kv::MvccStore* state = nullptr;  // owned by node
  std::unique_ptr<LogTime> log_time;
  std::unique_ptr<node::Node> node;
  uint64_t next_request = 1;
};

class LeaseCluster {
 public:
  void Start(uint64_t seed, bool planted) {
    world_ = std::make_unique<env::SimWorld>(seed);
    observer_ = std::make_unique<Observer>([this](NodeId id) {
      Member& m = members_.at(id.value());
      m.log_time->Observe(m.state->log_time_us());
      if (id != NodeId(leader_) || lease_ == 0 || revoked_at_us_ >= 0) return;
      const bool exists = m.state->GetLease(lease_, 0, false) != std::nullopt;
      if (exists) lease_seen_ = true;
      if (!exists && lease_seen_) revoked_at_us_ = world_->now_us();
    });
    for (uint64_t i = 1; i <= 3; ++i) {
      Member& m = members_[i];
      m.env = &world_->AddNode(NodeId(i));
      m.log_time = std::make_unique<LogTime>(m.env->clock());
      node::NodeOptions o;
      o.id = NodeId(i);
      o.initial_voters = {NodeId(1), NodeId(2), NodeId(3)};
      o.raft.random_seed = seed + i;
      o.tick_us = kTickUs;
      // A follower cut off from the leader for 1.6 s must not campaign.
      o.raft.election_ticks = 30;
      o.state_machine = [&m, planted] {
        auto s = std::make_unique<kv::MvccStore>();
#ifdef BW_PLANTED_BUGS
        s->set_planted_proposer_time(planted);
#else
        (void)planted;
#endif
        m.state = s.get();
        return s;
      };
      absl::StatusOr<std::unique_ptr<node::Node>> n = node::Node::Start(*m.env, o, observer_.get());
      ASSERT_TRUE(n.ok()) << n.status();
      m.node = std::move(*n);
      ScheduleLeaseTimer(i);
    }
  }

  // EtcdServer::OnLeaseTimer: each heartbeat, the leader ticks when due.
  void ScheduleLeaseTimer(uint64_t i) {
    Member& m = members_.at(i);
    m.env->timers().Schedule(kTickUs, [this, i] {
      Member& m = members_.at(i);
      ScheduleLeaseTimer(i);
      if (m.node->raft().role() != raft::Role::kLeader) return;
      std::optional<int64_t> now = m.log_time->TickDue(*m.state);
      if (!now) return;
      bulwark::internal::Request r;
      r.mutable_tick()->set_now_us(*now);
      Propose(i, std::move(r), [&m](absl::StatusOr<std::any>) { m.log_time->TickDone(); });
    });
  }

  // EtcdServer::Propose: the proposer stamps the request with its own
  // reckoning of log time.
  void Propose(uint64_t i, bulwark::internal::Request req, node::ProposeCallback done) {
    Member& m = members_.at(i);
    req.set_id(m.next_request++);
    req.set_time_us(m.log_time->Now(m.state->log_time_us()));
    std::string data;
    req.SerializeToString(&data);
    m.node->Propose(req.id(), std::move(data), std::move(done));
  }

  void Run(int64_t us) {
    world_->RunUntil(world_->now_us() + us);
  }

  uint64_t WaitForLeader() {
    for (int i = 0; i < 100; ++i) {
      for (auto& [id, m] : members_) {
        if (m.node->raft().role() == raft::Role::kLeader) return id;
      }
      Run(kTickUs);
    }
    ADD_FAILURE() << "no leader";
    return 0;
  }

  // A lease kept for the whole run, so that log time matters from the start.
  void KeepALease(uint64_t via) {
    bulwark::internal::Request r;
    r.mutable_lease_grant()->set_id(1);
    r.mutable_lease_grant()->set_ttl(1000);
    Propose(via, std::move(r), [](absl::StatusOr<std::any>) {});
    Run(20 * kTickUs);
  }

  // Grants lease 2 through `via`, then runs until it is revoked on the
  // leader. Returns how long it lived, from the moment the client sent the
  // grant to its revocation applying on the leader, on the leader's clock
  // (its rate is 1: the world's time). A client that starts counting the TTL
  // when it sends the grant must never see the lease gone before the TTL.
  int64_t GrantAndMeasure(uint64_t via) {
    lease_ = 2;
    bulwark::internal::Request r;
    r.mutable_lease_grant()->set_id(lease_);
    r.mutable_lease_grant()->set_ttl(kTtlS);
    const int64_t sent_at_us = world_->now_us();
    Propose(via, std::move(r),
            [](absl::StatusOr<std::any> res) { EXPECT_TRUE(res.ok()) << res.status(); });
    for (int i = 0; i < 200 && revoked_at_us_ < 0; ++i)
      Run(kTickUs);
    EXPECT_TRUE(lease_seen_) << "the grant never applied on the leader";
    EXPECT_GE(revoked_at_us_, 0) << "the lease was never revoked";
    EXPECT_EQ(members_.at(leader_).node->raft().role(), raft::Role::kLeader)
        << "the leader changed; the measurement needs one leader";
    return revoked_at_us_ - sent_at_us;
  }

  // The scenario of the CI failure (0.7 s early on a 4 s TTL): a follower
  // applies a tick `lag_us` late and the grant goes through it right after,
  // while its reckoning of log time is about `lag_us` behind. (Cutting the
  // link just after a tick applies on the leader would not do: the leader
  // sends the new commit index in the same breath.)
  int64_t LaggingFollower(uint64_t seed, bool planted, int64_t lag_us) {
    Start(seed, planted);
    leader_ = WaitForLeader();
    if (leader_ == 0) return -1;
    const uint64_t follower = leader_ == 1 ? 2 : 1;
    KeepALease(leader_);
    // Just after a tick, cut the leader's messages to the follower until
    // `lag_us` after the next tick, which the follower then applies late.
    WaitForATickOnTheLeader();
    world_->Block(NodeId(leader_), NodeId(follower));
    Run(LogTime::kTickEveryUsWithLeases + lag_us);
    world_->Unblock(NodeId(leader_), NodeId(follower));
    Run(kTickUs + 20'000);  // the next heartbeat brings it up to date
    return GrantAndMeasure(follower);
  }

  // A follower whose clock runs at `rate` reckons log time behind as well;
  // the grant goes through it 0.9 s (leader's time) after a tick, when its
  // reckoning is furthest behind.
  int64_t SlowFollowerClock(uint64_t seed, bool planted, double rate) {
    Start(seed, planted);
    leader_ = WaitForLeader();
    if (leader_ == 0) return -1;
    const uint64_t follower = leader_ == 1 ? 2 : 1;
    world_->SetClockRate(NodeId(follower), rate);
    KeepALease(leader_);
    WaitForATickOnTheLeader();
    Run(900'000);
    return GrantAndMeasure(follower);
  }

 private:
  void WaitForATickOnTheLeader() {
    Member& l = members_.at(leader_);
    const int64_t before = l.state->log_time_us();
    for (int i = 0; i < 100'000 && l.state->log_time_us() == before; ++i)
      Run(100);
    ASSERT_NE(l.state->log_time_us(), before) << "the leader never ticked";
  }

  std::unique_ptr<env::SimWorld> world_;
  std::unique_ptr<Observer> observer_;
  std::map<uint64_t, Member> members_;
  uint64_t leader_ = 0;
  int64_t lease_ = 0;
  bool lease_seen_ = false;  // on the leader
  int64_t revoked_at_us_ = -1;
};

constexpr int64_t kTtlUs = kTtlS * 1'000'000;

TEST(LeaseTimeTest, ALeaseGrantedThroughALaggingFollowerLivesItsTtl) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    LeaseCluster c;
    EXPECT_GE(c.LaggingFollower(seed, false, 600'000), kTtlUs) << "seed " << seed;
  }
}

TEST(LeaseTimeTest, ALeaseGrantedThroughAFollowerWithASlowClockLivesItsTtl) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    LeaseCluster c;
    EXPECT_GE(c.SlowFollowerClock(seed, false, 0.5), kTtlUs) << "seed " << seed;
  }
}

#ifdef BW_PLANTED_BUGS
// The measurement bites: with leases started from the proposer's reckoning
// (the code before the leader stamped entries) both runs revoke early, by
// about the follower's lag.
TEST(LeaseTimeTest, CatchesLeasesStartedFromTheProposersTime) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    LeaseCluster lag;
    EXPECT_LT(lag.LaggingFollower(seed, true, 600'000), kTtlUs - 400'000) << "seed " << seed;
    LeaseCluster slow;
    EXPECT_LT(slow.SlowFollowerClock(seed, true, 0.5), kTtlUs - 200'000) << "seed " << seed;
  }
}
#endif

}  // namespace
}  // namespace bw::member
