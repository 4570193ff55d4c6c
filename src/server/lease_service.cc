// etcd's Lease service: LeaseGrant, LeaseRevoke, LeaseKeepAlive (streams; renewals batched by the
// member), LeaseTimeToLive and LeaseLeases.
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

class KeepAliveStream final
    : public BidiStream<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveStream(EtcdServer& s, std::string token)
      : BidiStream(1024, /*finish_on_half_close=*/true), s_(s), token_(std::move(token)) {}

 private:
  void OnRequest(etcdserverpb::LeaseKeepAliveRequest req) override {
    auto self = std::static_pointer_cast<KeepAliveStream>(shared_from_this());
    s_.loop().Post([self, id = req.id()] {
      self->s_.member().RenewLease(self->token_, id, [self, id](absl::StatusOr<int64_t> ttl) {
        EtcdServer& s = self->s_;
        if (!ttl.ok()) {
          // An error (a token that expired, no leader) ends the stream: the
          // client's keeper opens another (and authenticates again).
          self->Close(ToGrpc(s.ToEtcdError(ttl.status())));
          self->RequestDone();
          return;
        }
        etcdserverpb::LeaseKeepAliveResponse out;
        out.set_id(id);
        out.set_ttl(std::max<int64_t>(*ttl, 0));  // etcd: an unknown lease is answered with TTL 0
        s.member().FillHeader(out.mutable_header(), s.member().mvcc().revision());
        self->Send(std::move(out));
        self->RequestDone();
      });
    });
  }

  EtcdServer& s_;
  const std::string token_;
};

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  explicit LeaseService(EtcdServer& s) : s_(s) {}

  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    bulwark::internal::Request keyed;
    absl::Status v = AttachIdempotency(ctx, "LeaseGrant", *req, &keyed);
    if (!v.ok()) {
      reactor->Finish(ToGrpc(v));
      return reactor;
    }
    s_.loop().Post(
        [this, ctx, req, resp, reactor, keyed = std::move(keyed), token = s_.TokenOf(ctx)] {
          bulwark::internal::Request r = keyed;
          r.set_time_us(s_.member().LogNowMicros());
          etcdserverpb::LeaseGrantRequest* g = r.mutable_lease_grant();
          *g = *req;
          if (g->id() == 0) g->set_id(s_.member().NewLeaseId());
          g->set_ttl(std::max(g->ttl(), s_.MinLeaseTtl()));
          s_.ProposeThen(ctx, reactor, token, std::move(r), [this, resp](kv::MvccResult& res) {
            resp->set_id(res.lease_id);
            resp->set_ttl(res.lease_ttl);
            s_.member().FillHeader(resp->mutable_header(), res.revision);
          });
        });
    return reactor;
  }

  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseRevokeRequest* req,
                                        etcdserverpb::LeaseRevokeResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    bulwark::internal::Request r;
    *r.mutable_lease_revoke() = *req;
    absl::Status v = AttachIdempotency(ctx, "LeaseRevoke", *req, &r);
    if (!v.ok()) {
      reactor->Finish(ToGrpc(v));
      return reactor;
    }
    s_.loop().Post([this, ctx, r = std::move(r), resp, reactor, token = s_.TokenOf(ctx)]() mutable {
      s_.ProposeThen(ctx, reactor, token, std::move(r), [this, resp](kv::MvccResult& res) {
        s_.member().FillHeader(resp->mutable_header(), res.revision);
      });
    });
    return reactor;
  }

  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* ctx) override {
    auto stream = std::make_shared<KeepAliveStream>(s_, s_.TokenOf(ctx));
    stream->Begin();
    return stream.get();
  }

  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* ctx,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto access = [req] {
      bulwark::internal::Request a;
      *a.mutable_lease_time_to_live() = *req;
      return a;
    };
    s_.ReadThen(
        reactor, true, s_.TokenOf(ctx), access, [this, req, resp, reactor](const std::string&) {
          s_.member().FillHeader(resp->mutable_header(), s_.member().mvcc().revision());
          resp->set_id(req->id());
          std::optional<kv::LeaseInfo> info =
              s_.member().mvcc().GetLease(req->id(), s_.member().LogNowMicros(), req->keys());
          if (!info) {
            resp->set_ttl(-1);  // etcd: an unknown (or expired) lease has TTL -1
          } else {
            resp->set_ttl(std::max<int64_t>(info->remaining_s, 0));
            resp->set_grantedttl(info->granted_ttl);
            for (const std::string& k : info->keys)
              resp->add_keys(k);
          }
          reactor->Finish(grpc::Status::OK);
        });
    return reactor;
  }

  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseLeasesRequest*,
                                        etcdserverpb::LeaseLeasesResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    // Any authenticated user may list lease ids (etcd checks none).
    auto access = [] {
      bulwark::internal::Request a;
      a.mutable_lease_time_to_live();
      return a;
    };
    s_.ReadThen(reactor, true, s_.TokenOf(ctx), access, [this, resp, reactor](const std::string&) {
      s_.member().FillHeader(resp->mutable_header(), s_.member().mvcc().revision());
      for (int64_t id : s_.member().mvcc().LeaseIds())
        resp->add_leases()->set_id(id);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  EtcdServer& s_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewLeaseService(EtcdServer& s) {
  return std::make_unique<LeaseService>(s);
}

}  // namespace bw::server
