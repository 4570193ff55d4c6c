// What the service files (services.h) share: statuses on the wire,
// idempotency metadata, the shape of a txn, etcd 3.4's wording of a few
// errors. Any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "bulwark/internal.pb.h"
#include "core/status.h"
#include "etcd/etcdserver/etcdserverpb/rpc.pb.h"
#include "kv/mvcc.h"

namespace bw::server {

// A control byte no metadata value can hold (gRPC allows printable ASCII):
// marks a user named by a client certificate rather than a token.
inline constexpr char kCertUserMark[] = "\x01cn:";

// The etcd API version bulwark implements, as Status reports it. Clients
// parse it as a semantic version to decide which calls the server has.
inline constexpr char kEtcdApiVersion[] = "3.4.0";
// gRPC's framing on top of the largest request (etcd allows the same).
inline constexpr int kGrpcOverheadBytes = 512 * 1024;

grpc::Status ToGrpc(const absl::Status& s);

// Exactly-once writes: the gRPC metadata `idempotency-key` (and the
// optional `idempotency-scope`) attach the key and a fingerprint of the
// client's request, as the client sent it, to the proposal.
absl::Status AttachIdempotency(grpc::CallbackServerContext* ctx, const char* method,
                               const google::protobuf::Message& client_req,
                               bulwark::internal::Request* r);

// Marks a replayed answer in the response metadata (before Finish).
void MarkReplayed(grpc::CallbackServerContext* ctx, const kv::MvccResult& res);

bool TxnReadOnly(const etcdserverpb::TxnRequest& t);
bool TxnSerializable(const etcdserverpb::TxnRequest& t);

// etcd 3.4's maintenance calls pass the auth store's errors through
// unconverted: code Unknown, "auth: permission denied".
absl::Status MaintenanceAuthError(const absl::Status& st);

// A status as Go's gRPC prints it ("rpc error: code = PermissionDenied desc
// = ..."), which is how etcd words a watch's cancel reason.
std::string GoStatusText(const absl::Status& st);

// The size etcd holds against --max-request-bytes: not bulwark's entry but
// etcd's own raft entry for the request (an InternalRaftRequest: a header
// with a 64-bit request id, then the request). etcd's header also carries
// the user's name when authentication is on; that is not counted here.
size_t EtcdRequestBytes(const bulwark::internal::Request& r);

// The description of a root-only call, for member::Member::Authorize.
bulwark::internal::Request AdminCall(const char* method);

}  // namespace bw::server
