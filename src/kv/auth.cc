#include "kv/auth.h"

#include <algorithm>
#include <utility>

#include "core/assert.h"
#include "kv/etcd_errors.h"

namespace bw::kv {

namespace {

using Req = bulwark::internal::Request;

bool PermAllows(authpb::Permission::Type t, bool write) {
  if (t == authpb::Permission::READWRITE) return true;
  return write ? t == authpb::Permission::WRITE : t == authpb::Permission::READ;
}

}  // namespace

bool AuthStore::IsAuthOp(const Req& req) {
  switch (req.op_case()) {
    case Req::kAuthEnable:
    case Req::kAuthDisable:
    case Req::kAuthAuthenticate:
    case Req::kAuthUserAdd:
    case Req::kAuthUserDelete:
    case Req::kAuthUserChangePassword:
    case Req::kAuthUserGrantRole:
    case Req::kAuthUserRevokeRole:
    case Req::kAuthRoleAdd:
    case Req::kAuthRoleDelete:
    case Req::kAuthRoleGrantPermission:
    case Req::kAuthRoleRevokePermission:
      return true;
    default:
      return false;
  }
}

const authpb::User* AuthStore::FindUser(const std::string& name) const {
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : &it->second;
}

bool AuthStore::HasRole(const std::string& user, const std::string& role) const {
  const authpb::User* u = FindUser(user);
  if (u == nullptr) return false;
  return std::find(u->roles().begin(), u->roles().end(), role) != u->roles().end();
}

absl::Status AuthStore::Apply(const Req& req) {
  switch (req.op_case()) {
    case Req::kAuthEnable: {
      if (enabled_) return absl::OkStatus();
      if (FindUser(kRootUser) == nullptr) return etcd_errors::RootUserNotExist();
      if (!HasRole(kRootUser, kRootRole)) return etcd_errors::RootRoleNotExist();
      enabled_ = true;
      Changed();
      return absl::OkStatus();
    }
    case Req::kAuthDisable:
      if (!enabled_) return absl::OkStatus();
      enabled_ = false;
      Changed();
      notices_.push_back({Notice::kDisabled, "", ""});
      return absl::OkStatus();
    case Req::kAuthAuthenticate: {
      const bulwark::internal::AuthToken& t = req.auth_authenticate();
      if (!enabled_) return etcd_errors::AuthNotEnabled();
      const authpb::User* u = FindUser(t.name());
      if (u == nullptr || u->options().no_password()) return etcd_errors::AuthFailed();
      notices_.push_back({Notice::kTokenIssued, t.name(), t.token()});
      return absl::OkStatus();
    }
    case Req::kAuthUserAdd: {
      const bulwark::internal::AuthUser& a = req.auth_user_add();
      if (a.name().empty()) return etcd_errors::UserEmpty();
      if (users_.count(a.name())) return etcd_errors::UserAlreadyExist();
      authpb::User& u = users_[a.name()];
      u.set_name(a.name());
      u.set_password(a.password_hash());
      u.mutable_options()->set_no_password(a.no_password());
      Changed();
      return absl::OkStatus();
    }
    case Req::kAuthUserDelete: {
      const std::string& name = req.auth_user_delete().name();
      if (enabled_ && name == kRootUser) return etcd_errors::InvalidAuthMgmt();
      if (users_.erase(name) == 0) return etcd_errors::UserNotFound();
      Changed();
      notices_.push_back({Notice::kUserChanged, name, ""});
      return absl::OkStatus();
    }
    case Req::kAuthUserChangePassword: {
      const bulwark::internal::AuthUser& a = req.auth_user_change_password();
      auto it = users_.find(a.name());
      if (it == users_.end()) return etcd_errors::UserNotFound();
      it->second.set_password(a.password_hash());
      it->second.mutable_options()->set_no_password(false);
      Changed();
      notices_.push_back({Notice::kUserChanged, a.name(), ""});
      return absl::OkStatus();
    }
    case Req::kAuthUserGrantRole: {
      const etcdserverpb::AuthUserGrantRoleRequest& g = req.auth_user_grant_role();
      auto it = users_.find(g.user());
      if (it == users_.end()) return etcd_errors::UserNotFound();
      // The root role need not exist as a role to be granted (etcd's rule).
      if (g.role() != kRootRole && !roles_.count(g.role())) return etcd_errors::RoleNotFound();
      auto* roles = it->second.mutable_roles();
      auto at = std::lower_bound(roles->begin(), roles->end(), g.role());
      if (at != roles->end() && *at == g.role()) return absl::OkStatus();
      roles->Add(std::string(g.role()));
      std::sort(roles->begin(), roles->end());
      Changed();
      return absl::OkStatus();
    }
    case Req::kAuthUserRevokeRole: {
      const etcdserverpb::AuthUserRevokeRoleRequest& r = req.auth_user_revoke_role();
      if (enabled_ && r.name() == kRootUser && r.role() == kRootRole) {
        return etcd_errors::InvalidAuthMgmt();
      }
      auto it = users_.find(r.name());
      if (it == users_.end()) return etcd_errors::UserNotFound();
      auto* roles = it->second.mutable_roles();
      auto at = std::find(roles->begin(), roles->end(), r.role());
      if (at == roles->end()) return etcd_errors::RoleNotGranted();
      roles->erase(at);
      Changed();
      return absl::OkStatus();
    }
    case Req::kAuthRoleAdd: {
      const std::string& name = req.auth_role_add().name();
      if (name.empty()) return etcd_errors::RoleEmpty();
      if (roles_.count(name)) return etcd_errors::RoleAlreadyExist();
      roles_[name].set_name(name);
      Changed();
      return absl::OkStatus();
    }
    case Req::kAuthRoleDelete: {
      const std::string& name = req.auth_role_delete().role();
      if (enabled_ && name == kRootRole) return etcd_errors::InvalidAuthMgmt();
      if (roles_.erase(name) == 0) return etcd_errors::RoleNotFound();
      for (auto& [uname, u] : users_) {
        auto* roles = u.mutable_roles();
        auto at = std::find(roles->begin(), roles->end(), name);
        if (at != roles->end()) roles->erase(at);
      }
      Changed();
      return absl::OkStatus();
    }
    case Req::kAuthRoleGrantPermission: {
      const etcdserverpb::AuthRoleGrantPermissionRequest& g = req.auth_role_grant_permission();
      auto it = roles_.find(g.name());
      if (it == roles_.end()) return etcd_errors::RoleNotFound();
      auto* perms = it->second.mutable_keypermission();
      bool updated = false;
      for (authpb::Permission& p : *perms) {
        if (p.key() == g.perm().key() && p.range_end() == g.perm().range_end()) {
          p.set_permtype(g.perm().permtype());
          updated = true;
        }
      }
      if (!updated) {
        *perms->Add() = g.perm();
        std::sort(perms->begin(), perms->end(),
                  [](const authpb::Permission& a, const authpb::Permission& b) {
                    return std::tie(a.key(), a.range_end()) < std::tie(b.key(), b.range_end());
                  });
      }
      Changed();
      return absl::OkStatus();
    }
    case Req::kAuthRoleRevokePermission: {
      const etcdserverpb::AuthRoleRevokePermissionRequest& r = req.auth_role_revoke_permission();
      auto it = roles_.find(r.role());
      if (it == roles_.end()) return etcd_errors::RoleNotFound();
      auto* perms = it->second.mutable_keypermission();
      auto at = std::find_if(perms->begin(), perms->end(), [&](const authpb::Permission& p) {
        return p.key() == r.key() && p.range_end() == r.range_end();
      });
      if (at == perms->end()) return etcd_errors::PermissionNotGranted();
      perms->erase(at);
      Changed();
      return absl::OkStatus();
    }
    default:
      BW_ASSERT_MSG(false, "auth: not an auth request");
      return absl::InternalError("auth: not an auth request");
  }
}

absl::Status AuthStore::UserGet(const std::string& name,
                                etcdserverpb::AuthUserGetResponse* out) const {
  const authpb::User* u = FindUser(name);
  if (u == nullptr) return etcd_errors::UserNotFound();
  *out->mutable_roles() = u->roles();
  return absl::OkStatus();
}

void AuthStore::UserList(etcdserverpb::AuthUserListResponse* out) const {
  for (const auto& [name, u] : users_)
    out->add_users(name);
}

absl::Status AuthStore::RoleGet(const std::string& name,
                                etcdserverpb::AuthRoleGetResponse* out) const {
  auto it = roles_.find(name);
  if (it == roles_.end()) return etcd_errors::RoleNotFound();
  *out->mutable_perm() = it->second.keypermission();
  return absl::OkStatus();
}

void AuthStore::RoleList(etcdserverpb::AuthRoleListResponse* out) const {
  for (const auto& [name, r] : roles_)
    out->add_roles(name);
}

AuthStore::Interval AuthStore::ToInterval(const std::string& key, const std::string& range_end) {
  if (range_end.empty()) return {key, key + std::string(1, '\0')};
  if (range_end == std::string(1, '\0')) return {key, ""};
  // An end at or before the start names no key past the start: the start
  // alone, so a backwards range can never ask for less than its first key.
  if (range_end <= key) return {key, key + std::string(1, '\0')};
  return {key, range_end};
}

bool AuthStore::Covered(const authpb::User& u, bool write, const Interval& want) const {
  std::vector<Interval> granted;
  for (const std::string& rname : u.roles()) {
    auto it = roles_.find(rname);
    if (it == roles_.end()) continue;
    for (const authpb::Permission& p : it->second.keypermission()) {
      if (PermAllows(p.permtype(), write)) granted.push_back(ToInterval(p.key(), p.range_end()));
    }
  }
  std::sort(granted.begin(), granted.end(),
            [](const Interval& a, const Interval& b) { return a.start < b.start; });
  // Merge touching and overlapping grants, then look for one that holds the
  // whole of `want` (etcd's unified range permissions).
  auto ends_before = [](const std::string& a, const std::string& b) {  // a < b, "" = infinity
    if (a.empty()) return false;
    return b.empty() || a < b;
  };
  for (size_t i = 0; i < granted.size();) {
    Interval m = granted[i++];
    while (i < granted.size() && !m.end.empty() && granted[i].start <= m.end) {
      if (ends_before(m.end, granted[i].end)) m.end = granted[i].end;
      ++i;
    }
    if (m.start <= want.start && !ends_before(m.end, want.end)) return true;
  }
  return false;
}

absl::Status AuthStore::CheckAccess(const std::string& user,
                                    const std::vector<KeyAccess>& accesses) const {
  if (!enabled_) return absl::OkStatus();
  if (user.empty()) return etcd_errors::UserEmpty();
  const authpb::User* u = FindUser(user);
  if (u == nullptr) return etcd_errors::PermissionDenied();
  if (HasRole(user, kRootRole)) return absl::OkStatus();
  for (const KeyAccess& a : accesses) {
    if (!Covered(*u, a.write, ToInterval(a.key, a.range_end))) {
      return etcd_errors::PermissionDenied();
    }
  }
  return absl::OkStatus();
}

absl::Status AuthStore::CheckAdmin(const std::string& user) const {
  if (!enabled_) return absl::OkStatus();
  if (user.empty()) return etcd_errors::UserEmpty();
  if (FindUser(user) == nullptr) return etcd_errors::UserNotFound();
  if (!HasRole(user, kRootRole)) return etcd_errors::PermissionDenied();
  return absl::OkStatus();
}

uint64_t AuthStore::digest() const {
  bulwark::internal::AuthState s;
  SaveTo(&s);
  std::string bytes;
  BW_ASSERT(s.SerializeToString(&bytes));
  // FNV-1a: small, deterministic; the auth state changes rarely.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

void AuthStore::SaveTo(bulwark::internal::AuthState* out) const {
  out->set_enabled(enabled_);
  out->set_revision(revision_);
  for (const auto& [name, u] : users_)
    *out->add_users() = u;
  for (const auto& [name, r] : roles_)
    *out->add_roles() = r;
}

absl::Status AuthStore::LoadFrom(const bulwark::internal::AuthState& in) {
  AuthStore fresh;
  fresh.enabled_ = in.enabled();
  fresh.revision_ = std::max<uint64_t>(in.revision(), 1);
  for (const authpb::User& u : in.users()) {
    if (u.name().empty() || !fresh.users_.emplace(u.name(), u).second) {
      return absl::DataLossError("mvcc: snapshot auth users inconsistent");
    }
  }
  for (const authpb::Role& r : in.roles()) {
    if (r.name().empty() || !fresh.roles_.emplace(r.name(), r).second) {
      return absl::DataLossError("mvcc: snapshot auth roles inconsistent");
    }
  }
  if (fresh.enabled_ && !fresh.HasRole(kRootUser, kRootRole)) {
    return absl::DataLossError("mvcc: snapshot has auth on without a root user");
  }
  *this = std::move(fresh);
  return absl::OkStatus();
}

}  // namespace bw::kv
