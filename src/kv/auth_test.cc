// The auth store and MvccStore::Authorize: etcd's answers for users, roles
// and permissions, and one regression test per class of etcd's past auth
// bypasses (nested txns, txn compares and untaken branches, prev_kv, watch
// and range ends, lease revoke and TTL keys, changes between proposal and
// apply, replayed answers).
#include "kv/auth.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kv/mvcc.h"

namespace bw::kv {
namespace {

using bulwark::internal::Request;
using etcdserverpb::TxnRequest;

class AuthTest : public ::testing::Test {
 protected:
  MvccResult Apply(Request req, const std::string& user = "") {
    req.set_id(++id_);
    req.set_auth_user(user);
    std::string data;
    req.SerializeToString(&data);
    StateMachine::Applied a = store_.ApplyEntry(LogIndex(id_), data);
    return std::any_cast<MvccResult>(a.result);
  }
  absl::Status Do(Request req, const std::string& user = "root") {
    return Apply(std::move(req), user).status;
  }
  absl::Status UserAdd(const std::string& name) {
    Request r;
    r.mutable_auth_user_add()->set_name(name);
    r.mutable_auth_user_add()->set_password_hash("hash-of-" + name);
    return Do(r);
  }
  absl::Status RoleAdd(const std::string& name) {
    Request r;
    r.mutable_auth_role_add()->set_name(name);
    return Do(r);
  }
  absl::Status Grant(const std::string& user, const std::string& role) {
    Request r;
    r.mutable_auth_user_grant_role()->set_user(user);
    r.mutable_auth_user_grant_role()->set_role(role);
    return Do(r);
  }
  absl::Status Perm(const std::string& role, authpb::Permission::Type t, const std::string& key,
                    const std::string& end = "") {
    Request r;
    r.mutable_auth_role_grant_permission()->set_name(role);
    r.mutable_auth_role_grant_permission()->mutable_perm()->set_permtype(t);
    r.mutable_auth_role_grant_permission()->mutable_perm()->set_key(key);
    r.mutable_auth_role_grant_permission()->mutable_perm()->set_range_end(end);
    return Do(r);
  }
  absl::Status Revoke(const std::string& role, const std::string& key, const std::string& end) {
    Request r;
    r.mutable_auth_role_revoke_permission()->set_role(role);
    r.mutable_auth_role_revoke_permission()->set_key(key);
    r.mutable_auth_role_revoke_permission()->set_range_end(end);
    return Do(r);
  }
  absl::Status Enable() {
    Request r;
    r.mutable_auth_enable();
    return Do(r);
  }
  static Request PutReq(const std::string& k, bool prev_kv = false) {
    Request r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value("v");
    r.mutable_put()->set_prev_kv(prev_kv);
    return r;
  }
  static Request RangeReq(const std::string& k, const std::string& end = "") {
    Request r;
    r.mutable_range()->set_key(k);
    r.mutable_range()->set_range_end(end);
    return r;
  }
  static Request WatchReq(const std::string& k, const std::string& end = "") {
    Request r;
    r.mutable_watch_create()->set_key(k);
    r.mutable_watch_create()->set_range_end(end);
    return r;
  }
  // root (root role), and alice: read/write on "a/".."a0", read on "pub".
  void SetUpUsers() {
    ASSERT_TRUE(UserAdd("root").ok());
    ASSERT_TRUE(Grant("root", "root").ok());
    ASSERT_TRUE(UserAdd("alice").ok());
    ASSERT_TRUE(RoleAdd("a-rw").ok());
    ASSERT_TRUE(Perm("a-rw", authpb::Permission::READWRITE, "a/", "a0").ok());
    ASSERT_TRUE(Perm("a-rw", authpb::Permission::READ, "pub").ok());
    ASSERT_TRUE(Grant("alice", "a-rw").ok());
    ASSERT_TRUE(Enable().ok());
  }
  bool Denied(const absl::Status& s) { return absl::IsPermissionDenied(s); }

  MvccStore store_;
  uint64_t id_ = 0;
};

TEST_F(AuthTest, EnableNeedsARootUserWithTheRootRole) {
  EXPECT_EQ(Enable().message(), "etcdserver: root user does not exist");
  ASSERT_TRUE(UserAdd("root").ok());
  EXPECT_EQ(Enable().message(), "etcdserver: root user does not have root role");
  // The root role need not exist to be granted (etcdctl auth enable relies
  // on the error above to create it, but etcd allows either order).
  ASSERT_TRUE(Grant("root", "root").ok());
  EXPECT_TRUE(Enable().ok());
  EXPECT_TRUE(store_.auth().enabled());
  EXPECT_TRUE(Enable().ok()) << "enabling twice is no error";
}

TEST_F(AuthTest, UserAndRoleManagementGiveEtcdsErrors) {
  EXPECT_EQ(UserAdd("").message(), "etcdserver: user name is empty");
  ASSERT_TRUE(UserAdd("bob").ok());
  EXPECT_EQ(UserAdd("bob").message(), "etcdserver: user name already exists");
  EXPECT_EQ(RoleAdd("").message(), "etcdserver: role name is empty");
  ASSERT_TRUE(RoleAdd("r").ok());
  EXPECT_EQ(RoleAdd("r").message(), "etcdserver: role name already exists");
  EXPECT_EQ(Grant("nobody", "r").message(), "etcdserver: user name not found");
  EXPECT_EQ(Grant("bob", "nope").message(), "etcdserver: role name not found");
  ASSERT_TRUE(Grant("bob", "r").ok());
  uint64_t rev = store_.auth().revision();
  EXPECT_TRUE(Grant("bob", "r").ok()) << "granting twice is no error";
  EXPECT_EQ(store_.auth().revision(), rev) << "and no change";
  Request revoke;
  revoke.mutable_auth_user_revoke_role()->set_name("bob");
  revoke.mutable_auth_user_revoke_role()->set_role("other");
  EXPECT_EQ(Do(revoke).message(), "etcdserver: role is not granted to the user");
  EXPECT_EQ(Revoke("r", "k", "").message(), "etcdserver: permission is not granted to the role");
  ASSERT_TRUE(Perm("r", authpb::Permission::READ, "k").ok());
  ASSERT_TRUE(Perm("r", authpb::Permission::WRITE, "k").ok());  // updates the type
  etcdserverpb::AuthRoleGetResponse rg;
  ASSERT_TRUE(store_.auth().RoleGet("r", &rg).ok());
  ASSERT_EQ(rg.perm_size(), 1);
  EXPECT_EQ(rg.perm(0).permtype(), authpb::Permission::WRITE);
  EXPECT_TRUE(Revoke("r", "k", "").ok());
  // Deleting a role takes it from its users.
  Request del;
  del.mutable_auth_role_delete()->set_role("r");
  ASSERT_TRUE(Do(del).ok());
  etcdserverpb::AuthUserGetResponse ug;
  ASSERT_TRUE(store_.auth().UserGet("bob", &ug).ok());
  EXPECT_EQ(ug.roles_size(), 0);
  EXPECT_EQ(Do(del).message(), "etcdserver: role name not found");
}

TEST_F(AuthTest, RootCannotBeLockedOutWhileAuthIsOn) {
  SetUpUsers();
  Request del_user;
  del_user.mutable_auth_user_delete()->set_name("root");
  EXPECT_EQ(Do(del_user).message(), "etcdserver: invalid auth management");
  Request del_role;
  del_role.mutable_auth_role_delete()->set_role("root");
  EXPECT_EQ(Do(del_role).message(), "etcdserver: invalid auth management");
  Request revoke;
  revoke.mutable_auth_user_revoke_role()->set_name("root");
  revoke.mutable_auth_user_revoke_role()->set_role("root");
  EXPECT_EQ(Do(revoke).message(), "etcdserver: invalid auth management");
}

TEST_F(AuthTest, RequestsWithoutAUserAreRefusedOnceAuthIsOn) {
  SetUpUsers();
  EXPECT_EQ(Do(PutReq("a/1"), "").message(), "etcdserver: user name is empty");
  EXPECT_TRUE(Do(PutReq("a/1"), "alice").ok());
  EXPECT_TRUE(Denied(Do(PutReq("b"), "alice")));
  EXPECT_TRUE(Denied(Do(PutReq("a/1"), "mallory"))) << "an unknown user has no permissions";
  EXPECT_TRUE(Do(PutReq("anything"), "root").ok());
  // A batch of lease renewals, like a lone renewal, needs a user.
  Request renew;
  renew.mutable_lease_renew_batch()->add_ids(1);
  EXPECT_EQ(Do(renew, "").message(), "etcdserver: user name is empty");
}

TEST_F(AuthTest, AdministrationIsRootOnly) {
  SetUpUsers();
  Request add;
  add.mutable_auth_user_add()->set_name("eve");
  EXPECT_TRUE(Denied(Do(add, "alice")));
  Request disable;
  disable.mutable_auth_disable();
  EXPECT_TRUE(Denied(Do(disable, "alice")));
  EXPECT_TRUE(store_.auth().enabled());
  Request compact;
  compact.mutable_compaction()->set_revision(1);
  EXPECT_EQ(Do(compact, "").message(), "etcdserver: user name is empty");
  EXPECT_TRUE(Do(compact, "alice").ok()) << "any user may compact, as in etcd";
  Request member;
  member.mutable_member_add()->set_id(7);
  EXPECT_TRUE(Denied(Do(member, "alice")));
  Request grant;
  grant.mutable_auth_user_grant_role()->set_user("alice");
  grant.mutable_auth_user_grant_role()->set_role("root");
  EXPECT_TRUE(Denied(Do(grant, "alice"))) << "no granting oneself root";
  EXPECT_FALSE(store_.auth().HasRole("alice", "root"));
  Request admin;
  admin.mutable_admin()->set_method("Defragment");
  EXPECT_TRUE(Denied(store_.Authorize("alice", admin)));
  EXPECT_TRUE(store_.Authorize("root", admin).ok());
  EXPECT_EQ(store_.Authorize("", admin).message(), "etcdserver: user name is empty");
}

// etcd CVE-2018-1098-style and later: a txn nested in a txn must be checked
// like the outer one.
TEST_F(AuthTest, NestedTxnCannotWriteOutsideTheGrant) {
  SetUpUsers();
  TxnRequest inner;
  *inner.add_success()->mutable_request_put() = PutReq("secret").put();
  TxnRequest outer;
  *outer.add_success()->mutable_request_txn() = inner;
  Request r;
  *r.mutable_txn() = outer;
  EXPECT_TRUE(Denied(Do(r, "alice")));
  Request get = RangeReq("secret");
  EXPECT_TRUE(store_.Authorize("root", get).ok());
  etcdserverpb::RangeResponse out;
  ASSERT_TRUE(store_.Range(get.range(), &out).ok());
  EXPECT_EQ(out.kvs_size(), 0) << "nothing was written";
}

TEST_F(AuthTest, TxnComparesAndUntakenBranchesAreChecked) {
  SetUpUsers();
  // A compare on a forbidden key leaks its value bit by bit.
  TxnRequest t;
  etcdserverpb::Compare* c = t.add_compare();
  c->set_key("secret");
  c->set_target(etcdserverpb::Compare::VALUE);
  c->set_value("guess");
  *t.add_success()->mutable_request_put() = PutReq("a/1").put();
  Request r;
  *r.mutable_txn() = t;
  EXPECT_TRUE(Denied(Do(r, "alice")));
  // A forbidden op in the branch that would not run is still refused.
  TxnRequest t2;
  *t2.add_success()->mutable_request_put() = PutReq("a/2").put();
  etcdserverpb::DeleteRangeRequest* d = t2.add_failure()->mutable_request_delete_range();
  d->set_key("\0", 1);
  d->set_range_end("\0", 1);
  Request r2;
  *r2.mutable_txn() = t2;
  EXPECT_TRUE(Denied(Do(r2, "alice")));
  TxnRequest ok;
  *ok.add_success()->mutable_request_put() = PutReq("a/3").put();
  ok.add_failure()->mutable_request_range()->set_key("pub");
  Request r3;
  *r3.mutable_txn() = ok;
  EXPECT_TRUE(Do(r3, "alice").ok());
}

TEST_F(AuthTest, PrevKvNeedsReadPermission) {
  SetUpUsers();
  ASSERT_TRUE(RoleAdd("w-only").ok());
  ASSERT_TRUE(Perm("w-only", authpb::Permission::WRITE, "w").ok());
  ASSERT_TRUE(UserAdd("writer").ok());
  ASSERT_TRUE(Grant("writer", "w-only").ok());
  EXPECT_TRUE(Do(PutReq("w"), "writer").ok());
  EXPECT_TRUE(Denied(Do(PutReq("w", true), "writer"))) << "prev_kv would show the old value";
  Request del;
  del.mutable_delete_range()->set_key("w");
  del.mutable_delete_range()->set_prev_kv(true);
  EXPECT_TRUE(Denied(Do(del, "writer")));
  del.mutable_delete_range()->set_prev_kv(false);
  EXPECT_TRUE(Do(del, "writer").ok());
}

TEST_F(AuthTest, WatchAndRangeMustLieInsideTheGrants) {
  SetUpUsers();
  EXPECT_TRUE(store_.Authorize("alice", WatchReq("a/", "a0")).ok());
  EXPECT_TRUE(store_.Authorize("alice", WatchReq("a/x")).ok());
  EXPECT_TRUE(Denied(store_.Authorize("alice", WatchReq("a/", "b"))));
  // From a key to the end ("\0") is the whole rest of the keyspace.
  EXPECT_TRUE(Denied(store_.Authorize("alice", WatchReq("a/", std::string(1, '\0')))));
  EXPECT_TRUE(Denied(store_.Authorize("alice", RangeReq("\0", std::string(1, '\0')))));
  EXPECT_TRUE(store_.Authorize("alice", RangeReq("pub")).ok());
  EXPECT_TRUE(Denied(store_.Authorize("alice", RangeReq("pub", "puc"))));
  // A backwards range is read as its first key.
  EXPECT_TRUE(Denied(store_.Authorize("alice", RangeReq("z", "a"))));
  // Two grants that touch cover the range across them.
  ASSERT_TRUE(RoleAdd("split").ok());
  ASSERT_TRUE(Perm("split", authpb::Permission::READ, "m", "n").ok());
  ASSERT_TRUE(Perm("split", authpb::Permission::READWRITE, "n", "p").ok());
  ASSERT_TRUE(Grant("alice", "split").ok());
  EXPECT_TRUE(store_.Authorize("alice", RangeReq("m", "p")).ok());
  EXPECT_TRUE(Denied(store_.Authorize("alice", RangeReq("m", "q"))));
  // Write only where write was granted.
  EXPECT_TRUE(Denied(Do(PutReq("m1"), "alice")));
  EXPECT_TRUE(Do(PutReq("n1"), "alice").ok());
}

TEST_F(AuthTest, LeaseRevokeAndTtlKeysNeedPermissionOnTheAttachedKeys) {
  SetUpUsers();
  Request grant;
  grant.mutable_lease_grant()->set_id(5);
  grant.mutable_lease_grant()->set_ttl(100);
  ASSERT_TRUE(Do(grant, "alice").ok());
  Request put = PutReq("secret");
  put.mutable_put()->set_lease(5);
  ASSERT_TRUE(Do(put, "root").ok());
  Request revoke;
  revoke.mutable_lease_revoke()->set_id(5);
  EXPECT_TRUE(Denied(Do(revoke, "alice"))) << "revoking would delete a key alice may not";
  ASSERT_TRUE(store_.GetLease(5, 0, false).has_value());
  Request ttl;
  ttl.mutable_lease_time_to_live()->set_id(5);
  EXPECT_TRUE(store_.Authorize("alice", ttl).ok());
  ttl.mutable_lease_time_to_live()->set_keys(true);
  EXPECT_TRUE(Denied(store_.Authorize("alice", ttl))) << "the key names are not alice's to see";
  EXPECT_TRUE(Do(revoke, "root").ok());
}

// The permission is checked when the entry is applied: a grant revoked after
// a write was proposed (checked by the proposer) but before it was applied
// is revoked for it.
TEST_F(AuthTest, ARevocationOrderedBeforeTheWriteWins) {
  SetUpUsers();
  ASSERT_TRUE(store_.Authorize("alice", PutReq("a/1")).ok());  // the proposer's view
  ASSERT_TRUE(Revoke("a-rw", "a/", "a0").ok());
  EXPECT_TRUE(Denied(Do(PutReq("a/1"), "alice")));
  Request del;
  del.mutable_auth_user_delete()->set_name("alice");
  ASSERT_TRUE(Do(del).ok());
  EXPECT_TRUE(Denied(Do(PutReq("pub"), "alice")));
}

TEST_F(AuthTest, AReplayedAnswerIsNotShownToAUserWhoMayNotSeeIt) {
  SetUpUsers();
  Request put = PutReq("a/1");
  put.mutable_idempotency()->set_key("k1");
  put.mutable_idempotency()->set_fingerprint(42);
  ASSERT_TRUE(Do(put, "alice").ok());
  ASSERT_TRUE(UserAdd("bob").ok());
  MvccResult again = Apply(put, "bob");
  EXPECT_TRUE(Denied(again.status));
  EXPECT_FALSE(again.replayed);
  EXPECT_TRUE(Apply(put, "alice").replayed);
}

TEST_F(AuthTest, TokensAreIssuedOnlyForUsersWithPasswordsWhileAuthIsOn) {
  Request auth;
  auth.mutable_auth_authenticate()->set_name("alice");
  auth.mutable_auth_authenticate()->set_token("tok.1");
  EXPECT_EQ(Do(auth, "").message(), "etcdserver: authentication is not enabled");
  SetUpUsers();
  store_.TakeAuthNotices();
  EXPECT_TRUE(Do(auth, "").ok());
  std::vector<AuthStore::Notice> n = store_.TakeAuthNotices();
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].kind, AuthStore::Notice::kTokenIssued);
  EXPECT_EQ(n[0].token, "tok.1");
  auth.mutable_auth_authenticate()->set_name("mallory");
  EXPECT_EQ(Do(auth, "").message(),
            "etcdserver: authentication failed, invalid user ID or password");
  Request nopw;
  nopw.mutable_auth_user_add()->set_name("cert-only");
  nopw.mutable_auth_user_add()->set_no_password(true);
  ASSERT_TRUE(Do(nopw).ok());
  auth.mutable_auth_authenticate()->set_name("cert-only");
  EXPECT_FALSE(Do(auth, "").ok());
}

TEST_F(AuthTest, TheAuthStateTravelsInSnapshots) {
  SetUpUsers();
  MvccStore copy;
  ASSERT_TRUE(copy.Restore(store_.Serialize()).ok());
  EXPECT_EQ(copy.digest(), store_.digest());
  EXPECT_TRUE(copy.auth().enabled());
  EXPECT_EQ(copy.auth().revision(), store_.auth().revision());
  EXPECT_TRUE(Denied(copy.Authorize("alice", PutReq("b"))));
  EXPECT_TRUE(copy.Authorize("alice", PutReq("a/b")).ok());
  // A change to the auth state changes the digest.
  uint64_t before = store_.digest();
  ASSERT_TRUE(RoleAdd("another").ok());
  EXPECT_NE(store_.digest(), before);
}

}  // namespace
}  // namespace bw::kv
