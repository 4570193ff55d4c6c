// The auth workload (Workload::kAuth): users, roles, tokens and permissions
// through the member's own paths under every fault, checked by
// check::AuthRevocationChecker and, entry by entry, against each store's
// auth state as it applies the log.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kv/auth.h"
#include "kv/etcd_errors.h"
#include "sim/simulation.h"

namespace bw::sim::detail {

namespace {

std::string UserName(uint64_t client) {
  return absl::StrCat("u", client);
}
std::string RoleName(uint64_t client) {
  return absl::StrCat("r", client);
}
// The one key each user may read and write (while permitted).
std::string UserKey(uint64_t client) {
  return absl::StrCat("a/", client);
}

bulwark::internal::Request GrantRequest(uint64_t client) {
  bulwark::internal::Request r;
  etcdserverpb::AuthRoleGrantPermissionRequest* g = r.mutable_auth_role_grant_permission();
  g->set_name(RoleName(client));
  g->mutable_perm()->set_permtype(authpb::Permission::READWRITE);
  g->mutable_perm()->set_key(UserKey(client));
  return r;
}

bulwark::internal::Request RevokeRequest(uint64_t client) {
  bulwark::internal::Request r;
  etcdserverpb::AuthRoleRevokePermissionRequest* v = r.mutable_auth_role_revoke_permission();
  v->set_role(RoleName(client));
  v->set_key(UserKey(client));
  return r;
}

// The administrator's setup, one entry per step: root, then a role, a user
// and a grant per user client, then authentication on.
std::vector<bulwark::internal::Request> SetupSteps(int clients) {
  std::vector<bulwark::internal::Request> steps;
  auto add_user = [&](const std::string& name) {
    bulwark::internal::Request r;
    r.mutable_auth_user_add()->set_name(name);
    r.mutable_auth_user_add()->set_password_hash("not checked here");
    steps.push_back(r);
  };
  auto add_role = [&](const std::string& name) {
    bulwark::internal::Request r;
    r.mutable_auth_role_add()->set_name(name);
    steps.push_back(r);
  };
  auto grant_role = [&](const std::string& user, const std::string& role) {
    bulwark::internal::Request r;
    r.mutable_auth_user_grant_role()->set_user(user);
    r.mutable_auth_user_grant_role()->set_role(role);
    steps.push_back(r);
  };
  add_user("root");
  add_role("root");
  grant_role("root", "root");
  for (int c = 2; c <= clients; ++c) {
    const uint64_t id = static_cast<uint64_t>(c);
    add_role(RoleName(id));
    add_user(UserName(id));
    grant_role(UserName(id), RoleName(id));
    steps.push_back(GrantRequest(id));
  }
  bulwark::internal::Request enable;
  enable.mutable_auth_enable();
  steps.push_back(enable);
  return steps;
}

}  // namespace

void Simulation::AuthClientStep(Client& c) {
  if (auth_setup_.empty()) auth_setup_ = SetupSteps(o_.clients);
  if (c.id == 1) {
    AuthAdminStep(c);
  } else if (auth_setup_step_ < auth_setup_.size()) {
    ScheduleClient(c, 50'000);  // not set up yet
  } else {
    AuthUserStep(c);
  }
}

void Simulation::AuthAdminStep(Client& c) {
  const std::vector<bulwark::internal::Request>& setup = auth_setup_;
  member::Member* m = LiveMember(c.target);
  const bool setting_up = auth_setup_step_ < setup.size();
  bulwark::internal::Request r;
  uint64_t user = 0;
  bool grant = false;
  uint64_t change = 0;
  if (setting_up) {
    r = setup[auth_setup_step_];
  } else if (o_.clients >= 2) {
    user = 2 + rng().Below(static_cast<uint64_t>(o_.clients - 1));
    auto it = auth_granted_.find(user);
    grant = it != auth_granted_.end() && !it->second;
    r = grant ? GrantRequest(user) : RevokeRequest(user);
    change = auth_checker_.OnChangeInvoked(UserName(user), grant, world_.now_us());
  } else {
    ScheduleClient(c, o_.client_think_us);
    return;
  }
  // The administrator pauses longer between permission changes than the
  // users between their operations, so that each state is tried.
  Finish finish = StartOp(
      c, [this](Client&, bool) { return 50'000 + static_cast<int64_t>(rng().Below(250'000)); });
  if (m == nullptr) {
    if (change != 0) auth_checker_.OnChangeAnswered(change, false, world_.now_us());  // not sent
    finish(false);
    return;
  }
  r.set_id(kv::MakeRequestId(c.id, ++c.seq));
  const size_t step = auth_setup_step_;
  m->ProposeAsUser(
      "root", std::move(r),
      [this, finish, setting_up, step, user, grant, change](absl::StatusOr<kv::MvccResult> res) {
        if (failed()) return;
        // A failure of the node (no leader, timed out) says
        // nothing of whether the change is in the log: it may
        // still take effect, as far as the checker knows.
        if (!res.ok()) return finish(false);
        const absl::Status& st = res->status;
        if (setting_up) {
          const bool done = st.ok() || st == kv::etcd_errors::UserAlreadyExist() ||
                            st == kv::etcd_errors::RoleAlreadyExist();
          if (done && auth_setup_step_ == step) ++auth_setup_step_;
          if (done && auth_setup_step_ == auth_setup_.size()) {
            Trace("auth: users, roles and permissions set up; authentication on");
            for (int u = 2; u <= o_.clients; ++u)
              auth_granted_[static_cast<uint64_t>(u)] = true;
          }
          return finish(true);
        }
        auth_checker_.OnChangeAnswered(change, st.ok(), world_.now_us());
        if (st.ok()) {
          auth_granted_[user] = grant;
          ++result_.stats.auth_changes;
          if (!grant) ++result_.stats.auth_revocations;
        }
        finish(true);
      });
}

void Simulation::AuthUserStep(Client& c) {
  member::Member* m = LiveMember(c.target);
  Finish finish = StartOp(c, [this](Client&, bool) {
    return static_cast<int64_t>(rng().Below(2 * o_.client_think_us + 1));
  });
  if (m == nullptr) {
    finish(false);
    return;
  }
  Client* cp = &c;
  const std::string user = UserName(c.id);
  if (c.auth_token.empty()) {
    // Authenticate: the password is checked by the member's API layer
    // (not simulated); the token travels in the log to every member.
    const std::string token = absl::StrCat("t", c.id, ".", ++c.auth_tokens);
    bulwark::internal::Request r;
    r.mutable_auth_authenticate()->set_name(user);
    r.mutable_auth_authenticate()->set_token(token);
    ProposeAsMember(c.target, std::move(r), kv::MakeRequestId(c.id, ++c.seq),
                    [cp, finish, token](absl::StatusOr<std::any> res) {
                      if (!res.ok()) return finish(false);
                      if (std::any_cast<const kv::MvccResult&>(*res).status.ok()) {
                        cp->auth_token = token;
                      }
                      finish(true);
                    });
    return;
  }
  const int64_t invoked = world_.now_us();
  const bool counts = heal_stamp_ >= 0 && invoked * 1000 >= heal_stamp_;
  // What an answer means: honoured, refused for want of permission, or a
  // token this member does not know (authenticate again).
  auto judge = [this, cp, user, invoked, counts](const absl::Status& st, const std::string& what) {
    if (counts) auth_served_after_heal_ = true;
    if (st.ok()) {
      ++result_.stats.auth_honoured;
      auth_checker_.OnHonoured(user, what, invoked, world_.now_us());
      if (!auth_checker_.ok()) Fail(auth_checker_.violation());
    } else if (absl::IsPermissionDenied(st)) {
      ++result_.stats.auth_denied;
    } else if (absl::IsUnauthenticated(st)) {
      cp->auth_token.clear();
    }
  };
  const std::string key = UserKey(c.id);
  if (rng().Chance(0.5)) {
    bulwark::internal::Request access;
    access.mutable_range()->set_key(key);
    m->Read(/*linearizable=*/true, c.auth_token, [access] { return access; },
            [this, m, key, finish, judge](absl::StatusOr<std::string> u) {
              if (failed()) return;
              if (!u.ok() && !absl::IsPermissionDenied(u.status()) &&
                  !absl::IsUnauthenticated(u.status())) {
                return finish(false);  // no barrier: nothing was decided
              }
              if (u.ok()) {
                etcdserverpb::RangeRequest rr;
                rr.set_key(key);
                etcdserverpb::RangeResponse out;
                if (!m->mvcc().Range(rr, &out).ok()) return finish(false);
              }
              judge(u.status(), absl::StrCat("a read of ", key));
              finish(true);
            });
    return;
  }
  bulwark::internal::Request r;
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(absl::StrCat("c", c.id, ".", c.seq + 1));
  r.set_id(kv::MakeRequestId(c.id, ++c.seq));
  m->ProposeAs(c.auth_token, std::move(r),
               [this, key, finish, judge](absl::StatusOr<kv::MvccResult> res) {
                 if (failed()) return;
                 if (!res.ok()) return finish(false);
                 judge(res->status, absl::StrCat("a put of ", key));
                 finish(true);
               });
}

void Simulation::ObserveAuthApply(NodeId id, const raft::Entry& e) {
  auto store = stores_.find(id);
  if (store == stores_.end()) return;
  const int64_t before = auth_last_revision_[id];
  const int64_t after = store->second->revision();
  auth_last_revision_[id] = after;
  if (before < 0 || after == before || e.type != raft::EntryType::kNormal || e.data.empty()) {
    return;
  }
  bulwark::internal::Request req;
  if (!req.ParseFromString(e.data) || !req.has_put() || req.auth_user().empty()) return;
  // The write was applied: its user must have been allowed it at this
  // point of the log (the store's auth state, which the write itself does
  // not change).
  if (absl::Status allowed = store->second->Authorize(req.auth_user(), req); !allowed.ok()) {
    Fail(absl::StrCat("auth: node ", id.value(), " applied a put of ", req.put().key(), " by user ",
                      req.auth_user(), " at index ", e.index.value(),
                      " although its permission was not granted there (", allowed.message(), ")"));
  }
}

void Simulation::CheckAuthServed() {
  if (o_.clients >= 2 && !auth_served_after_heal_) {
    Fail("liveness: no user operation was answered after healing");
  }
}

}  // namespace bw::sim::detail
