// The error table: each kind a lower layer tags becomes etcd's exact error,
// whatever the message says (a reworded message cannot change the answer,
// and a message that merely mentions "stopped" or "no leader" is not
// mistaken for one); etcd's own errors pass through; the rest keep their
// code's retry meaning under etcd's prefix.
#include "member/etcd_error_map.h"

#include <gtest/gtest.h>

#include "core/error_kind.h"
#include "kv/etcd_errors.h"
#include "raft/raft.h"

namespace bw::member {
namespace {

using core::ErrorKind;
using core::WithKind;

TEST(EtcdErrorMapTest, KindsMapToEtcdsErrors) {
  EXPECT_EQ(EtcdErrorFor(WithKind(absl::UnavailableError("anything"), ErrorKind::kNoLeader)),
            kv::etcd_errors::NoLeader());
  EXPECT_EQ(EtcdErrorFor(WithKind(absl::UnavailableError("x"), ErrorKind::kLeaderChanged)),
            kv::etcd_errors::LeaderChanged());
  EXPECT_EQ(EtcdErrorFor(WithKind(absl::UnavailableError("y"), ErrorKind::kStopped)),
            kv::etcd_errors::Stopped());
  EXPECT_EQ(EtcdErrorFor(WithKind(absl::ResourceExhaustedError("z"), ErrorKind::kNoSpace)),
            kv::etcd_errors::NoSpace());
}

TEST(EtcdErrorMapTest, MessagesDoNotDecide) {
  // Before the table, a message naming "stopped" or "no leader" decided.
  EXPECT_EQ(EtcdErrorFor(absl::UnavailableError("wal: group commit stopped")),
            absl::UnavailableError("etcdserver: wal: group commit stopped"));
  EXPECT_EQ(EtcdErrorFor(absl::UnavailableError("peer says: no leader here")),
            absl::UnavailableError("etcdserver: peer says: no leader here"));
}

TEST(EtcdErrorMapTest, EtcdsOwnErrorsAndCodesPassThrough) {
  EXPECT_EQ(EtcdErrorFor(kv::etcd_errors::Compacted()), kv::etcd_errors::Compacted());
  EXPECT_EQ(EtcdErrorFor(absl::DeadlineExceededError("write outcome unknown")),
            kv::etcd_errors::Timeout());
  EXPECT_EQ(EtcdErrorFor(absl::ResourceExhaustedError("node: too many requests waiting")),
            absl::ResourceExhaustedError("etcdserver: node: too many requests waiting"));
  EXPECT_TRUE(EtcdErrorFor(absl::OkStatus()).ok());
}

TEST(EtcdErrorMapTest, KindsSurviveOnlyAsPayloads) {
  absl::Status tagged = WithKind(absl::UnavailableError("m"), ErrorKind::kStopped);
  EXPECT_EQ(core::KindOf(tagged), ErrorKind::kStopped);
  EXPECT_EQ(core::KindOf(absl::UnavailableError("node stopped")), std::nullopt);
  EXPECT_TRUE(WithKind(absl::OkStatus(), ErrorKind::kStopped).ok());
  absl::Status odd = absl::UnavailableError("m");
  odd.SetPayload(core::kErrorKindUrl, absl::Cord("\x7f"));
  EXPECT_EQ(core::KindOf(odd), std::nullopt);
}

// The layers that know tag what happened: raft with no leader, a stopped
// node.
TEST(EtcdErrorMapTest, RaftTagsNoLeader) {
  raft::Config c;
  c.id = NodeId(1);
  absl::StatusOr<std::unique_ptr<raft::Raft>> r =
      raft::Raft::Create(c, raft::BootstrapState({NodeId(1), NodeId(2), NodeId(3)}));
  ASSERT_TRUE(r.ok()) << r.status();
  absl::Status s = (*r)->Propose("x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(core::KindOf(s), ErrorKind::kNoLeader) << s;
  EXPECT_EQ(EtcdErrorFor(s), kv::etcd_errors::NoLeader());
}

}  // namespace
}  // namespace bw::member
