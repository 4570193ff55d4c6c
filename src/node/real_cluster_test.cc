// Three node::Node replicas — the code the simulator runs — on RealEnv: one
// real event loop, TCP between them on loopback, WALs on the real disk.
// They elect a leader and replicate a write to all three; when the leader
// goes away (its node and network destroyed) the other two elect a new one
// and take writes; every acknowledged write is on the survivors.
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "env/real/event_loop.h"
#include "env/real/real_env.h"
#include "env/real/testing/eventually.h"
#include "node/node.h"
#include "node/testing/registers.h"
#include "transport/tcp_network.h"

namespace bw::node {
namespace {

using env::testing::Eventually;
using env::testing::OnLoop;

class RealClusterTest : public ::testing::Test {
 protected:
  struct Member {
    std::unique_ptr<transport::TcpNetwork> net;
    std::unique_ptr<env::RealEnv> env;
    std::unique_ptr<Node> node;
  };

  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("bw_real_cluster_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->random_seed());
    std::filesystem::remove_all(dir_);
    loop_.Start();
    OnLoop(loop_, [&] {
      for (int i = 1; i <= 3; ++i) {
        transport::TcpNetworkOptions o;
        o.self = NodeId(i);
        o.cluster_id = 0xC1;
        absl::StatusOr<std::unique_ptr<transport::TcpNetwork>> net =
            transport::TcpNetwork::Listen(loop_, o);
        ASSERT_TRUE(net.ok()) << net.status();
        members_[NodeId(i)].net = std::move(*net);
      }
      for (auto& [id, m] : members_) {
        for (auto& [peer, other] : members_) {
          if (peer != id) m.net->SetPeer(peer, "127.0.0.1", other.net->port());
        }
        m.env = std::make_unique<env::RealEnv>(loop_, *m.net);
        NodeOptions o;
        o.id = id;
        o.initial_voters = {NodeId(1), NodeId(2), NodeId(3)};
        o.cluster_id = 0xC1;
        o.data_dir = (dir_ / absl::StrCat("n", id.value())).string();
        o.tick_us = 10'000;
        o.state_machine = testing::NewRegisters;
        o.raft.random_seed = id.value();
        absl::StatusOr<std::unique_ptr<Node>> n = Node::Start(*m.env, o, nullptr);
        ASSERT_TRUE(n.ok()) << n.status();
        m.node = std::move(*n);
      }
    });
  }
  void TearDown() override {
    OnLoop(loop_, [&] { members_.clear(); });
    loop_.Stop();
    std::filesystem::remove_all(dir_);
  }
  // The leader every live member agrees on, or kNoNode.
  NodeId Leader() {
    return OnLoop(loop_, [&] {
      NodeId l = kNoNode;
      for (auto& [id, m] : members_) {
        if (m.node->raft().role() == raft::Role::kLeader) l = id;
      }
      if (l == kNoNode) return kNoNode;
      for (auto& [id, m] : members_) {
        if (m.node->raft().leader() != l) return kNoNode;
      }
      return l;
    });
  }
  // Proposes through `via`; waits for the answer.
  absl::StatusOr<kv::KvResult> Put(NodeId via, uint64_t seq, std::string value) {
    std::promise<absl::StatusOr<kv::KvResult>> p;
    auto f = p.get_future();
    OnLoop(loop_, [&] {
      kv::KvCommand cmd;
      cmd.request_id = kv::MakeRequestId(7, seq);
      cmd.key = absl::StrCat("k", seq);
      cmd.value = std::move(value);
      testing::Write(*members_.at(via).node, cmd,
                     [&p](absl::StatusOr<kv::KvResult> r) { p.set_value(std::move(r)); });
    });
    return f.get();
  }
  std::optional<std::string> Get(NodeId on, const std::string& key) {
    return OnLoop(loop_, [&] { return testing::Registers(*members_.at(on).node).Get(key); });
  }

  std::filesystem::path dir_;
  env::EventLoop loop_;
  std::map<NodeId, Member> members_;
};

TEST_F(RealClusterTest, ElectsReplicatesAndSurvivesTheLeadersLoss) {
  ASSERT_TRUE(Eventually([&] { return Leader() != kNoNode; }));
  const NodeId first = Leader();
  absl::StatusOr<kv::KvResult> r = Put(first, 1, "one");
  ASSERT_TRUE(r.ok()) << r.status();
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(Eventually([&] { return Get(NodeId(i), "k1") == "one"; })) << "node " << i;
  }

  // The leader goes away: its node, then its network.
  OnLoop(loop_, [&] { members_.erase(first); });
  ASSERT_TRUE(Eventually([&] {
    NodeId l = Leader();
    return l != kNoNode && l != first;
  }));
  const NodeId second = Leader();
  r = Put(second, 2, "two");
  ASSERT_TRUE(r.ok()) << r.status();
  for (auto& [id, m] : members_) {
    EXPECT_TRUE(Eventually([&, id = id] { return Get(id, "k2") == "two"; })) << "node " << id;
    EXPECT_EQ(Get(id, "k1"), "one");
  }
}

}  // namespace
}  // namespace bw::node
