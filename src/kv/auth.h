// etcd's auth store as part of the replicated state: whether authentication
// is on, users (with password hashes and roles), roles (with permissions on
// key ranges) and the auth revision, which every change increments.
//
// Changes arrive as log entries (Apply), so every member holds the same users
// and roles at the same index; the answers are etcd 3.4's, error for error.
// Permission checks (CheckAccess, CheckAdmin) are pure functions of that
// state; MvccStore::Authorize turns a request into the accesses it makes.
//
// Thread-safety: none; owned by the MvccStore on a node's event loop.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bulwark/internal.pb.h"
#include "core/status.h"
#include "etcd/auth/authpb/auth.pb.h"
#include "etcd/etcdserver/etcdserverpb/rpc.pb.h"

namespace bw::kv {

// The role with every permission.
inline constexpr char kRootRole[] = "root";
inline constexpr char kRootUser[] = "root";

// One key or key range a request reads or writes. An empty range_end is the
// key alone; "\0" is every key from `key` on (etcd's convention).
struct KeyAccess {
  bool write = false;
  std::string key;
  std::string range_end;
};

// etcd's auth errors (etcd 3.4's codes and messages).

class AuthStore {
 public:
  // A change the server acts on (tokens live outside the replicated state).
  struct Notice {
    enum Kind { kTokenIssued, kUserChanged, kDisabled } kind;
    std::string user;
    std::string token;  // kTokenIssued
  };

  bool enabled() const { return enabled_; }
  uint64_t revision() const { return revision_; }

  // True for the requests Apply handles.
  static bool IsAuthOp(const bulwark::internal::Request& req);
  // Applies one auth change; the status is etcd's answer.
  absl::Status Apply(const bulwark::internal::Request& req);
  std::vector<Notice> TakeNotices() { return std::move(notices_); }

  // Reads, as etcd answers them.
  absl::Status UserGet(const std::string& name, etcdserverpb::AuthUserGetResponse* out) const;
  void UserList(etcdserverpb::AuthUserListResponse* out) const;
  absl::Status RoleGet(const std::string& name, etcdserverpb::AuthRoleGetResponse* out) const;
  void RoleList(etcdserverpb::AuthRoleListResponse* out) const;
  // The user's stored password hash; null when there is no such user.
  const authpb::User* FindUser(const std::string& name) const;
  bool HasRole(const std::string& user, const std::string& role) const;

  // With authentication on: OK when `user` may make every access; user
  // name empty, permission denied otherwise. Always OK with it off.
  absl::Status CheckAccess(const std::string& user, const std::vector<KeyAccess>& accesses) const;
  // With authentication on: OK only for a user with the root role.
  absl::Status CheckAdmin(const std::string& user) const;

  uint64_t digest() const;
  void SaveTo(bulwark::internal::AuthState* out) const;
  [[nodiscard]] absl::Status LoadFrom(const bulwark::internal::AuthState& in);

 private:
  // Half-open intervals [start, end) of keys; end "" is +infinity.
  struct Interval {
    std::string start;
    std::string end;
  };
  static Interval ToInterval(const std::string& key, const std::string& range_end);
  // Whether the union of a user's granted intervals of one kind covers `want`.
  bool Covered(const authpb::User& u, bool write, const Interval& want) const;
  void Changed() { ++revision_; }

  bool enabled_ = false;
  uint64_t revision_ = 1;
  std::map<std::string, authpb::User> users_;
  std::map<std::string, authpb::Role> roles_;
  std::vector<Notice> notices_;
};

}  // namespace bw::kv
