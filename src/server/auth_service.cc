// etcd's Auth service: users, roles, permissions, Authenticate (docs/security.md).
//
// A thin adapter from the wire to the member (EtcdServer): requests are
// checked and turned into proposals or reads on the member's loop; the
// logic lives in the member and the state machine.
#include "server/services.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bulwark/idempotency.grpc.pb.h"
#include "core/splitmix.h"
#include "env/real/deadline.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "kv/etcd_errors.h"
#include "member/etcd_error_map.h"
#include "server/bidi_stream.h"
#include "server/client_limits.h"
#include "server/etcd_server.h"
#include "server/password.h"
#include "server/service_support.h"
#include "server/tls.h"

namespace bw::server {

namespace {

// etcd's Auth service: users, roles and permissions through the log;
// passwords hashed on this member before they are proposed (the log never
// holds one) and checked off the member's loop.
class AuthService final : public etcdserverpb::Auth::CallbackService {
 public:
  explicit AuthService(EtcdServer& s) : s_(s) {}

  grpc::ServerUnaryReactor* AuthEnable(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::AuthEnableRequest* req,
                                       etcdserverpb::AuthEnableResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_auth_enable() = *req;
    return Change(ctx, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* AuthDisable(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::AuthDisableRequest* req,
                                        etcdserverpb::AuthDisableResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_auth_disable() = *req;
    return Change(ctx, std::move(r), resp);
  }

  grpc::ServerUnaryReactor* Authenticate(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::AuthenticateRequest* req,
                                         etcdserverpb::AuthenticateResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, req, resp, reactor] {
      const kv::AuthStore& a = s_.member().mvcc().auth();
      if (!a.enabled()) return reactor->Finish(ToGrpc(kv::etcd_errors::AuthNotEnabled()));
      const authpb::User* u = a.FindUser(req->name());
      // An unknown user is checked against no hash, slowly all the same, so
      // the answer's timing does not tell which user names exist.
      std::string stored = u != nullptr && !u->options().no_password() ? u->password() : "";
      bool queued = s_.RunSlow([this, req, resp, reactor, stored] {
        bool ok = CheckPassword(req->password(), stored.empty() ? kNoHash : stored);
        ok = ok && !stored.empty();
        s_.loop().Post([this, ok, req, resp, reactor] {
          if (!ok) return reactor->Finish(ToGrpc(kv::etcd_errors::AuthFailed()));
          if (s_.jwt() != nullptr) {
            // A signed token needs no log entry: every member checks it.
            absl::StatusOr<std::string> jwt = s_.jwt()->Sign(
                req->name(), s_.member().mvcc().auth().revision(), env::UnixMillisNow());
            if (!jwt.ok()) return reactor->Finish(ToGrpc(jwt.status()));
            resp->set_token(*std::move(jwt));
            s_.member().FillHeader(resp->mutable_header(), s_.member().mvcc().revision());
            return reactor->Finish(grpc::Status::OK);
          }
          std::string token = NewSimpleToken(s_.NextTokenSuffix());
          bulwark::internal::Request r;
          r.mutable_auth_authenticate()->set_name(req->name());
          r.mutable_auth_authenticate()->set_token(token);
          s_.member().Propose(
              std::move(r), [this, token, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
                absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
                if (!st.ok()) return reactor->Finish(ToGrpc(st));
                resp->set_token(token);
                s_.member().FillHeader(resp->mutable_header(), res->revision);
                reactor->Finish(grpc::Status::OK);
              });
        });
      });
      if (!queued) reactor->Finish(ToGrpc(TooManyPasswordChecks()));
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* UserAdd(grpc::CallbackServerContext* ctx,
                                    const etcdserverpb::AuthUserAddRequest* req,
                                    etcdserverpb::AuthUserAddResponse* resp) override {
    bulwark::internal::Request r;
    bulwark::internal::AuthUser* u = r.mutable_auth_user_add();
    u->set_name(req->name());
    u->set_no_password(req->options().no_password());
    if (u->no_password()) return Change(ctx, std::move(r), resp);
    return Hashed(ctx, req->password(), std::move(r), resp);
  }
  grpc::ServerUnaryReactor* UserChangePassword(
      grpc::CallbackServerContext* ctx, const etcdserverpb::AuthUserChangePasswordRequest* req,
      etcdserverpb::AuthUserChangePasswordResponse* resp) override {
    bulwark::internal::Request r;
    bulwark::internal::AuthUser* u = r.mutable_auth_user_change_password();
    u->set_name(req->name());
    return Hashed(ctx, req->password(), std::move(r), resp);
  }
  grpc::ServerUnaryReactor* UserDelete(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::AuthUserDeleteRequest* req,
                                       etcdserverpb::AuthUserDeleteResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_auth_user_delete() = *req;
    return Change(ctx, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* UserGrantRole(grpc::CallbackServerContext* ctx,
                                          const etcdserverpb::AuthUserGrantRoleRequest* req,
                                          etcdserverpb::AuthUserGrantRoleResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_auth_user_grant_role() = *req;
    return Change(ctx, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* UserRevokeRole(
      grpc::CallbackServerContext* ctx, const etcdserverpb::AuthUserRevokeRoleRequest* req,
      etcdserverpb::AuthUserRevokeRoleResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_auth_user_revoke_role() = *req;
    return Change(ctx, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* RoleAdd(grpc::CallbackServerContext* ctx,
                                    const etcdserverpb::AuthRoleAddRequest* req,
                                    etcdserverpb::AuthRoleAddResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_auth_role_add() = *req;
    return Change(ctx, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* RoleDelete(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::AuthRoleDeleteRequest* req,
                                       etcdserverpb::AuthRoleDeleteResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_auth_role_delete() = *req;
    return Change(ctx, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* RoleGrantPermission(
      grpc::CallbackServerContext* ctx, const etcdserverpb::AuthRoleGrantPermissionRequest* req,
      etcdserverpb::AuthRoleGrantPermissionResponse* resp) override {
    if (!req->has_perm()) {
      grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
      reactor->Finish(ToGrpc(kv::etcd_errors::PermissionNotGiven()));
      return reactor;
    }
    bulwark::internal::Request r;
    *r.mutable_auth_role_grant_permission() = *req;
    return Change(ctx, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* RoleRevokePermission(
      grpc::CallbackServerContext* ctx, const etcdserverpb::AuthRoleRevokePermissionRequest* req,
      etcdserverpb::AuthRoleRevokePermissionResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_auth_role_revoke_permission() = *req;
    return Change(ctx, std::move(r), resp);
  }

  // Reads are linearizable, like etcd's (which go through its log). Users
  // may look themselves and their roles up; the rest is root's business.
  grpc::ServerUnaryReactor* UserGet(grpc::CallbackServerContext* ctx,
                                    const etcdserverpb::AuthUserGetRequest* req,
                                    etcdserverpb::AuthUserGetResponse* resp) override {
    return OwnOrRoot(
        ctx, resp,
        [req](const kv::AuthStore&, const std::string& user) { return user == req->name(); },
        [req](const kv::AuthStore& a, auto* out) { return a.UserGet(req->name(), out); });
  }
  grpc::ServerUnaryReactor* UserList(grpc::CallbackServerContext* ctx,
                                     const etcdserverpb::AuthUserListRequest*,
                                     etcdserverpb::AuthUserListResponse* resp) override {
    return OwnOrRoot(
        ctx, resp, [](const kv::AuthStore&, const std::string&) { return false; },
        [](const kv::AuthStore& a, auto* out) {
          a.UserList(out);
          return absl::OkStatus();
        });
  }
  grpc::ServerUnaryReactor* RoleGet(grpc::CallbackServerContext* ctx,
                                    const etcdserverpb::AuthRoleGetRequest* req,
                                    etcdserverpb::AuthRoleGetResponse* resp) override {
    return OwnOrRoot(
        ctx, resp,
        [req](const kv::AuthStore& a, const std::string& user) {
          return a.HasRole(user, req->role());
        },
        [req](const kv::AuthStore& a, auto* out) { return a.RoleGet(req->role(), out); });
  }
  grpc::ServerUnaryReactor* RoleList(grpc::CallbackServerContext* ctx,
                                     const etcdserverpb::AuthRoleListRequest*,
                                     etcdserverpb::AuthRoleListResponse* resp) override {
    return OwnOrRoot(
        ctx, resp, [](const kv::AuthStore&, const std::string&) { return false; },
        [](const kv::AuthStore& a, auto* out) {
          a.RoleList(out);
          return absl::OkStatus();
        });
  }

 private:
  // A read of the auth store, after the read barrier: allowed when `own`
  // says the caller asks about itself, or for root (or with auth off).
  template <typename Resp, typename Own, typename Read>
  grpc::ServerUnaryReactor* OwnOrRoot(grpc::CallbackServerContext* ctx, Resp* resp, Own own,
                                      Read read) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.ReadThen(
        reactor, true, s_.TokenOf(ctx), [] { return bulwark::internal::Request(); },
        [this, resp, reactor, own, read](const std::string& user) {
          const kv::AuthStore& a = s_.member().mvcc().auth();
          if (user.empty() || !own(a, user)) {
            if (absl::Status st = a.CheckAdmin(user); !st.ok()) {
              return reactor->Finish(ToGrpc(st));
            }
          }
          if (absl::Status st = read(a, resp); !st.ok()) {
            return reactor->Finish(ToGrpc(st));
          }
          s_.member().FillHeader(resp->mutable_header(), s_.member().mvcc().revision());
          reactor->Finish(grpc::Status::OK);
        });
    return reactor;
  }

  // A well-formed hash no password matches, for unknown users.
  static constexpr char kNoHash[] =
      "pbkdf2-sha256$100000$00000000000000000000000000000000$"
      "0000000000000000000000000000000000000000000000000000000000000000";
  static absl::Status TooManyPasswordChecks() {
    return absl::ResourceExhaustedError(
        "etcdserver: too many requests (password checks queued); try again");
  }

  // Proposes an auth change as the caller; answers the header.
  template <typename Resp>
  grpc::ServerUnaryReactor* Change(grpc::CallbackServerContext* ctx, bulwark::internal::Request r,
                                   Resp* resp) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, token = s_.TokenOf(ctx), r = std::move(r), resp, reactor]() mutable {
      Propose(token, std::move(r), resp, reactor);
    });
    return reactor;
  }
  template <typename Resp>
  void Propose(const std::string& token, bulwark::internal::Request r, Resp* resp,
               grpc::ServerUnaryReactor* reactor) {
    s_.ProposeThen(/*ctx=*/nullptr, reactor, token, std::move(r),
                   [this, resp](kv::MvccResult& res) {
                     s_.member().FillHeader(resp->mutable_header(), res.revision);
                   });
  }
  // Hashes the password off the loop (only once the caller may make the
  // change: nobody gets to spend this member's CPU on hashes for free),
  // then proposes the change with the hash in `user`.
  template <typename Resp>
  grpc::ServerUnaryReactor* Hashed(grpc::CallbackServerContext* ctx, std::string password,
                                   bulwark::internal::Request r, Resp* resp) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, token = s_.TokenOf(ctx), password = std::move(password), r = std::move(r),
                    resp, reactor]() mutable {
      if (absl::StatusOr<std::string> who = s_.member().Authorize(token, r); !who.ok()) {
        return reactor->Finish(ToGrpc(who.status()));
      }
      bool queued = s_.RunSlow(
          [this, token, password = std::move(password), r = std::move(r), resp, reactor]() mutable {
            std::string hash = HashPassword(password);
            bulwark::internal::AuthUser* u = r.has_auth_user_add()
                                                 ? r.mutable_auth_user_add()
                                                 : r.mutable_auth_user_change_password();
            u->set_password_hash(std::move(hash));
            s_.loop().Post([this, token, r = std::move(r), resp, reactor]() mutable {
              Propose(token, std::move(r), resp, reactor);
            });
          });
      if (!queued) reactor->Finish(ToGrpc(TooManyPasswordChecks()));
    });
    return reactor;
  }

  EtcdServer& s_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewAuthService(EtcdServer& s) {
  return std::make_unique<AuthService>(s);
}

}  // namespace bw::server
