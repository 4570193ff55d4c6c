// Proves what a single node does when its disk fails, on a SimWorld:
//   - A full disk raises the NOSPACE alarm: the write in hand waits, new
//     writes are refused with etcd's "database space exceeded" (certainly
//     not applied), reads go on; when space returns the node persists the
//     waiting Ready by itself, clears the alarm and the write completes.
//   - A failed fsync halts the node: OnHalted is called once with the
//     error, the waiting write is answered DEADLINE_EXCEEDED (outcome
//     unknown), later writes are UNAVAILABLE, and nothing it did not sync is
//     acknowledged. Restarted on the same disk (faults off), it recovers
//     every write acknowledged before the failure.
#include "node/node.h"
#include "node/testing/registers.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "env/sim/sim_world.h"

namespace bw::node {
namespace {

using ::testing::HasSubstr;

class HaltObserver : public NodeObserver {
 public:
  void OnHalted(NodeId id, const absl::Status& why) override {
    ++halts;
    last = why;
  }
  int halts = 0;
  absl::Status last;
};

class NodeDiskTest : public ::testing::Test {
 protected:
  NodeDiskTest() : world_(11), env_(world_.AddNode(NodeId(1))) {}

  void StartNode() {
    NodeOptions o;
    o.id = NodeId(1);
    o.initial_voters = {NodeId(1)};
    o.raft.random_seed = 5;
    o.wal_segment_bytes = 4096;
    o.state_machine = testing::NewRegisters;
    absl::StatusOr<std::unique_ptr<Node>> n = Node::Start(env_, o, &observer_);
    ASSERT_TRUE(n.ok()) << n.status();
    node_ = std::move(*n);
  }
  void Run(int64_t us) { world_.RunUntil(world_.now_us() + us); }
  // Runs until the node leads (a single voter elects itself).
  void WaitForLeader() {
    for (int i = 0; i < 100 && node_->raft().leader() != NodeId(1); ++i)
      Run(100'000);
    ASSERT_EQ(node_->raft().leader(), NodeId(1));
  }
  // Proposes a put and returns a slot that holds the answer once it comes.
  std::shared_ptr<std::optional<absl::StatusOr<kv::KvResult>>> Put(uint64_t seq,
                                                                   std::string value) {
    auto out = std::make_shared<std::optional<absl::StatusOr<kv::KvResult>>>();
    kv::KvCommand cmd;
    cmd.request_id = kv::MakeRequestId(1, seq);
    cmd.key = absl::StrCat("k", seq);
    cmd.value = std::move(value);
    testing::Write(*node_, cmd, [out](absl::StatusOr<kv::KvResult> r) { *out = std::move(r); });
    return out;
  }

  env::SimWorld world_;
  env::SimEnv& env_;
  HaltObserver observer_;
  std::unique_ptr<Node> node_;
};

TEST_F(NodeDiskTest, FullDiskRaisesTheNoSpaceAlarmAndRecoversWhenSpaceReturns) {
  StartNode();
  WaitForLeader();
  auto first = Put(1, "before");
  Run(1'000'000);
  ASSERT_TRUE(first->has_value() && (*first)->ok());

  env::SimDisk& disk = env_.sim_disk();
  env::SimDiskFaults full;
  full.capacity_bytes = disk.used_bytes();
  disk.set_faults(full);
  auto waiting = Put(2, std::string(200, 'x'));
  Run(1'000'000);
  EXPECT_FALSE(waiting->has_value()) << "a write that could not be persisted was answered";
  EXPECT_TRUE(node_->no_space());
  EXPECT_TRUE(node_->halted().ok());
  auto refused = Put(3, "refused");
  ASSERT_TRUE(refused->has_value());
  EXPECT_TRUE(absl::IsResourceExhausted((*refused)->status()));
  EXPECT_THAT((*refused)->status().message(), HasSubstr("database space exceeded"));
  // Reads go on.
  absl::StatusOr<std::optional<std::string>> read = absl::UnknownError("no answer");
  testing::Read(*node_, "k1", /*linearizable=*/false,
                [&](absl::StatusOr<std::optional<std::string>> r) { read = std::move(r); });
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, std::optional<std::string>("before"));

  disk.set_faults(env::SimDiskFaults{});
  Run(1'000'000);
  EXPECT_FALSE(node_->no_space());
  ASSERT_TRUE(waiting->has_value());
  EXPECT_TRUE((*waiting)->ok()) << (*waiting)->status();
  EXPECT_EQ(testing::Registers(*node_).Get("k2"), std::string(200, 'x'));
  EXPECT_EQ(testing::Registers(*node_).Get("k3"), std::nullopt);
  EXPECT_EQ(observer_.halts, 0);
}

TEST_F(NodeDiskTest, FailedSyncHaltsAndARestartKeepsWhatWasAcknowledged) {
  StartNode();
  WaitForLeader();
  std::vector<std::shared_ptr<std::optional<absl::StatusOr<kv::KvResult>>>> acked;
  for (uint64_t seq = 1; seq <= 5; ++seq)
    acked.push_back(Put(seq, absl::StrCat("v", seq)));
  Run(1'000'000);
  for (auto& a : acked)
    ASSERT_TRUE(a->has_value() && (*a)->ok());

  env::SimDiskFaults eio;
  eio.sync_eio = 1;
  env_.sim_disk().set_faults(eio);
  auto lost = Put(6, "never synced");
  Run(1'000'000);
  EXPECT_EQ(observer_.halts, 1);
  EXPECT_TRUE(absl::IsDataLoss(observer_.last)) << observer_.last;
  EXPECT_THAT(observer_.last.message(), HasSubstr("fdatasync"));
  EXPECT_FALSE(node_->halted().ok());
  ASSERT_TRUE(lost->has_value());
  EXPECT_TRUE(absl::IsDeadlineExceeded((*lost)->status())) << (*lost)->status();
  auto after = Put(7, "after");
  ASSERT_TRUE(after->has_value());
  EXPECT_TRUE(absl::IsUnavailable((*after)->status()));
  Run(1'000'000);
  EXPECT_EQ(observer_.halts, 1);

  // Restart on the same disk: what was acknowledged is there.
  node_.reset();
  world_.Crash(NodeId(1));
  env_.sim_disk().set_faults(env::SimDiskFaults{});
  world_.Restart(NodeId(1));
  StartNode();
  WaitForLeader();
  Run(1'000'000);
  for (uint64_t seq = 1; seq <= 5; ++seq)
    EXPECT_EQ(testing::Registers(*node_).Get(absl::StrCat("k", seq)), absl::StrCat("v", seq));
  EXPECT_EQ(testing::Registers(*node_).Get("k7"), std::nullopt);
}

// Three nodes whose Raft logs keep no applied entry in memory
// (log_cache_bytes 0): a follower that was down while the others took 200
// writes catches up from the leader's WAL (no snapshot: none is taken),
// and afterwards no node holds more than its unapplied entries in memory.
TEST(NodeLogCacheTest, ALaggingFollowerCatchesUpFromTheLeadersWal) {
  env::SimWorld world(21);
  std::map<NodeId, env::SimEnv*> envs;
  std::map<NodeId, std::unique_ptr<Node>> nodes;
  for (int i = 1; i <= 3; ++i)
    envs[NodeId(i)] = &world.AddNode(NodeId(i));
  auto start = [&](NodeId id) {
    NodeOptions o;
    o.id = id;
    o.initial_voters = {NodeId(1), NodeId(2), NodeId(3)};
    o.raft.random_seed = id.value();
    o.raft.log_cache_bytes = 0;
    o.raft.max_append_bytes = 4096;  // many appends, each read back
    o.wal_segment_bytes = 8192;      // and across segments
    o.state_machine = testing::NewRegisters;
    absl::StatusOr<std::unique_ptr<Node>> n = Node::Start(*envs[id], o, nullptr);
    ASSERT_TRUE(n.ok()) << n.status();
    nodes[id] = std::move(*n);
  };
  for (int i = 1; i <= 3; ++i)
    start(NodeId(i));
  auto run = [&](int64_t us) { world.RunUntil(world.now_us() + us); };
  auto leader = [&]() -> NodeId {
    for (auto& [id, n] : nodes) {
      if (n != nullptr && n->raft().role() == raft::Role::kLeader) return id;
    }
    return kNoNode;
  };
  for (int i = 0; i < 100 && leader() == kNoNode; ++i)
    run(100'000);
  const NodeId lead = leader();
  ASSERT_NE(lead, kNoNode);
  const NodeId down = lead == NodeId(3) ? NodeId(2) : NodeId(3);
  nodes[down].reset();
  world.Crash(down);

  int acked = 0;
  for (uint64_t seq = 1; seq <= 200; ++seq) {
    kv::KvCommand cmd;
    cmd.request_id = kv::MakeRequestId(9, seq);
    cmd.key = absl::StrCat("k", seq);
    cmd.value = std::string(100, static_cast<char>('a' + seq % 26));
    testing::Write(*nodes[lead], cmd, [&acked](absl::StatusOr<kv::KvResult> r) {
      if (r.ok()) ++acked;
    });
    run(2'000);
  }
  run(1'000'000);
  ASSERT_EQ(acked, 200);
  const raft::RaftLog& log = nodes[lead]->raft().log();
  EXPECT_GT(log.cached_after(), LogIndex(200)) << "applied entries stayed in memory";
  const uint64_t read_before = nodes[lead]->raft().log_entries_read();

  world.Restart(down);
  start(down);
  run(3'000'000);
  for (uint64_t seq = 1; seq <= 200; ++seq) {
    ASSERT_EQ(testing::Registers(*nodes[down]).Get(absl::StrCat("k", seq)),
              std::string(100, static_cast<char>('a' + seq % 26)))
        << "k" << seq;
  }
  EXPECT_GE(nodes[lead]->raft().log_entries_read() - read_before, 200u);
  EXPECT_EQ(nodes[lead]->raft().log_read_failures(), 0u);
  for (auto& [id, n] : nodes) {
    EXPECT_EQ(n->raft().log().cached_bytes(), 0u) << "node " << id.value();
    EXPECT_EQ(n->raft().log().applied(), n->raft().log().last_index()) << "node " << id.value();
  }
}

}  // namespace
}  // namespace bw::node
