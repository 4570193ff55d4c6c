// etcd's KV service: Range, Put, DeleteRange, Txn and Compact.
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

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  explicit KvService(EtcdServer& s) : s_(s) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::Status v = kv::ValidateRange(*req);
    if (!v.ok()) {
      reactor->Finish(ToGrpc(v));
      return reactor;
    }
    auto access = [req] {
      bulwark::internal::Request a;
      *a.mutable_range() = *req;
      return a;
    };
    s_.ReadThen(reactor, !req->serializable(), s_.TokenOf(ctx), access,
                [this, req, resp, reactor](const std::string&) {
                  absl::Status st = s_.member().mvcc().Range(*req, resp);
                  if (!st.ok()) return reactor->Finish(ToGrpc(st));
                  s_.member().FillHeader(resp->mutable_header(), resp->header().revision());
                  reactor->Finish(grpc::Status::OK);
                });
    return reactor;
  }

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::PutRequest* req,
                                etcdserverpb::PutResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_put() = *req;
    absl::Status v = kv::ValidatePut(*req);
    if (v.ok()) v = AttachIdempotency(ctx, "Put", *req, &r);
    return Write(
        ctx, v, std::move(r),
        [resp](kv::MvccResult& res) { resp->Swap(res.response.mutable_response_put()); },
        [resp] { return resp->mutable_header(); });
  }

  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::DeleteRangeRequest* req,
                                        etcdserverpb::DeleteRangeResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_delete_range() = *req;
    absl::Status v = kv::ValidateDeleteRange(*req);
    if (v.ok()) v = AttachIdempotency(ctx, "DeleteRange", *req, &r);
    return Write(
        ctx, v, std::move(r),
        [resp](kv::MvccResult& res) { resp->Swap(res.response.mutable_response_delete_range()); },
        [resp] { return resp->mutable_header(); });
  }

  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::TxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override {
    absl::Status v = kv::ValidateTxn(*req, static_cast<int>(s_.config().config.max_txn_ops));
    if (v.ok() && TxnReadOnly(*req)) {
      // A read-only txn needs no log entry: evaluate it after the read barrier.
      grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
      auto access = [req] {
        bulwark::internal::Request a;
        *a.mutable_txn() = *req;
        return a;
      };
      s_.ReadThen(reactor, !TxnSerializable(*req), s_.TokenOf(ctx), access,
                  [this, req, resp, reactor](const std::string& user) {
                    bulwark::internal::Request r;
                    *r.mutable_txn() = *req;
                    r.set_auth_user(user);
                    kv::MvccResult res = s_.member().mvcc().Apply(r);
                    if (!res.status.ok()) {
                      reactor->Finish(ToGrpc(res.status));
                      return;
                    }
                    resp->Swap(res.response.mutable_response_txn());
                    s_.member().FillHeader(resp->mutable_header(), res.revision);
                    reactor->Finish(grpc::Status::OK);
                  });
      return reactor;
    }
    bulwark::internal::Request r;
    *r.mutable_txn() = *req;
    if (v.ok()) v = AttachIdempotency(ctx, "Txn", *req, &r);
    return Write(
        ctx, v, std::move(r),
        [resp](kv::MvccResult& res) { resp->Swap(res.response.mutable_response_txn()); },
        [resp] { return resp->mutable_header(); });
  }

  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* ctx,
                                    const etcdserverpb::CompactionRequest* req,
                                    etcdserverpb::CompactionResponse* resp) override {
    bulwark::internal::Request r;
    *r.mutable_compaction() = *req;
    absl::Status v = AttachIdempotency(ctx, "Compact", *req, &r);
    return Write(
        ctx, v, std::move(r), [](kv::MvccResult&) {}, [resp] { return resp->mutable_header(); });
  }

 private:
  // Proposes `r` unless `valid` is an error; on success `take` moves the
  // response out of the result and the header is filled.
  template <typename Take, typename Header>
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext* ctx, absl::Status valid,
                                  bulwark::internal::Request r, Take take, Header header) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (!valid.ok()) {
      reactor->Finish(ToGrpc(valid));
      return reactor;
    }
    if (EtcdRequestBytes(r) > s_.config().config.max_request_bytes) {
      reactor->Finish(ToGrpc(kv::etcd_errors::RequestTooLarge()));
      return reactor;
    }
    s_.loop().Post(
        [this, ctx, token = s_.TokenOf(ctx), r = std::move(r), reactor, take, header]() mutable {
          s_.ProposeThen(ctx, reactor, token, std::move(r),
                         [this, take, header](kv::MvccResult& res) mutable {
                           take(res);
                           s_.member().FillHeader(header(), res.revision);
                         });
        });
    return reactor;
  }

  EtcdServer& s_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewKvService(EtcdServer& s) {
  return std::make_unique<KvService>(s);
}

}  // namespace bw::server
