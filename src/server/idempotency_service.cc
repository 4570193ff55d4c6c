// bulwark.v1.Idempotency: records that guard application side effects (docs/idempotency.md).
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

// bulwark.v1.Idempotency: records for application side effects (see
// docs/idempotency.md). Changes go through the log; reads are linearizable.
class IdempotencyService final : public bulwark::v1::Idempotency::CallbackService {
 public:
  explicit IdempotencyService(EtcdServer& s) : s_(s) {}

  grpc::ServerUnaryReactor* Begin(grpc::CallbackServerContext* ctx,
                                  const bulwark::v1::BeginRequest* req,
                                  bulwark::v1::BeginResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_idem_begin() = *req;
    return Change(ctx, "/bulwark.v1.Idempotency/Begin", *req, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* Checkpoint(grpc::CallbackServerContext* ctx,
                                       const bulwark::v1::CheckpointRequest* req,
                                       bulwark::v1::CheckpointResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_idem_checkpoint() = *req;
    return Change(ctx, "/bulwark.v1.Idempotency/Checkpoint", *req, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* ctx,
                                     const bulwark::v1::CompleteRequest* req,
                                     bulwark::v1::CompleteResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_idem_complete() = *req;
    return Change(ctx, "/bulwark.v1.Idempotency/Complete", *req, std::move(r), resp);
  }
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* ctx,
                                    const bulwark::v1::ReleaseRequest* req,
                                    bulwark::v1::ReleaseResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_idem_release() = *req;
    return Change(ctx, "/bulwark.v1.Idempotency/Release", *req, std::move(r), resp);
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const bulwark::v1::GetRequest* req,
                                bulwark::v1::GetResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto access = [] {
      bulwark::internal::Request a;
      a.mutable_idem_begin();
      return a;
    };
    s_.ReadThen(reactor, true, s_.TokenOf(ctx), access,
                [this, req, resp, reactor](const std::string& user) {
                  const bulwark::v1::Record* r = s_.member().mvcc().GetRecord(
                      member::Member::UserScope(user, req->scope()), req->key());
                  if (r == nullptr) {
                    return reactor->Finish(ToGrpc(absl::NotFoundError(
                        "bulwark: no idempotency record for this key (expired?)")));
                  }
                  *resp->mutable_record() = *r;
                  resp->mutable_record()->set_scope(member::Member::ClientScope(user, r->scope()));
                  reactor->Finish(grpc::Status::OK);
                });
    return reactor;
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx,
                                 const bulwark::v1::ListRequest* req,
                                 bulwark::v1::ListResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto access = [] {
      bulwark::internal::Request a;
      a.mutable_idem_begin();
      return a;
    };
    s_.ReadThen(
        reactor, true, s_.TokenOf(ctx), access,
        [this, req, resp, reactor](const std::string& user) {
          size_t limit = req->limit() > 0 ? std::min<int64_t>(req->limit(), 10000) : 1000;
          bool more = false;
          for (bulwark::v1::Record& r : s_.member().mvcc().ListRecords(
                   member::Member::UserScope(user, req->scope()), req->prefix(), limit, &more)) {
            r.set_scope(member::Member::ClientScope(user, r.scope()));
            *resp->add_records() = std::move(r);
          }
          resp->set_more(more);
          reactor->Finish(grpc::Status::OK);
        });
    return reactor;
  }

 private:
  // A change to a record, through the log. The call may carry an
  // `idempotency-key` of its own (the SDK's retries do): a retried Begin
  // then gets the first attempt's answer, token included, instead of
  // IN_PROGRESS against its own lock.
  template <typename Resp>
  grpc::ServerUnaryReactor* Change(grpc::CallbackServerContext* ctx, const char* method,
                                   const google::protobuf::Message& client_req,
                                   bulwark::internal::Request r, Resp* resp) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (absl::Status v = AttachIdempotency(ctx, method, client_req, &r); !v.ok()) {
      reactor->Finish(ToGrpc(v));
      return reactor;
    }
    if (r.ByteSizeLong() > s_.config().config.max_request_bytes) {
      reactor->Finish(ToGrpc(kv::etcd_errors::RequestTooLarge()));
      return reactor;
    }
    s_.loop().Post([this, ctx, r = std::move(r), resp, reactor, token = s_.TokenOf(ctx)]() mutable {
      s_.ProposeThen(ctx, reactor, token, std::move(r),
                     [resp](kv::MvccResult& res) { resp->ParseFromString(res.service_response); });
    });
    return reactor;
  }

  EtcdServer& s_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewIdempotencyService(EtcdServer& s) {
  return std::make_unique<IdempotencyService>(s);
}

}  // namespace bw::server
