#include "server/service_support.h"

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
#include "server/password.h"
#include "server/tls.h"

namespace bw::server {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// Exactly-once writes: the gRPC metadata `idempotency-key` (and the
// optional `idempotency-scope`) attach the key and a fingerprint of the
// client's request, as the client sent it, to the proposal.
absl::Status AttachIdempotency(grpc::CallbackServerContext* ctx, const char* method,
                               const google::protobuf::Message& client_req,
                               bulwark::internal::Request* r) {
  const auto& md = ctx->client_metadata();
  auto key = md.find("idempotency-key");
  if (key == md.end()) return absl::OkStatus();
  auto scope = md.find("idempotency-scope");
  std::string k(key->second.data(), key->second.size());
  std::string sc = scope == md.end() ? "" : std::string(scope->second.data(), scope->second.size());
  return kv::AttachIdempotencyKey(method, client_req, sc, k, r);
}

// Marks a replayed answer in the response metadata (before Finish).
void MarkReplayed(grpc::CallbackServerContext* ctx, const kv::MvccResult& res) {
  if (res.replayed) ctx->AddInitialMetadata("idempotent-replayed", "true");
}

bool TxnReadOnly(const etcdserverpb::TxnRequest& t) {
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      if (op.has_request_put() || op.has_request_delete_range()) return false;
      if (op.has_request_txn() && !TxnReadOnly(op.request_txn())) return false;
    }
  }
  return true;
}

bool TxnSerializable(const etcdserverpb::TxnRequest& t) {
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      if (op.has_request_range() && !op.request_range().serializable()) return false;
      if (op.has_request_txn() && !TxnSerializable(op.request_txn())) return false;
    }
  }
  return true;
}

// etcd 3.4's maintenance calls pass the auth store's errors through
// unconverted: code Unknown, "auth: permission denied".
absl::Status MaintenanceAuthError(const absl::Status& st) {
  if (st.ok() || absl::IsUnauthenticated(st)) return st;
  absl::string_view msg = st.message();
  absl::ConsumePrefix(&msg, "etcdserver: ");
  return absl::UnknownError(absl::StrCat("auth: ", msg));
}

// A status as Go's gRPC prints it ("rpc error: code = PermissionDenied desc
// = ..."), which is how etcd words a watch's cancel reason.
std::string GoStatusText(const absl::Status& st) {
  static constexpr const char* kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  size_t code = static_cast<size_t>(st.code());
  const char* name = code < std::size(kNames) ? kNames[code] : "Unknown";
  return absl::StrCat("rpc error: code = ", name, " desc = ", st.message());
}

// The description of a root-only call, for member::Member::Authorize.
size_t EtcdRequestBytes(const bulwark::internal::Request& r) {
  const google::protobuf::Message* op = nullptr;
  switch (r.op_case()) {
    case bulwark::internal::Request::kPut:
      op = &r.put();
      break;
    case bulwark::internal::Request::kDeleteRange:
      op = &r.delete_range();
      break;
    case bulwark::internal::Request::kTxn:
      op = &r.txn();
      break;
    case bulwark::internal::Request::kCompaction:
      op = &r.compaction();
      break;
    default:
      return r.ByteSizeLong();
  }
  auto varint_bytes = [](size_t n) {
    size_t b = 1;
    for (; n >= 0x80; n >>= 7)
      ++b;
    return b;
  };
  // The header: field 100 (a two-byte tag), its length, and in it the
  // request id (field 1): a tag and a ten-byte varint, etcd's ids using
  // the top bits. The request: a one-byte tag, its length, its bytes.
  constexpr size_t kHeader = 2 + 1 + 1 + 10;
  size_t n = op->ByteSizeLong();
  return kHeader + 1 + varint_bytes(n) + n;
}

bulwark::internal::Request AdminCall(const char* method) {
  bulwark::internal::Request r;
  r.mutable_admin()->set_method(method);
  return r;
}

}  // namespace bw::server
