// member::Member on a SimWorld, one voter: what the member adds to the node,
// each shown by what the member answers and what its state machine holds.
//   - It publishes its attributes once it knows a leader (etcd's publish).
//   - Past --quota-backend-bytes it refuses writes that grow the data with
//     etcd's "database space exceeded" and raises NOSPACE for the cluster
//     (in the replicated alarms); deletes still go through.
//   - Keep-alives that reach it together, or while one sync is in flight,
//     become one log entry.
//   - With authentication on, a write is stamped with the token's user and
//     refused when the user may not make it; an unknown token is refused.
#include "member/member.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "env/sim/sim_world.h"
#include "kv/auth.h"
#include "kv/etcd_errors.h"

namespace bw::member {
namespace {

class MemberTest : public ::testing::Test {
 protected:
  MemberTest() : world_(7), env_(world_.AddNode(NodeId(1))) {}

  void Start(int64_t quota = 0, const std::function<void(MemberOptions&)>& more = {}) {
    MemberOptions o;
    o.node.id = NodeId(1);
    o.node.initial_voters = {NodeId(1)};
    o.node.raft.random_seed = 3;
    o.name = "m1";
    o.peer_urls = {"http://10.0.0.1:2380"};
    o.client_urls = {"http://10.0.0.1:2379"};
    o.quota_backend_bytes = quota;
    if (more) more(o);
    absl::StatusOr<std::unique_ptr<Member>> m = Member::Start(env_, std::move(o));
    ASSERT_TRUE(m.ok()) << m.status();
    member_ = std::move(*m);
    for (int i = 0; i < 100 && member_->node().raft().leader() != NodeId(1); ++i)
      Run(100'000);
    ASSERT_EQ(member_->node().raft().leader(), NodeId(1));
  }
  void Run(int64_t us) { world_.RunUntil(world_.now_us() + us); }

  // Proposes and runs the world until the answer comes.
  absl::StatusOr<kv::MvccResult> Propose(bulwark::internal::Request r,
                                         const std::string& token = "", bool as_client = false) {
    std::optional<absl::StatusOr<kv::MvccResult>> got;
    auto done = [&got](absl::StatusOr<kv::MvccResult> res) { got = std::move(res); };
    if (as_client) {
      member_->ProposeAs(token, std::move(r), done);
    } else {
      member_->Propose(std::move(r), done);
    }
    for (int i = 0; i < 100 && !got.has_value(); ++i)
      Run(10'000);
    if (!got.has_value()) return absl::DeadlineExceededError("no answer");
    return *std::move(got);
  }
  static bulwark::internal::Request Put(const std::string& key, size_t bytes) {
    bulwark::internal::Request r;
    r.mutable_put()->set_key(key);
    r.mutable_put()->set_value(std::string(bytes, 'v'));
    return r;
  }

  // The size of each LeaseRenewBatch entry after index `after`.
  std::vector<int> RenewBatchSizes(uint64_t after) const {
    std::vector<int> sizes;
    const raft::RaftLog& log = member_->node().raft().log();
    for (uint64_t i = after + 1; i <= log.last_index().value(); ++i) {
      bulwark::internal::Request r;
      if (r.ParseFromString(log.At(LogIndex(i)).data) && r.has_lease_renew_batch()) {
        sizes.push_back(r.lease_renew_batch().ids_size());
      }
    }
    return sizes;
  }

  env::SimWorld world_;
  env::SimEnv& env_;
  std::unique_ptr<Member> member_;
};

TEST_F(MemberTest, PublishesItsAttributesOnceThereIsALeader) {
  Start();
  Run(500'000);
  const auto& members = member_->mvcc().members();
  auto it = members.find(1);
  ASSERT_NE(it, members.end());
  EXPECT_EQ(it->second.name(), "m1");
  ASSERT_EQ(it->second.client_urls_size(), 1);
  EXPECT_EQ(it->second.client_urls(0), "http://10.0.0.1:2379");
}

TEST_F(MemberTest, PastTheQuotaWritesAreRefusedAndNospaceIsRaisedForTheCluster) {
  Start(/*quota=*/4096);
  int accepted = 0;
  absl::StatusOr<kv::MvccResult> res;
  for (int i = 0; i < 100; ++i) {
    res = Propose(Put(absl::StrCat("k", i), 512));
    if (!res.ok() || !res->status.ok()) break;
    ++accepted;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 8);  // 4 KiB of 512-byte values, and their keys
  // Refused at once, with etcd's error; the state holds nothing of it.
  res = Propose(Put("late", 10));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status(), kv::etcd_errors::NoSpace());
  EXPECT_TRUE(member_->nospace_alarm());
  Run(200'000);
  bool raised = false;
  for (const etcdserverpb::AlarmMember& a : member_->mvcc().alarms())
    raised |= a.alarm() == etcdserverpb::NOSPACE && a.memberid() == 1;
  EXPECT_TRUE(raised) << "the alarm is in the replicated state, for every member";
  // Space can be freed: a delete is not a write that grows the data.
  bulwark::internal::Request del;
  del.mutable_delete_range()->set_key("k0");
  res = Propose(del);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_TRUE(res->status.ok()) << res->status;
}

// Kept answers count against the quota and are never evicted: past it a
// new keyed write — a delete too, since its answer takes room — is refused
// with NOSPACE, and every earlier one still replays. The member's retention
// goes into the request, so every member keeps the answer equally long.
TEST_F(MemberTest, KeptAnswersCountInTheQuotaAndPastItNewKeyedWritesAreRefused) {
  Start(/*quota=*/64 * 1024);
  auto keyed = [](bulwark::internal::Request r, int i) {
    r.mutable_idempotency()->set_key(absl::StrCat("op-", i));
    r.mutable_idempotency()->set_fingerprint(7);
    return r;
  };
  int accepted = 0;
  absl::StatusOr<kv::MvccResult> res;
  for (int i = 0; i < 10'000; ++i) {
    res = Propose(keyed(Put("same-key", 8), i));  // the data stays one small key
    if (!res.ok() || !res->status.ok()) break;
    ++accepted;
  }
  ASSERT_FALSE(res.ok()) << "the answers never filled the quota";
  EXPECT_EQ(res.status(), kv::etcd_errors::NoSpace());
  EXPECT_GT(accepted, 100);
  EXPECT_GT(member_->mvcc().idempotency_bytes(), 32u * 1024);
  EXPECT_EQ(member_->mvcc().idempotency_records(), static_cast<size_t>(accepted));
  // Every answer kept, the first included, for the member's retention.
  res = Propose(keyed(Put("same-key", 8), 0));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_TRUE(res->replayed) << res->status << " accepted " << accepted;
  // A keyed delete adds an answer too: refused.
  bulwark::internal::Request del;
  del.mutable_delete_range()->set_key("same-key");
  res = Propose(keyed(del, 1'000'000));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status(), kv::etcd_errors::NoSpace());
  EXPECT_TRUE(member_->nospace_alarm());
}

// etcd's --auto-compaction-mode revision: the leader compacts every 5
// minutes at the current revision minus the retention, through the log.
TEST_F(MemberTest, AutoCompactionByRevisionCompactsThroughTheLog) {
  Start(0, [](MemberOptions& o) { o.auto_compaction = {AutoCompaction::Mode::kRevision, 5}; });
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(Propose(Put(absl::StrCat("k", i), 8)).ok());
  EXPECT_EQ(member_->mvcc().compact_revision(), 0);
  const int64_t revision = member_->mvcc().revision();
  Run(AutoCompactor::kRevisionCheckUs + 1'000'000);
  EXPECT_EQ(member_->mvcc().compact_revision(), revision - 5);
}

// Periodic: about the retention's worth of history is kept.
TEST_F(MemberTest, AutoCompactionPeriodicKeepsItsRetentionOfHistory) {
  Start(0, [](MemberOptions& o) {
    o.auto_compaction = {AutoCompaction::Mode::kPeriodic, 10'000'000};  // 10 s
  });
  ASSERT_TRUE(Propose(Put("early", 8)).ok());
  const int64_t early = member_->mvcc().revision();
  Run(12'000'000);
  ASSERT_TRUE(Propose(Put("late", 8)).ok());
  const int64_t late = member_->mvcc().revision();
  Run(10'000'000);  // a compaction at ~10 s and one at ~20 s
  EXPECT_GE(member_->mvcc().compact_revision(), early);
  EXPECT_LT(member_->mvcc().compact_revision(), late);  // "late" is under 10 s old
}

TEST_F(MemberTest, KeepAlivesThatArriveTogetherBecomeOneEntry) {
  Start();
  bulwark::internal::Request grant;
  grant.mutable_lease_grant()->set_id(77);
  grant.mutable_lease_grant()->set_ttl(30);
  absl::StatusOr<kv::MvccResult> g = Propose(grant);
  ASSERT_TRUE(g.ok() && g->status.ok());
  const uint64_t before = member_->node().raft().log().last_index().value();
  std::vector<absl::StatusOr<int64_t>> ttls;
  for (int64_t id : {77, 77, 78, 77})
    member_->RenewLease("", id, [&ttls](absl::StatusOr<int64_t> ttl) { ttls.push_back(ttl); });
  for (int i = 0; i < 100 && ttls.size() < 4; ++i)
    Run(10'000);
  ASSERT_EQ(ttls.size(), 4u);
  EXPECT_EQ(*ttls[0], 30);
  EXPECT_EQ(*ttls[2], -1);  // no such lease
  EXPECT_EQ(*ttls[3], 30);
  // One LeaseRenewBatch for the four (ticks may add entries of their own).
  EXPECT_EQ(RenewBatchSizes(before), std::vector<int>{4});
}

// Keep-alives that arrive one by one while a sync is in flight are not
// proposed one entry each: they wait for the sync's end and go as one
// entry (the loop is free during an fsync, so "arrived together" alone
// would split them).
TEST_F(MemberTest, KeepAlivesThatArriveDuringASyncShareOneEntry) {
  Start();
  bulwark::internal::Request grant;
  grant.mutable_lease_grant()->set_id(77);
  grant.mutable_lease_grant()->set_ttl(30);
  absl::StatusOr<kv::MvccResult> g = Propose(grant);
  ASSERT_TRUE(g.ok() && g->status.ok());
  env_.set_offload_latency_us(20'000);
  const uint64_t before = member_->node().raft().log().last_index().value();
  // A write puts a sync in flight; three renewals come 2 ms apart during it.
  member_->Propose(Put("busy", 10), [](absl::StatusOr<kv::MvccResult>) {});
  Run(1'000);
  ASSERT_TRUE(member_->node().persisting());
  std::vector<absl::StatusOr<int64_t>> ttls;
  for (int n = 0; n < 3; ++n) {
    member_->RenewLease("", 77, [&ttls](absl::StatusOr<int64_t> ttl) { ttls.push_back(ttl); });
    Run(2'000);
  }
  for (int i = 0; i < 100 && ttls.size() < 3; ++i)
    Run(10'000);
  ASSERT_EQ(ttls.size(), 3u);
  for (const auto& t : ttls)
    EXPECT_EQ(*t, 30);
  EXPECT_EQ(RenewBatchSizes(before), std::vector<int>{3});
}

TEST_F(MemberTest, WritesCarryTheTokensUserAndItsPermissions) {
  Start();
  auto step = [&](bulwark::internal::Request r) {
    absl::StatusOr<kv::MvccResult> res = Propose(std::move(r));
    ASSERT_TRUE(res.ok() && res->status.ok()) << (res.ok() ? res->status : res.status());
  };
  bulwark::internal::Request r;
  r.mutable_auth_user_add()->set_name("root");
  r.mutable_auth_user_add()->set_password_hash("x");
  step(r);
  r.Clear();
  r.mutable_auth_role_add()->set_name("root");
  step(r);
  r.Clear();
  r.mutable_auth_user_grant_role()->set_user("root");
  r.mutable_auth_user_grant_role()->set_role("root");
  step(r);
  r.Clear();
  r.mutable_auth_user_add()->set_name("alice");
  r.mutable_auth_user_add()->set_password_hash("x");
  step(r);
  r.Clear();
  r.mutable_auth_enable();
  step(r);
  r.Clear();
  r.mutable_auth_authenticate()->set_name("alice");
  r.mutable_auth_authenticate()->set_token("tok-alice");
  step(r);
  // alice has no role: her write is refused, as is a token nobody issued.
  absl::StatusOr<kv::MvccResult> res = Propose(Put("a", 1), "tok-alice", /*as_client=*/true);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->status, kv::etcd_errors::PermissionDenied());
  res = Propose(Put("a", 1), "tok-nobody", /*as_client=*/true);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->status, kv::etcd_errors::InvalidAuthToken());
  EXPECT_EQ(*member_->UserOf("tok-alice"), "alice");
}

}  // namespace
}  // namespace bw::member
