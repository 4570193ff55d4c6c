#include "server/etcd_server.h"

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
#include "server/bidi_stream.h"
#include "server/client_limits.h"
#include "server/etcd_error_map.h"
#include "server/password.h"
#include "server/tls.h"

namespace bw::server {

namespace {

// A control byte no metadata value can hold (gRPC allows printable ASCII):
// marks a user named by a client certificate rather than a token.
constexpr char kCertUserMark[] = "\x01cn:";

// The etcd API version bulwark implements, as Status reports it. Clients
// parse it as a semantic version to decide which calls the server has.
constexpr char kEtcdApiVersion[] = "3.4.0";
// gRPC's framing on top of the largest request (etcd allows the same).
constexpr int kGrpcOverheadBytes = 512 * 1024;

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

bool TxnHasPut(const etcdserverpb::TxnRequest& t) {
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      if (op.has_request_put()) return true;
      if (op.has_request_txn() && TxnHasPut(op.request_txn())) return true;
    }
  }
  return false;
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

// The description of a root-only call, for EtcdServer::Authorize.
bulwark::internal::Request AdminCall(const char* method) {
  bulwark::internal::Request r;
  r.mutable_admin()->set_method(method);
  return r;
}

}  // namespace

// --- the services --------------------------------------------------------------

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
                  absl::Status st = s_.mvcc().Range(*req, resp);
                  if (!st.ok()) return reactor->Finish(ToGrpc(st));
                  s_.FillHeader(resp->mutable_header(), resp->header().revision());
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
                    kv::MvccResult res = s_.mvcc().Apply(r);
                    if (!res.status.ok()) {
                      reactor->Finish(ToGrpc(res.status));
                      return;
                    }
                    resp->Swap(res.response.mutable_response_txn());
                    s_.FillHeader(resp->mutable_header(), res.revision);
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
    if (r.ByteSizeLong() > s_.config().config.max_request_bytes) {
      reactor->Finish(ToGrpc(kv::etcd_errors::RequestTooLarge()));
      return reactor;
    }
    s_.loop().Post([this, ctx, token = s_.TokenOf(ctx), r = std::move(r), reactor, take,
                    header]() mutable {
      s_.ProposeAs(token, std::move(r),
                   [this, ctx, reactor, take, header](absl::StatusOr<kv::MvccResult> res) mutable {
                     if (!res.ok()) {
                       reactor->Finish(ToGrpc(s_.ToEtcdError(res.status())));
                       return;
                     }
                     MarkReplayed(ctx, *res);
                     if (!res->status.ok()) {
                       reactor->Finish(ToGrpc(res->status));
                       return;
                     }
                     take(*res);
                     s_.FillHeader(header(), res->revision);
                     reactor->Finish(grpc::Status::OK);
                   });
    });
    return reactor;
  }

  EtcdServer& s_;
};

// A snapshot file: "BWSNAP01", the state's length (8 bytes, big-endian),
// the state (an MvccSnapshot), zeros to a multiple of 512 bytes, and the
// SHA-256 of all of that, which is where etcdctl looks for the checksum it
// verifies (etcd's own files end the same way).
std::string SnapshotFile(const std::string& state) {
  std::string out = "BWSNAP01";
  for (int i = 7; i >= 0; --i)
    out.push_back(static_cast<char>((state.size() >> (8 * i)) & 0xFF));
  out += state;
  out.resize((out.size() + 511) / 512 * 512, '\0');
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(out.data()), out.size(), digest);
  out.append(reinterpret_cast<const char*>(digest), sizeof(digest));
  return out;
}

// Answers a snapshot request refused for want of room.
class RefusedWriter final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  RefusedWriter() {
    Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "bulwark: two snapshots are being sent already; try again"));
  }
  void OnDone() override { delete this; }
};

// Streams the member's state machine as it is now, in chunks.
class SnapshotWriter final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  static constexpr size_t kChunkBytes = 64 * 1024;
  SnapshotWriter(EtcdServer& s, std::atomic<int>* count, const std::string& token) : count_(count) {
    std::promise<void> taken;
    absl::Status allowed;
    // The copy is taken on the loop thread, at one point in the log. It
    // holds every key and the users' password hashes: root only.
    s.loop().Post([this, &s, &taken, &allowed, &token] {
      allowed = s.Authorize(token, AdminCall("Snapshot")).status();
      if (allowed.ok()) {
        blob_ = SnapshotFile(s.mvcc().Serialize());
        s.FillHeader(&header_, s.mvcc().revision());
      }
      taken.set_value();
    });
    taken.get_future().wait();
    if (!allowed.ok()) {
      Finish(ToGrpc(MaintenanceAuthError(allowed)));
      return;
    }
    Next();
  }

 private:
  void Next() {
    if (offset_ >= blob_.size() && offset_ > 0) {
      Finish(grpc::Status::OK);
      return;
    }
    size_t n = std::min(kChunkBytes, blob_.size() - offset_);
    resp_.Clear();
    if (offset_ == 0) *resp_.mutable_header() = header_;
    resp_.set_blob(blob_.substr(offset_, n));
    offset_ += n;
    if (n == 0) offset_ = 1;  // an empty store: one empty chunk, then done
    resp_.set_remaining_bytes(blob_.size() > offset_ ? blob_.size() - offset_ : 0);
    StartWrite(&resp_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    Next();
  }
  void OnDone() override {
    count_->fetch_sub(1);
    delete this;
  }

  std::atomic<int>* count_;
  std::string blob_;
  etcdserverpb::ResponseHeader header_;
  etcdserverpb::SnapshotResponse resp_;
  size_t offset_ = 0;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(EtcdServer& s) : s_(s) {}
  std::atomic<int> snapshots_{0};

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::StatusRequest*,
                                   etcdserverpb::StatusResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, resp, reactor] {
      const raft::Raft& r = s_.node().raft();
      s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
      resp->set_version(kEtcdApiVersion);
      int64_t size = static_cast<int64_t>(s_.mvcc().bytes());
      resp->set_dbsize(size);
      resp->set_dbsizeinuse(size);
      resp->set_leader(r.leader().value());
      resp->set_raftindex(r.log().committed().value());
      resp->set_raftterm(r.term().value());
      resp->set_raftappliedindex(s_.node().applied_index().value());
      if (s_.nospace_alarm()) {
        resp->add_errors("memberID:" + std::to_string(s_.member_id()) + " alarm:NOSPACE");
      }
      resp->set_islearner(false);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Hash(grpc::CallbackServerContext* ctx, const etcdserverpb::HashRequest*,
                                 etcdserverpb::HashResponse* resp) override {
    // etcd hashes its whole backend file, which bulwark does not have; the
    // hash of every stored version (HashKV at the current revision) serves
    // the same purpose: members that agree have equal hashes.
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, resp, reactor, token = s_.TokenOf(ctx)] {
      if (!Admitted(token, "Hash", reactor)) return;
      s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
      resp->set_hash(s_.mvcc().HashKV(0));
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::AlarmRequest* req,
                                  etcdserverpb::AlarmResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (req->action() == etcdserverpb::AlarmRequest::ACTIVATE) {
      reactor->Finish(ToGrpc(absl::FailedPreconditionError(
          "etcdserver: alarms are raised by a member itself (NOSPACE when its disk is full)")));
      return reactor;
    }
    s_.loop().Post([this, req, resp, reactor, token = s_.TokenOf(ctx)] {
      if (req->action() != etcdserverpb::AlarmRequest::GET && !Admitted(token, "Alarm", reactor)) {
        return;
      }
      // A member raises NOSPACE while its disk is full and clears it itself
      // once a write fits again, so DEACTIVATE has nothing to do but report
      // what is still raised. Alarms are per member (etcd replicates them).
      s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
      bool match_member = req->memberid() == 0 || req->memberid() == s_.member_id();
      bool match_type = req->alarm() == etcdserverpb::NONE || req->alarm() == etcdserverpb::NOSPACE;
      // GET lists the raised alarms; DEACTIVATE lists those it cleared (a
      // full disk clears itself once a write fits again).
      bool raised = s_.nospace_alarm() && match_member && match_type;
      if (req->action() == etcdserverpb::AlarmRequest::DEACTIVATE && raised) s_.DisarmNoSpace();
      if (raised) {
        etcdserverpb::AlarmMember* a = resp->add_alarms();
        a->set_memberid(s_.member_id());
        a->set_alarm(etcdserverpb::NOSPACE);
      }
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MoveLeaderRequest* req,
                                       etcdserverpb::MoveLeaderResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, req, resp, reactor, token = s_.TokenOf(ctx)] {
      if (!Admitted(token, "MoveLeader", reactor)) return;
      const raft::Raft& r = s_.node().raft();
      if (r.role() != raft::Role::kLeader) {
        reactor->Finish(ToGrpc(absl::FailedPreconditionError("etcdserver: not leader")));
        return;
      }
      if (req->targetid() == s_.member_id()) {
        s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
        reactor->Finish(grpc::Status::OK);
        return;
      }
      absl::Status st = s_.node().TransferLeadership(NodeId(req->targetid()));
      if (!st.ok()) {
        // An unknown member, a learner, a transfer already under way.
        reactor->Finish(ToGrpc(absl::FailedPreconditionError("etcdserver: bad leader transferee")));
        return;
      }
      WaitForLeader(req->targetid(), resp, reactor, /*polls_left=*/50);
    });
    return reactor;
  }

 private:
  // Polls every heartbeat until `target` leads (etcd waits for the transfer too).
  void WaitForLeader(uint64_t target, etcdserverpb::MoveLeaderResponse* resp,
                     grpc::ServerUnaryReactor* reactor, int polls_left) {
    if (s_.node().raft().leader() == NodeId(target)) {
      s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
      reactor->Finish(grpc::Status::OK);
      return;
    }
    if (polls_left == 0) {
      reactor->Finish(ToGrpc(absl::UnavailableError("etcdserver: leadership transfer timeout")));
      return;
    }
    s_.loop().Schedule(s_.config().config.heartbeat_interval_ms * 1000,
                       [this, target, resp, reactor, polls_left] {
                         WaitForLeader(target, resp, reactor, polls_left - 1);
                       });
  }

 public:
  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* ctx, const etcdserverpb::SnapshotRequest*) override {
    // Each snapshot holds a copy of the store: two at a time at most.
    if (snapshots_.fetch_add(1) >= 2) {
      snapshots_.fetch_sub(1);
      auto* r = new RefusedWriter();
      return r;
    }
    return new SnapshotWriter(s_, &snapshots_, s_.TokenOf(ctx));
  }

  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::DefragmentRequest*,
                                       etcdserverpb::DefragmentResponse* resp) override {
    // etcd rewrites its backend file to give back the space compaction
    // freed. bulwark's compaction frees that memory at once, so there is
    // nothing left to give back: the answer is success, with a header.
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, resp, reactor, token = s_.TokenOf(ctx)] {
      if (!Admitted(token, "Defragment", reactor)) return;
      s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::HashKVRequest* req,
                                   etcdserverpb::HashKVResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, req, resp, reactor, token = s_.TokenOf(ctx)] {
      if (!Admitted(token, "HashKV", reactor)) return;
      int64_t rev = req->revision();
      if (rev > s_.mvcc().revision()) {
        reactor->Finish(ToGrpc(kv::etcd_errors::FutureRev()));
        return;
      }
      // etcd refuses a hash at the compaction point itself too.
      if (rev > 0 && rev <= s_.mvcc().compact_revision()) {
        reactor->Finish(ToGrpc(kv::etcd_errors::Compacted()));
        return;
      }
      s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
      resp->set_hash(s_.mvcc().HashKV(rev));
      resp->set_compact_revision(s_.mvcc().compact_revision());
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  // Root only. etcd 3.4's maintenance calls answer a refusal with the auth
  // store's own error (code Unknown, "auth: ..."), which clients print.
  bool Admitted(const std::string& token, const char* method, grpc::ServerUnaryReactor* reactor) {
    absl::StatusOr<std::string> user = s_.Authorize(token, AdminCall(method));
    if (user.ok()) return true;
    reactor->Finish(ToGrpc(MaintenanceAuthError(user.status())));
    return false;
  }

  EtcdServer& s_;
};

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(EtcdServer& s) : s_(s) {}

  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MemberListRequest*,
                                       etcdserverpb::MemberListResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, resp, reactor] {
      // etcd's member list header carries no revision.
      FinishMembers(resp, reactor);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* ctx,
                                      const etcdserverpb::MemberAddRequest* req,
                                      etcdserverpb::MemberAddResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, req, resp, reactor, token = s_.TokenOf(ctx)] {
      if (!s_.Admitted(token, "MemberAdd", reactor)) return;
      if (ForwardIfFollower(token, *req, resp, reactor,
                            &etcdserverpb::Cluster::Stub::async::MemberAdd))
        return;
      std::vector<std::string> urls(req->peerurls().begin(), req->peerurls().end());
      if (urls.empty()) return Fail(reactor, BadUrls());
      for (const std::string& u : urls) {
        if (!ParseUrl("peer-urls", u).ok()) return Fail(reactor, BadUrls());
      }
      // Only members of the configuration now: a removed member's URLs may
      // be added again (under a new id).
      const std::map<uint64_t, bulwark::internal::MemberAttributes> known = Known();
      for (const auto& [id, m] : known) {
        if (!InConf(id)) continue;
        for (const std::string& u : m.peer_urls()) {
          if (std::find(urls.begin(), urls.end(), u) != urls.end()) {
            return Fail(reactor,
                        absl::FailedPreconditionError("etcdserver: Peer URLs already exists"));
          }
        }
      }
      // The first id of these URLs never used: ids of removed members stay
      // retired (their old incarnations may still be out there).
      uint64_t id = 0;
      for (int k = 0; k < kMaxIncarnations && id == 0; ++k) {
        uint64_t candidate = MemberIdFor(urls, s_.config().config.initial_cluster_token, k);
        if (!InConf(candidate) && known.count(candidate) == 0) id = candidate;
      }
      if (id == 0) {
        return Fail(reactor, absl::FailedPreconditionError(absl::StrCat(
                                 "etcdserver: these peer URLs were added ", kMaxIncarnations,
                                 " times already; use another address")));
      }
      bulwark::internal::Request r;
      bulwark::internal::MemberAttributes* a = r.mutable_member_add();
      a->set_id(id);
      for (const std::string& u : urls)
        a->add_peer_urls(u);
      a->set_learner(req->islearner());
      bool learner = req->islearner();
      s_.ProposeAs(token, std::move(r),
                   [this, id, learner, urls, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
                     absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
                     if (!st.ok()) return Fail(reactor, st);
                     raft::ConfChange cc;
                     cc.changes.push_back({learner ? raft::ConfChangeType::kAddLearner
                                                   : raft::ConfChangeType::kAddVoter,
                                           NodeId(id)});
                     ProposeConf(cc, [this, id, learner, urls, resp, reactor](absl::Status st) {
                       if (!st.ok()) return Fail(reactor, st);
                       WaitFor([this, id] { return InConf(id); },
                               [this, id, learner, urls, resp, reactor](bool ok) {
                                 if (!ok) return Fail(reactor, kv::etcd_errors::Timeout());
                                 etcdserverpb::Member* m = resp->mutable_member();
                                 m->set_id(id);
                                 for (const std::string& u : urls)
                                   m->add_peerurls(u);
                                 m->set_islearner(learner);
                                 FinishMembers(resp, reactor);
                               });
                     });
                   });
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::MemberRemoveRequest* req,
                                         etcdserverpb::MemberRemoveResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, req, resp, reactor, token = s_.TokenOf(ctx)] {
      if (!s_.Admitted(token, "MemberRemove", reactor)) return;
      uint64_t id = req->id();
      if (!InConf(id)) return Fail(reactor, MemberNotFound());
      if (ForwardIfFollower(token, *req, resp, reactor,
                            &etcdserverpb::Cluster::Stub::async::MemberRemove))
        return;
      raft::ConfChange cc;
      cc.changes.push_back({raft::ConfChangeType::kRemoveNode, NodeId(id)});
      ProposeConf(cc, [this, id, resp, reactor](absl::Status st) {
        if (!st.ok()) return Fail(reactor, st);
        WaitFor([this, id] { return !InConf(id); },
                [this, resp, reactor](bool ok) {
                  if (!ok) return Fail(reactor, kv::etcd_errors::Timeout());
                  FinishMembers(resp, reactor);
                });
      });
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* ctx,
                                          const etcdserverpb::MemberPromoteRequest* req,
                                          etcdserverpb::MemberPromoteResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, req, resp, reactor, token = s_.TokenOf(ctx)] {
      if (!s_.Admitted(token, "MemberPromote", reactor)) return;
      uint64_t id = req->id();
      if (!InConf(id)) return Fail(reactor, MemberNotFound());
      const raft::Raft& r = s_.node().raft();
      const auto& learners = r.conf().learners;
      if (std::find(learners.begin(), learners.end(), NodeId(id)) == learners.end()) {
        return Fail(reactor,
                    absl::FailedPreconditionError("etcdserver: can only promote a learner member"));
      }
      if (r.role() != raft::Role::kLeader) {
        // Only the leader knows how far the learner is: ask it (etcd forwards too).
        if (!ForwardToLeader(token, *req, resp, reactor,
                             &etcdserverpb::Cluster::Stub::async::MemberPromote)) {
          Fail(reactor, kv::etcd_errors::NoLeader());
        }
        return;
      }
      // etcd's readiness rule: the learner has at least 90% of the leader's log.
      const raft::Progress* pr = r.progress(NodeId(id));
      uint64_t leader_last = r.log().last_index().value();
      if (pr == nullptr || pr->match.value() * 10 < leader_last * 9) {
        return Fail(reactor,
                    absl::FailedPreconditionError(
                        "etcdserver: can only promote a learner member which is in sync with "
                        "leader"));
      }
      raft::ConfChange cc;
      cc.changes.push_back({raft::ConfChangeType::kAddVoter, NodeId(id)});
      ProposeConf(cc, [this, id, resp, reactor](absl::Status st) {
        if (!st.ok()) return Fail(reactor, st);
        WaitFor(
            [this, id] {
              const auto& voters = s_.node().raft().conf().voters;
              return std::find(voters.begin(), voters.end(), NodeId(id)) != voters.end();
            },
            [this, resp, reactor](bool ok) {
              if (!ok) return Fail(reactor, kv::etcd_errors::Timeout());
              FinishMembers(resp, reactor);
            });
      });
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::MemberUpdateRequest* req,
                                         etcdserverpb::MemberUpdateResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, req, resp, reactor, token = s_.TokenOf(ctx)] {
      if (!s_.Admitted(token, "MemberUpdate", reactor)) return;
      if (!InConf(req->id())) return Fail(reactor, MemberNotFound());
      if (req->peerurls().empty()) return Fail(reactor, BadUrls());
      for (const std::string& u : req->peerurls()) {
        if (!ParseUrl("peer-urls", u).ok()) return Fail(reactor, BadUrls());
      }
      bulwark::internal::Request r;
      r.mutable_member_update()->set_id(req->id());
      *r.mutable_member_update()->mutable_peer_urls() = req->peerurls();
      s_.ProposeAs(token, std::move(r), [this, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
        absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
        if (!st.ok()) return Fail(reactor, st);
        FinishMembers(resp, reactor);
      });
    });
    return reactor;
  }

 private:
  static absl::Status BadUrls() {
    return absl::InvalidArgumentError("etcdserver: given member URLs are invalid");
  }
  static absl::Status MemberNotFound() {
    return absl::NotFoundError("etcdserver: member not found");
  }
  absl::Status ConfError(const absl::Status& st) {
    if (absl::StrContains(st.message(), "pending")) {
      return absl::FailedPreconditionError(
          "etcdserver: another membership change is in progress; try again");
    }
    return s_.ToEtcdError(st);
  }
  static void Fail(grpc::ServerUnaryReactor* reactor, const absl::Status& st) {
    reactor->Finish(ToGrpc(st));
  }
  bool InConf(uint64_t id) {
    const raft::ConfState& cs = s_.node().raft().conf();
    for (const auto* v : {&cs.voters, &cs.learners, &cs.voters_outgoing, &cs.learners_next}) {
      if (std::find(v->begin(), v->end(), NodeId(id)) != v->end()) return true;
    }
    return false;
  }
  // Members with what is known of them: the state machine's records, and
  // the initial cluster's (from flags) for those without one.
  std::map<uint64_t, bulwark::internal::MemberAttributes> Known() {
    std::map<uint64_t, bulwark::internal::MemberAttributes> out = s_.mvcc().members();
    for (const Member& m : s_.config().members) {
      bulwark::internal::MemberAttributes& a = out[m.id];
      a.set_id(m.id);
      if (a.peer_urls().empty()) {
        for (const std::string& u : m.peer_urls)
          a.add_peer_urls(u);
      }
    }
    return out;
  }
  void FillMembers(google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out) {
    const raft::ConfState& cs = s_.node().raft().conf();
    std::map<uint64_t, bool> ids;  // id -> learner
    for (NodeId n : cs.voters)
      ids[n.value()] = false;
    for (NodeId n : cs.voters_outgoing)
      ids[n.value()] = false;
    for (NodeId n : cs.learners)
      ids[n.value()] = true;
    for (NodeId n : cs.learners_next)
      ids[n.value()] = true;
    std::map<uint64_t, bulwark::internal::MemberAttributes> known = Known();
    if (ids.empty()) {
      // Not caught up yet (a member that is joining): the initial cluster.
      for (const Member& m : s_.config().members)
        ids[m.id] = false;
    }
    for (const auto& [id, learner] : ids) {
      etcdserverpb::Member* pm = out->Add();
      pm->set_id(id);
      pm->set_islearner(learner);
      auto it = known.find(id);
      if (it == known.end()) continue;
      for (const std::string& u : it->second.peer_urls())
        pm->add_peerurls(u);
      // A member that has not run yet has no name or client URLs (etcd
      // lists it as unstarted).
      pm->set_name(it->second.name());
      for (const std::string& u : it->second.client_urls())
        pm->add_clienturls(u);
    }
  }
  // Sends a membership call to the leader's client URL and relays its
  // answer: the leader alone proposes configuration changes (and knows how
  // far a learner is), as in etcd. False when no leader is known.
  template <typename Req, typename Resp>
  bool ForwardToLeader(
      const std::string& token, const Req& req, Resp* resp, grpc::ServerUnaryReactor* reactor,
      void (etcdserverpb::Cluster::Stub::async::*method)(grpc::ClientContext*, const Req*, Resp*,
                                                         std::function<void(grpc::Status)>)) {
    uint64_t leader = s_.node().raft().leader().value();
    auto it = s_.mvcc().members().find(leader);
    if (leader == 0 || it == s_.mvcc().members().end() || it->second.client_urls().empty()) {
      return false;
    }
    absl::StatusOr<Url> u = ParseUrl("client-urls", it->second.client_urls(0));
    if (!u.ok()) return false;
    struct Call {
      std::unique_ptr<etcdserverpb::Cluster::Stub> stub;
      grpc::ClientContext ctx;
      Req req;
      Resp resp;
    };
    auto call = std::make_shared<Call>();
    call->stub = etcdserverpb::Cluster::NewStub(
        grpc::CreateChannel(u->HostPort(), MemberChannelCredentials(s_.config().config, *u)));
    call->req = req;
    call->ctx.set_deadline(env::WallDeadlineAfter(std::chrono::seconds(5)));
    // Every member knows every token: the leader checks the caller again.
    // (A user named by a client certificate cannot be passed on: the leader
    // sees this member's certificate; this member checked the caller.)
    if (!token.empty() && !absl::StartsWith(token, kCertUserMark)) {
      call->ctx.AddMetadata("token", token);
    }
    (call->stub->async()->*method)(&call->ctx, &call->req, &call->resp,
                                   [call, resp, reactor](grpc::Status st) {
                                     if (st.ok()) resp->Swap(&call->resp);
                                     // The leader this member knew is gone
                                     // (an election is under way): etcd's
                                     // retryable error.
                                     if (st.error_code() == grpc::StatusCode::UNAVAILABLE &&
                                         st.error_message().rfind("etcdserver:", 0) != 0) {
                                       st = ToGrpc(kv::etcd_errors::LeaderChanged());
                                     }
                                     reactor->Finish(st);
                                   });
    return true;
  }
  // Answers with the header and the member list (membership calls).
  template <typename Resp>
  void FinishMembers(Resp* resp, grpc::ServerUnaryReactor* reactor) {
    s_.FillHeader(resp->mutable_header(), 0);
    FillMembers(resp->mutable_members());
    reactor->Finish(grpc::Status::OK);
  }
  // On a follower: hands the call to the leader and returns true.
  template <typename Req, typename Resp>
  bool ForwardIfFollower(
      const std::string& token, const Req& req, Resp* resp, grpc::ServerUnaryReactor* reactor,
      void (etcdserverpb::Cluster::Stub::async::*method)(grpc::ClientContext*, const Req*, Resp*,
                                                         std::function<void(grpc::Status)>)) {
    if (s_.node().raft().role() == raft::Role::kLeader) return false;
    if (!ForwardToLeader(token, req, resp, reactor, method)) {
      Fail(reactor, kv::etcd_errors::NoLeader());
    }
    return true;
  }
  // Proposes a configuration change on the leader, retrying while another
  // change is still being applied (for about three seconds).
  void ProposeConf(raft::ConfChange cc, std::function<void(absl::Status)> done, int tries = 60) {
    absl::Status st = s_.node().ProposeConfChange(cc);
    if (st.ok() || tries == 0 || !absl::StrContains(st.message(), "pending")) {
      return done(st.ok() ? st : ConfError(st));
    }
    s_.loop().Schedule(s_.config().config.heartbeat_interval_ms * 1000,
                       [this, cc = std::move(cc), done = std::move(done), tries]() mutable {
                         if (!s_.node_ready()) return done(kv::etcd_errors::Stopped());
                         ProposeConf(std::move(cc), std::move(done), tries - 1);
                       });
  }
  // Calls done(true) once cond() holds (checked every heartbeat), or
  // done(false) after about five seconds.
  void WaitFor(std::function<bool()> cond, std::function<void(bool)> done, int polls = 100) {
    if (s_.node_ready() && cond()) return done(true);
    if (polls == 0 || !s_.node_ready()) return done(false);
    s_.loop().Schedule(s_.config().config.heartbeat_interval_ms * 1000,
                       [this, cond = std::move(cond), done = std::move(done), polls]() mutable {
                         WaitFor(std::move(cond), std::move(done), polls - 1);
                       });
  }

  EtcdServer& s_;
};

class KeepAliveStream final
    : public BidiStream<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveStream(EtcdServer& s, std::string token)
      : BidiStream(1024, /*finish_on_half_close=*/true), s_(s), token_(std::move(token)) {}

 private:
  void OnRequest(etcdserverpb::LeaseKeepAliveRequest req) override {
    auto self = std::static_pointer_cast<KeepAliveStream>(shared_from_this());
    s_.loop().Post([self, id = req.id()] {
      self->s_.RenewLease(self->token_, id, [self, id](absl::StatusOr<int64_t> ttl) {
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
        s.FillHeader(out.mutable_header(), s.mvcc().revision());
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
          r.set_time_us(s_.LogNowMicros());
          etcdserverpb::LeaseGrantRequest* g = r.mutable_lease_grant();
          *g = *req;
          if (g->id() == 0) g->set_id(s_.NewLeaseId());
          g->set_ttl(std::max(g->ttl(), s_.MinLeaseTtl()));
          s_.ProposeAs(token, std::move(r),
                       [this, ctx, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
                         if (res.ok()) MarkReplayed(ctx, *res);
                         absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
                         if (!st.ok()) {
                           reactor->Finish(ToGrpc(st));
                           return;
                         }
                         resp->set_id(res->lease_id);
                         resp->set_ttl(res->lease_ttl);
                         s_.FillHeader(resp->mutable_header(), res->revision);
                         reactor->Finish(grpc::Status::OK);
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
      s_.ProposeAs(token, std::move(r),
                   [this, ctx, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
                     if (res.ok()) MarkReplayed(ctx, *res);
                     absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
                     if (!st.ok()) {
                       reactor->Finish(ToGrpc(st));
                       return;
                     }
                     s_.FillHeader(resp->mutable_header(), res->revision);
                     reactor->Finish(grpc::Status::OK);
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
    s_.ReadThen(reactor, true, s_.TokenOf(ctx), access,
                [this, req, resp, reactor](const std::string&) {
                  s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
                  resp->set_id(req->id());
                  std::optional<kv::LeaseInfo> info =
                      s_.mvcc().GetLease(req->id(), s_.LogNowMicros(), req->keys());
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
      s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
      for (int64_t id : s_.mvcc().LeaseIds())
        resp->add_leases()->set_id(id);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  EtcdServer& s_;
};

// The watch stream speaks bytes (a raw gRPC method): a response is written
// from its own few bytes and the events it shares with every other watcher
// of them (WatchReply), not serialized whole once per watcher.
class WatchStream final : public BidiStream<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // A client that leaves this many responses unread loses its watchers.
  static constexpr size_t kMaxQueued = 4096;
  WatchStream(EtcdServer& s, std::string token)
      : BidiStream(kMaxQueued, /*finish_on_half_close=*/false), s_(s), token_(std::move(token)) {}

  void Open() {
    std::weak_ptr<WatchStream> weak = std::static_pointer_cast<WatchStream>(shared_from_this());
    s_.loop().Post([this, weak] {
      sid_ = s_.watch_hub().AddStream([weak](WatchReply r) {
        std::shared_ptr<WatchStream> p = weak.lock();
        if (p == nullptr) return false;
        if (p->Send(p->s_.EncodeWatchReply(r))) return true;
        // A client that leaves this many responses unread: its watchers
        // are dropped and the stream ends, so it watches again from the
        // last revision it saw (as etcd's clients do on a stream error).
        p->Close(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              "bulwark: watch stream too far behind; watch again"));
        return false;
      });
    });
  }

 private:
  void OnRequest(grpc::ByteBuffer bytes) override {
    auto self = std::static_pointer_cast<WatchStream>(shared_from_this());
    etcdserverpb::WatchRequest req;
    grpc::ProtoBufferReader reader(&bytes);
    if (!req.ParseFromZeroCopyStream(&reader)) {
      // What gRPC answers a request it cannot parse.
      Close(grpc::Status(grpc::StatusCode::INTERNAL, "bulwark: malformed WatchRequest"));
      RequestDone();
      return;
    }
    s_.loop().Post([self, req = std::move(req)] {
      if (req.has_create_request()) {
        // A watcher may only see keys its user may read (checked when it
        // is created, as etcd does).
        bulwark::internal::Request access;
        *access.mutable_watch_create() = req.create_request();
        self->s_.ResolveUser(self->token_, [self, req, access](absl::StatusOr<std::string> user) {
          if (user.ok()) {
            if (absl::Status st = self->s_.mvcc().Authorize(*user, access); !st.ok()) user = st;
          }
          self->CreateOrRefuse(req, user.status());
        });
        return;
      }
      self->s_.watch_hub().OnRequest(self->sid_, req);
      self->RequestDone();
    });
  }
  // A create request once its user is known: refused (created and canceled,
  // with etcd's reason) or handed to the hub. Loop thread.
  void CreateOrRefuse(const etcdserverpb::WatchRequest& req, const absl::Status& allowed) {
    if (!allowed.ok()) {
      etcdserverpb::WatchResponse refused;
      s_.FillHeader(refused.mutable_header(), s_.mvcc().revision());
      refused.set_watch_id(req.create_request().watch_id());
      refused.set_created(true);
      refused.set_canceled(true);
      refused.set_cancel_reason(GoStatusText(allowed));
      Send(s_.EncodeWatchReply(WatchReply{std::move(refused), nullptr}));
    } else {
      s_.watch_hub().OnRequest(sid_, req);
    }
    RequestDone();
  }
  void OnClosed() override {
    auto self = std::static_pointer_cast<WatchStream>(shared_from_this());
    s_.loop().Post([self] { self->s_.watch_hub().RemoveStream(self->sid_); });
  }

  EtcdServer& s_;
  const std::string token_;
  uint64_t sid_ = 0;  // on the loop thread
};

class WatchService final
    : public etcdserverpb::Watch::WithRawCallbackMethod_Watch<etcdserverpb::Watch::Service> {
 public:
  explicit WatchService(EtcdServer& s) : s_(s) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Watch(
      grpc::CallbackServerContext* ctx) override {
    auto stream = std::make_shared<WatchStream>(s_, s_.TokenOf(ctx));
    stream->Open();
    stream->Begin();
    return stream.get();
  }

 private:
  EtcdServer& s_;
};

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
                  const bulwark::v1::Record* r =
                      s_.mvcc().GetRecord(EtcdServer::UserScope(user, req->scope()), req->key());
                  if (r == nullptr) {
                    return reactor->Finish(ToGrpc(absl::NotFoundError(
                        "bulwark: no idempotency record for this key (expired?)")));
                  }
                  *resp->mutable_record() = *r;
                  resp->mutable_record()->set_scope(EtcdServer::ClientScope(user, r->scope()));
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
          for (bulwark::v1::Record& r : s_.mvcc().ListRecords(
                   EtcdServer::UserScope(user, req->scope()), req->prefix(), limit, &more)) {
            r.set_scope(EtcdServer::ClientScope(user, r.scope()));
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
      s_.ProposeAs(token, std::move(r),
                   [this, ctx, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
                     absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
                     if (res.ok()) MarkReplayed(ctx, *res);
                     if (!st.ok()) return reactor->Finish(ToGrpc(st));
                     resp->ParseFromString(res->service_response);
                     reactor->Finish(grpc::Status::OK);
                   });
    });
    return reactor;
  }

  EtcdServer& s_;
};

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
      const kv::AuthStore& a = s_.mvcc().auth();
      if (!a.enabled()) return reactor->Finish(ToGrpc(kv::auth_errors::AuthNotEnabled()));
      const authpb::User* u = a.FindUser(req->name());
      // An unknown user is checked against no hash, slowly all the same, so
      // the answer's timing does not tell which user names exist.
      std::string stored = u != nullptr && !u->options().no_password() ? u->password() : "";
      bool queued = s_.RunSlow([this, req, resp, reactor, stored] {
        bool ok = CheckPassword(req->password(), stored.empty() ? kNoHash : stored);
        ok = ok && !stored.empty();
        s_.loop().Post([this, ok, req, resp, reactor] {
          if (!ok) return reactor->Finish(ToGrpc(kv::auth_errors::AuthFailed()));
          if (s_.jwt() != nullptr) {
            // A signed token needs no log entry: every member checks it.
            absl::StatusOr<std::string> jwt =
                s_.jwt()->Sign(req->name(), s_.mvcc().auth().revision(), env::UnixMillisNow());
            if (!jwt.ok()) return reactor->Finish(ToGrpc(jwt.status()));
            resp->set_token(*std::move(jwt));
            s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
            return reactor->Finish(grpc::Status::OK);
          }
          std::string token = NewSimpleToken(s_.NextTokenSuffix());
          bulwark::internal::Request r;
          r.mutable_auth_authenticate()->set_name(req->name());
          r.mutable_auth_authenticate()->set_token(token);
          s_.Propose(std::move(r),
                     [this, token, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
                       absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
                       if (!st.ok()) return reactor->Finish(ToGrpc(st));
                       resp->set_token(token);
                       s_.FillHeader(resp->mutable_header(), res->revision);
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
      reactor->Finish(ToGrpc(absl::InvalidArgumentError("etcdserver: permission not given")));
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
          const kv::AuthStore& a = s_.mvcc().auth();
          if (user.empty() || !own(a, user)) {
            if (absl::Status st = a.CheckAdmin(user); !st.ok()) {
              return reactor->Finish(ToGrpc(st));
            }
          }
          if (absl::Status st = read(a, resp); !st.ok()) {
            return reactor->Finish(ToGrpc(st));
          }
          s_.FillHeader(resp->mutable_header(), s_.mvcc().revision());
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
    s_.ProposeAs(token, std::move(r), [this, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
      absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
      if (!st.ok()) return reactor->Finish(ToGrpc(st));
      s_.FillHeader(resp->mutable_header(), res->revision);
      reactor->Finish(grpc::Status::OK);
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
      if (absl::StatusOr<std::string> who = s_.Authorize(token, r); !who.ok()) {
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

struct EtcdServer::Services {
  explicit Services(EtcdServer& s)
      : kv(s), maintenance(s), cluster(s), lease(s), watch(s), idempotency(s), auth(s) {}
  KvService kv;
  MaintenanceService maintenance;
  ClusterService cluster;
  LeaseService lease;
  WatchService watch;
  IdempotencyService idempotency;
  AuthService auth;
};

// --- the server ------------------------------------------------------------------

class EtcdServer::Observer final : public node::NodeObserver {
 public:
  explicit Observer(EtcdServer& s) : s_(s) {}
  void OnApplied(NodeId, const raft::Entry& e, uint64_t) override {
    s_.ObserveLogTime();
    if (s_.mvcc_ != nullptr) {
      for (kv::AuthStore::Notice& n : s_.mvcc_->TakeAuthNotices()) {
        switch (n.kind) {
          case kv::AuthStore::Notice::kTokenIssued:
            s_.tokens_.Issue(n.token, n.user, s_.NowMicros());
            break;
          case kv::AuthStore::Notice::kUserChanged:
            s_.tokens_.DropUser(n.user);
            break;
          case kv::AuthStore::Notice::kDisabled:
            s_.tokens_.Clear();
            break;
        }
      }
    }
    if (s_.watch_hub_ != nullptr) s_.watch_hub_->OnApplied();
    if (s_.mvcc_ != nullptr && s_.mvcc_->members_version() != s_.synced_members_version_) {
      s_.SyncMembers();
    }
    if (e.type == raft::EntryType::kConfChange && s_.node_ != nullptr) s_.CheckRemoved();
  }
  void OnSnapshotInstalled(NodeId, const raft::SnapshotMeta&, uint64_t) override {
    s_.ObserveLogTime();
    // Users may be gone or have new passwords: clients authenticate again.
    s_.tokens_.Clear();
    if (s_.watch_hub_ != nullptr) s_.watch_hub_->Resync();
    s_.SyncMembers();
    if (s_.node_ != nullptr) s_.CheckRemoved();
  }
  void OnHalted(NodeId, const absl::Status& why) override {
    {
      std::lock_guard<std::mutex> lock(s_.halted_mu_);
      s_.halted_ = why;
    }
    if (s_.on_halted_) s_.on_halted_(why);
  }

 private:
  EtcdServer& s_;
};

EtcdServer::EtcdServer(ResolvedConfig config) : config_(std::move(config)) {}

absl::StatusOr<std::unique_ptr<EtcdServer>> EtcdServer::Start(ResolvedConfig config) {
  std::unique_ptr<EtcdServer> s(new EtcdServer(std::move(config)));
  BW_RETURN_IF_ERROR(s->Init());
  return s;
}

absl::Status EtcdServer::Init() {
  loop_.Start("bw-member");
  slow_loop_.Start("bw-auth");
  tokens_ = SimpleTokens(config_.config.auth_token_ttl_s * 1'000'000);
  if (config_.config.auth_token != "simple") {
    absl::StatusOr<JwtOptions> jo = ParseJwtOptions(config_.config.auth_token);
    if (!jo.ok()) return jo.status();
    absl::StatusOr<std::unique_ptr<JwtTokens>> jwt = JwtTokens::Load(*jo);
    if (!jwt.ok()) return jwt.status();
    jwt_ = std::move(*jwt);
  }
  // A member that ran before knows its cluster from its data directory; a
  // member joining an existing cluster for the first time learns it from
  // the first peer that calls (the leader, once the member was added).
  const std::string id_path = ClusterIdPath();
  {
    env::RealDisk disk;
    if (disk.Exists(id_path)) {
      absl::StatusOr<std::string> text = disk.ReadFile(id_path);
      // "<cluster id>\n<member id>\n" (hex); files of older builds have no
      // member id: it is then the one the peer URLs give.
      std::vector<std::string> lines;
      if (text.ok()) lines = absl::StrSplit(*text, '\n', absl::SkipWhitespace());
      uint64_t id = 0;
      uint64_t member = config_.member_id;
      if (lines.empty() || lines.size() > 2 ||
          !absl::SimpleHexAtoi(absl::StripAsciiWhitespace(lines[0]), &id) || id == 0 ||
          (lines.size() == 2 &&
           (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(lines[1]), &member) || member == 0))) {
        return absl::DataLossError(absl::StrCat(id_path, ": not a cluster id and member id"));
      }
      config_.cluster_id = id;
      for (Member& m : config_.members) {
        if (m.id == config_.member_id) m.id = member;
      }
      config_.member_id = member;
    } else if (!config_.new_cluster) {
      config_.cluster_id = 0;
    }
  }
  absl::Status started;
  std::promise<void> done;
  auto learned = std::make_shared<std::promise<void>>();
  std::future<void> learned_f = learned->get_future();
  loop_.Post([&] {
    transport::TcpNetworkOptions o;
    o.self = NodeId(config_.member_id);
    if (config_.cluster_id == 0) {
      for (const Member& m : config_.members) {
        if (m.id != config_.member_id) continue;
        for (int k = 1; k < kMaxIncarnations; ++k)
          o.joining_ids.push_back(
              NodeId(MemberIdFor(m.peer_urls, config_.config.initial_cluster_token, k)));
      }
    }
    o.cluster_id = config_.cluster_id;
    o.listen_host = config_.peer_listen.IpHost();
    o.listen_port = config_.peer_listen.port;
    if (config_.peer_listen.tls()) {
      o.tls = PeerTlsOptionsFor(config_);
      o.on_tls_error = LogPeerTlsError;
    }
    absl::StatusOr<std::unique_ptr<transport::TcpNetwork>> net =
        transport::TcpNetwork::Listen(loop_, o);
    if (!net.ok()) {
      started = absl::Status(net.status().code(),
                             absl::StrCat("--listen-peer-urls: ", net.status().message()));
      done.set_value();
      return;
    }
    net_ = std::move(*net);
    for (const Member& m : config_.members) {
      if (m.id == config_.member_id) continue;
      absl::StatusOr<Url> u = ParseUrl("initial-cluster", m.peer_urls[0]);
      net_->SetPeer(NodeId(m.id), u->IpHost(), u->port, u->host);
      // A joining member learns the members' ids from the cluster's state,
      // but must answer the leader before it has any: the leader may be a
      // member added again under a later incarnation's id.
      for (int k = 1; config_.cluster_id == 0 && k < kMaxIncarnations; ++k) {
        net_->SetPeer(NodeId(MemberIdFor(m.peer_urls, config_.config.initial_cluster_token, k)),
                      u->IpHost(), u->port, u->host);
      }
    }
    env_ = std::make_unique<env::RealEnv>(loop_, *net_);
    log_time_ = std::make_unique<member::LogTime>(env_->clock());
    observer_ = std::make_unique<Observer>(*this);
    if (config_.cluster_id == 0) {
      net_->SetOnClusterLearned([this, learned](uint64_t id, NodeId self) {
        config_.cluster_id = id;
        // A member added again after it was removed has an id of a later
        // incarnation; the leader's call names it.
        for (Member& m : config_.members) {
          if (m.id == config_.member_id) m.id = self.value();
        }
        config_.member_id = self.value();
        learned->set_value();
      });
    } else {
      learned->set_value();
    }
    done.set_value();
  });
  done.get_future().wait();
  BW_RETURN_IF_ERROR(started);
  if (learned_f.wait_for(std::chrono::seconds(kJoinWaitSeconds)) != std::future_status::ready) {
    return absl::DeadlineExceededError(absl::StrCat(
        "--initial-cluster-state existing: no member of the cluster called within ",
        kJoinWaitSeconds,
        " s. Add this member first (etcdctl member add NAME --peer-urls=...) and check that "
        "the members can reach ",
        config_.peer_listen.HostPort()));
  }
  std::promise<void> node_done;
  loop_.Post([&] {
    started = StartNode();
    node_done.set_value();
  });
  node_done.get_future().wait();
  BW_RETURN_IF_ERROR(started);

  services_ = std::make_unique<Services>(*this);
  grpc::ServerBuilder b;
  // A second server on the same port must fail, not share the port.
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  b.SetMaxReceiveMessageSize(static_cast<int>(config_.config.max_request_bytes) +
                             kGrpcOverheadBytes);
  b.SetMaxSendMessageSize(INT32_MAX);
  ApplyClientLimits(config_.config, &b);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MakeMetricsInterceptor(grpc_metrics_));
  b.experimental().SetInterceptorCreators(std::move(interceptors));
  SetGrpcCipherList(config_.openssl_ciphers);
  std::vector<std::unique_ptr<int>> ports;
  for (const Url& u : config_.client_listen) {
    ports.push_back(std::make_unique<int>(0));
    b.AddListeningPort(
        u.HostPort(),
        u.tls() ? ClientServerCredentials(config_.config) : grpc::InsecureServerCredentials(),
        ports.back().get());
  }
  b.RegisterService(&services_->kv);
  b.RegisterService(&services_->maintenance);
  b.RegisterService(&services_->cluster);
  b.RegisterService(&services_->lease);
  b.RegisterService(&services_->watch);
  b.RegisterService(&services_->idempotency);
  b.RegisterService(&services_->auth);
  grpc_ = b.BuildAndStart();
  if (grpc_ == nullptr) {
    std::vector<std::string> where;
    for (const Url& u : config_.client_listen)
      where.push_back(u.HostPort());
    return absl::UnavailableError(absl::StrCat("--listen-client-urls: cannot listen on ",
                                               absl::StrJoin(where, ", "),
                                               " (in use, or not an address of this machine)"));
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    if (*ports[i] == 0) {
      return absl::UnavailableError(absl::StrCat("--listen-client-urls: cannot listen on ",
                                                 config_.client_listen[i].HostPort(),
                                                 " (in use, or not an address of this machine)"));
    }
  }
  return absl::OkStatus();
}

EtcdServer::~EtcdServer() {
  // Clients first: no new work; calls in progress are answered as the node
  // stops (its waiting callers get their errors on the loop thread).
  // Streams (watch, keep-alive) never end by themselves: they are cancelled
  // after a second.
  if (grpc_) grpc_->Shutdown(env::WallDeadlineAfter(std::chrono::seconds(1)));
  std::promise<void> done;
  loop_.Post([&] {
    loop_.Cancel(lease_timer_);
    http_.clear();
    node_.reset();
    net_.reset();
    done.set_value();
  });
  done.get_future().wait();
  if (grpc_) grpc_->Wait();
  loop_.Stop();
}

void EtcdServer::OnLeaseTimer() {
  lease_timer_ =
      loop_.Schedule(config_.config.heartbeat_interval_ms * 1000, [this] { OnLeaseTimer(); });
  MaybePublish();
  if (node_ == nullptr || node_->raft().role() != raft::Role::kLeader) return;
  std::optional<int64_t> now = log_time_->TickDue(*mvcc_);
  if (!now) return;
  bulwark::internal::Request r;
  r.mutable_tick()->set_now_us(*now);
  Propose(std::move(r), [this](absl::StatusOr<kv::MvccResult>) { log_time_->TickDone(); });
}

void EtcdServer::ServeHttp(const std::string& path, transport::HttpReply reply) {
  if (node_ == nullptr) {
    reply({503, "text/plain; charset=utf-8", "stopping\n"});
    return;
  }
  if (path == "/metrics") {
    reply({200, "text/plain; version=0.0.4; charset=utf-8", RenderMetrics(*this, grpc_metrics_)});
  } else if (path == "/readyz") {
    // Ready: the member knows a leader and its storage works.
    bool ready = node_->halted().ok() && node_->raft().leader() != kNoNode;
    reply({ready ? 200 : 503, "text/plain; charset=utf-8", ready ? "ok\n" : "not ready\n"});
  } else if (path == "/health") {
    // etcd's check: a leader, no alarm, and a linearizable read that works.
    auto unhealthy = [&reply](const std::string& why) {
      reply({503, "application/json",
             absl::StrCat("{\"health\":\"false\",\"reason\":\"", why, "\"}")});
    };
    if (!node_->halted().ok()) return unhealthy("storage failed");
    if (node_->raft().leader() == kNoNode) return unhealthy("no leader");
    if (nospace_alarm()) return unhealthy("alarm NOSPACE");
    node_->ReadBarrier(true, [reply](absl::Status st) {
      if (st.ok()) {
        reply({200, "application/json", "{\"health\":\"true\"}"});
      } else {
        reply({503, "application/json",
               absl::StrCat("{\"health\":\"false\",\"reason\":\"read failed: ",
                            std::string(st.message()), "\"}")});
      }
    });
  } else {
    reply({404, "text/plain; charset=utf-8", "not found: try /metrics, /health or /readyz\n"});
  }
}

void EtcdServer::MaybePublish() {
  if (node_ == nullptr || published_ || publish_in_flight_) return;
  if (node_->raft().leader() == kNoNode) return;
  bulwark::internal::Request r;
  bulwark::internal::MemberAttributes* m = r.mutable_publish();
  m->set_id(config_.member_id);
  m->set_name(config_.config.name);
  for (const std::string& u : config_.config.initial_advertise_peer_urls)
    m->add_peer_urls(u);
  for (const std::string& u : config_.config.advertise_client_urls)
    m->add_client_urls(u);
  auto it = mvcc_->members().find(config_.member_id);
  if (it != mvcc_->members().end() && it->second.name() == m->name() &&
      it->second.client_urls().size() == m->client_urls().size() &&
      std::equal(m->client_urls().begin(), m->client_urls().end(),
                 it->second.client_urls().begin())) {
    published_ = true;  // the same attributes are there from an earlier run
    return;
  }
  publish_in_flight_ = true;
  Propose(std::move(r), [this](absl::StatusOr<kv::MvccResult> res) {
    publish_in_flight_ = false;
    if (res.ok() && res->status.ok()) published_ = true;
  });
}

bool EtcdServer::CheckQuota(const bulwark::internal::Request& req) {
  // etcd's rule: puts (alone or in a txn) and lease grants are refused once
  // the data would pass --quota-backend-bytes, and from then on while the
  // NOSPACE alarm is raised; deletes, reads and compaction go on, so space
  // can be freed (then `etcdctl alarm disarm`).
  bool grows = req.has_put() || req.has_lease_grant() || req.has_idem_begin() ||
               req.has_idem_complete() || (req.has_txn() && TxnHasPut(req.txn()));
  if (!grows) return true;
  int64_t quota = config_.config.quota_backend_bytes;
  if (quota > 0 && static_cast<int64_t>(mvcc_->bytes() + req.ByteSizeLong()) > quota) {
    nospace_alarm_ = true;
  }
  return !nospace_alarm_;
}

std::string EtcdServer::ClusterIdPath() const {
  return absl::StrCat(config_.data_dir, "/cluster-id");
}

absl::Status EtcdServer::StartNode() {
  const ServerConfig& c = config_.config;
  std::vector<NodeId> voters;
  for (const Member& m : config_.members)
    voters.push_back(NodeId(m.id));
  node::NodeOptions no;
  no.id = NodeId(config_.member_id);
  if (config_.new_cluster) no.initial_voters = voters;
  no.cluster_id = config_.cluster_id;
  no.data_dir = config_.data_dir;
  no.tick_us = c.heartbeat_interval_ms * 1000;
  no.raft.heartbeat_ticks = 1;
  no.raft.election_ticks = static_cast<uint32_t>(c.election_timeout_ms / c.heartbeat_interval_ms);
  no.raft.random_seed = env_->random().Next();
  no.snapshot_every = c.snapshot_count;
  no.snapshot_keep_entries = 5000;
#ifdef BW_PLANTED_BUGS
  no.bugs.wal_lying_sync = c.plant_bug_ack_before_fsync;
#endif
  no.state_machine = [this] {
    auto m = std::make_unique<kv::MvccStore>();
    m->set_record_events(true);
    m->set_planted_skip_dedup(config_.config.plant_bug_skip_dedup);
    mvcc_ = m.get();
    watch_hub_ = std::make_unique<WatchHub>(
        *m, [this](etcdserverpb::ResponseHeader* h) { FillHeader(h, mvcc_->revision()); },
        config_.config.max_request_bytes);
    watch_hub_->set_max_watchers_per_stream(config_.config.max_watchers_per_stream);
#ifdef BW_PLANTED_BUGS
    watch_hub_->set_planted_drop_events(config_.config.plant_bug_watch_gaps);
#endif
    return m;
  };
  BW_ASSIGN_OR_RETURN(node_, node::Node::Start(*env_, no, observer_.get()));
  next_request_id_ = env_->random().Next() | 1;
  // Where this member's cluster is recorded for its next start.
  if (!env_->disk().Exists(ClusterIdPath())) {
    BW_RETURN_IF_ERROR(env_->disk().WriteFileAtomic(
        ClusterIdPath(), absl::StrCat(absl::Hex(config_.cluster_id, absl::kZeroPad16), "\n",
                                      absl::Hex(config_.member_id, absl::kZeroPad16), "\n")));
  }
  SyncMembers();
  lease_timer_ = loop_.Schedule(c.heartbeat_interval_ms * 1000, [this] { OnLeaseTimer(); });
  for (const Url& u : config_.metrics_listen) {
    transport::HttpServerOptions ho;
    ho.host = u.IpHost();
    ho.port = u.port;
    absl::StatusOr<std::unique_ptr<transport::HttpServer>> h = transport::HttpServer::Listen(
        loop_, ho, [this](const std::string&, const std::string& path, transport::HttpReply reply) {
          ServeHttp(path, std::move(reply));
        });
    if (!h.ok()) {
      return absl::Status(h.status().code(),
                          absl::StrCat("--listen-metrics-urls: ", h.status().message()));
    }
    http_.push_back(std::move(*h));
  }
  return absl::OkStatus();
}

int64_t EtcdServer::LogNowMicros() {
  if (mvcc_ == nullptr) return 0;
  return log_time_->Now(mvcc_->log_time_us());
}

void EtcdServer::ObserveLogTime() {
  if (mvcc_ != nullptr) log_time_->Observe(mvcc_->log_time_us());
}

void EtcdServer::SyncMembers() {
  if (mvcc_ == nullptr || node_ == nullptr) return;
  synced_members_version_ = mvcc_->members_version();
  for (const auto& [id, m] : mvcc_->members()) {
    if (id == config_.member_id || m.peer_urls().empty()) continue;
    absl::StatusOr<Url> u = ParseUrl("peer-urls", m.peer_urls(0));
    if (u.ok()) net_->SetPeer(NodeId(id), u->IpHost(), u->port, u->host);
  }
}

void EtcdServer::CheckRemoved() {
  const raft::ConfState& cs = node_->raft().conf();
  NodeId self(config_.member_id);
  auto has = [&](const std::vector<NodeId>& v) {
    return std::find(v.begin(), v.end(), self) != v.end();
  };
  bool member =
      has(cs.voters) || has(cs.learners) || has(cs.voters_outgoing) || has(cs.learners_next);
  if (member) {
    was_member_ = true;
  } else if (was_member_ && !removed_) {
    removed_ = true;
    absl::Status why = absl::FailedPreconditionError(
        "this member was removed from the cluster; it stops (remove its data directory before "
        "adding it again)");
    {
      std::lock_guard<std::mutex> lock(halted_mu_);
      halted_ = why;
    }
    if (on_halted_) on_halted_(why);
  }
}

absl::Status EtcdServer::halted() const {
  std::lock_guard<std::mutex> lock(halted_mu_);
  return halted_;
}

void EtcdServer::Propose(bulwark::internal::Request req,
                         std::function<void(absl::StatusOr<kv::MvccResult>)> done) {
  if (node_ == nullptr) {
    done(kv::etcd_errors::Stopped());
    return;
  }
  if (!CheckQuota(req)) {
    done(kv::etcd_errors::NoSpace());
    return;
  }
  uint64_t id = next_request_id_++;
  if (id == 0) id = next_request_id_++;
  req.set_id(id);
  if (req.time_us() == 0) req.set_time_us(LogNowMicros());
  std::string data;
  req.SerializeToString(&data);
  node_->Propose(id, std::move(data), [done = std::move(done)](absl::StatusOr<std::any> r) {
    if (!r.ok()) {
      done(r.status());
      return;
    }
    done(std::any_cast<kv::MvccResult>(std::move(*r)));
  });
}

void EtcdServer::ReadThen(grpc::ServerUnaryReactor* reactor, bool linearizable,
                          const std::string& token,
                          std::function<bulwark::internal::Request()> access,
                          std::function<void(const std::string&)> read) {
#ifdef BW_PLANTED_BUGS
  if (config_.config.plant_bug_stale_reads) linearizable = false;
#endif
  loop_.Post([this, reactor, linearizable, token, access = std::move(access),
              read = std::move(read)]() mutable {
    node_->ReadBarrier(linearizable, [this, reactor, token, access = std::move(access),
                                      read = std::move(read)](absl::Status st) {
      if (!st.ok()) return reactor->Finish(ToGrpc(ToEtcdError(st)));
      // After the barrier: the auth state is as new as the data read.
      ResolveUser(token, [this, reactor, access = std::move(access),
                          read = std::move(read)](absl::StatusOr<std::string> user) {
        // The description is built only with auth on: with it off a Range
        // pays for no copy of its request.
        if (user.ok() && mvcc_ != nullptr && mvcc_->auth().enabled()) {
          if (absl::Status st = mvcc_->Authorize(*user, access()); !st.ok()) user = st;
        }
        if (!user.ok()) return reactor->Finish(ToGrpc(user.status()));
        read(*user);
      });
    });
  });
}

std::string EtcdServer::TokenOf(grpc::CallbackServerContext* ctx) const {
  const auto& md = ctx->client_metadata();
  auto it = md.find("token");
  if (it != md.end()) return std::string(it->second.data(), it->second.size());
  // No token: a client certificate verified against --trusted-ca-file
  // (--client-cert-auth) names the user by its common name, as in etcd.
  // Only then is the connection's auth context built (it allocates, and
  // every request without a token comes here).
  if (!config_.config.client_cert_auth) return "";
  std::shared_ptr<const grpc::AuthContext> auth = ctx->auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    std::vector<grpc::string_ref> cn = auth->FindPropertyValues("x509_common_name");
    if (!cn.empty() && cn[0].size() > 0) {
      return absl::StrCat(kCertUserMark, absl::string_view(cn[0].data(), cn[0].size()));
    }
  }
  return "";
}

absl::StatusOr<std::string> EtcdServer::UserOf(const std::string& token) {
  if (mvcc_ == nullptr || !mvcc_->auth().enabled() || token.empty()) return std::string();
  if (absl::StartsWith(token, kCertUserMark)) return token.substr(std::strlen(kCertUserMark));
  if (jwt_ != nullptr) {
    absl::StatusOr<JwtTokens::Claims> c = jwt_->Verify(token, env::UnixMillisNow());
    if (!c.ok()) return c.status();
    // Any change to users, roles or grants retires the tokens made before
    // it (etcd's rule for JWT); clients authenticate again.
    if (c->revision < mvcc_->auth().revision()) return kv::auth_errors::AuthOldRevision();
    if (mvcc_->auth().FindUser(c->user) == nullptr) return kv::auth_errors::InvalidAuthToken();
    return std::move(c->user);
  }
  std::optional<std::string> user = tokens_.Use(token, NowMicros());
  if (!user.has_value()) return kv::auth_errors::InvalidAuthToken();
  return *std::move(user);
}

void EtcdServer::ResolveUser(const std::string& token,
                             std::function<void(absl::StatusOr<std::string>)> then) {
  absl::StatusOr<std::string> user = UserOf(token);
  if (user.ok() || jwt_ != nullptr || node_ == nullptr || !absl::IsUnauthenticated(user.status())) {
    return then(std::move(user));
  }
  node_->ReadBarrier(true, [this, token, then = std::move(then)](absl::Status st) {
    if (!st.ok()) return then(ToEtcdError(st));
    then(UserOf(token));
  });
}

absl::StatusOr<std::string> EtcdServer::Authorize(const std::string& token,
                                                  const bulwark::internal::Request& access) {
  absl::StatusOr<std::string> user = UserOf(token);
  if (!user.ok()) return user;
  if (mvcc_ != nullptr) BW_RETURN_IF_ERROR(mvcc_->Authorize(*user, access));
  return user;
}

std::string EtcdServer::UserScope(const std::string& user, const std::string& scope) {
  if (user.empty()) return scope;
  // A user name holds no NUL byte, so no user's scopes reach another's.
  return absl::StrCat("user:", user, std::string(1, '\0'), scope);
}

std::string EtcdServer::ClientScope(const std::string& user, const std::string& stored) {
  if (user.empty()) return stored;
  size_t nul = stored.find('\0');
  return nul == std::string::npos ? stored : stored.substr(nul + 1);
}

bool EtcdServer::Admitted(const std::string& token, const char* method,
                          grpc::ServerUnaryReactor* reactor) {
  absl::StatusOr<std::string> user = Authorize(token, AdminCall(method));
  if (user.ok()) return true;
  reactor->Finish(ToGrpc(user.status()));
  return false;
}

void EtcdServer::ProposeAs(const std::string& token, bulwark::internal::Request req,
                           std::function<void(absl::StatusOr<kv::MvccResult>)> done) {
  ResolveUser(token, [this, req = std::move(req),
                      done = std::move(done)](absl::StatusOr<std::string> user) mutable {
    ProposeAsUser(std::move(user), std::move(req), std::move(done), /*caught_up=*/false);
  });
}

grpc::ByteBuffer EtcdServer::EncodeWatchReply(const WatchReply& r) {
  grpc::Slice own(r.response.SerializeAsString());
  if (r.events == nullptr) return grpc::ByteBuffer(&own, 1);
  // One gRPC slice per shared encoding, referenced by every response that
  // carries it (consecutive replies of one applied entry share it).
  if (r.events != watch_events_) {
    watch_events_ = r.events;
    auto* keep = new std::shared_ptr<const std::string>(r.events);
    watch_events_slice_ = grpc::Slice(
        const_cast<char*>((*keep)->data()), (*keep)->size(),
        [](void* p) { delete static_cast<std::shared_ptr<const std::string>*>(p); }, keep);
  }
  const grpc::Slice parts[] = {own, watch_events_slice_};
  return grpc::ByteBuffer(parts, 2);
}

void EtcdServer::RenewLease(const std::string& token, int64_t id, RenewDone done) {
  ResolveUser(token, [this, id, done = std::move(done)](absl::StatusOr<std::string> user) mutable {
    if (!user.ok()) return done(user.status());
    // The first renewal waiting schedules the batch; later ones join it.
    const bool first = renewals_.empty();
    renewals_[*user].emplace_back(id, std::move(done));
    if (first) loop_.Schedule(0, [this] { ProposeRenewals(); });
  });
}

void EtcdServer::ProposeRenewals() {
  // An entry of at most this many renewals (about 40 KB).
  constexpr size_t kMaxRenewalsPerEntry = 4096;
  auto waiting = std::move(renewals_);
  renewals_.clear();
  for (auto& [user, all] : waiting) {
    for (size_t from = 0; from < all.size(); from += kMaxRenewalsPerEntry) {
      const size_t to = std::min(all.size(), from + kMaxRenewalsPerEntry);
      auto answers = std::make_shared<std::vector<std::pair<int64_t, RenewDone>>>(
          std::make_move_iterator(all.begin() + static_cast<ptrdiff_t>(from)),
          std::make_move_iterator(all.begin() + static_cast<ptrdiff_t>(to)));
      bulwark::internal::Request r;
      r.set_time_us(LogNowMicros());
      for (const auto& [id, done] : *answers)
        r.mutable_lease_renew_batch()->add_ids(id);
      ProposeAsUser(
          user, std::move(r),
          [answers](absl::StatusOr<kv::MvccResult> res) {
            absl::Status st = res.ok() ? res->status : res.status();
            if (st.ok() && res->lease_ttls.size() != answers->size()) {
              st = absl::InternalError("lease renewals: one answer per lease expected");
            }
            for (size_t i = 0; i < answers->size(); ++i) {
              RenewDone& done = (*answers)[i].second;
              if (st.ok()) {
                done(res->lease_ttls[i]);
              } else {
                done(st);
              }
            }
          },
          /*caught_up=*/false);
    }
  }
}

void EtcdServer::ProposeAsUser(absl::StatusOr<std::string> user, bulwark::internal::Request req,
                               std::function<void(absl::StatusOr<kv::MvccResult>)> done,
                               bool caught_up) {
  if (user.ok() && mvcc_ != nullptr) {
    absl::Status st = mvcc_->Authorize(*user, req);
    if (absl::IsPermissionDenied(st) && !caught_up && node_ != nullptr) {
      // This member may not have applied a grant the client already saw
      // committed (made through another member): look again once it has
      // applied what the leader had committed. The entry's own check, when
      // it is applied, is the one that counts; this one only spares the log
      // requests that would be refused there.
      node_->ReadBarrier(
          true, [this, user, req = std::move(req), done = std::move(done)](absl::Status b) mutable {
            if (!b.ok()) {
              kv::MvccResult refused;
              refused.status = ToEtcdError(b);
              return done(std::move(refused));
            }
            ProposeAsUser(std::move(user), std::move(req), std::move(done), /*caught_up=*/true);
          });
      return;
    }
    if (!st.ok()) user = st;
  }
  if (!user.ok()) {
    kv::MvccResult refused;
    refused.status = user.status();
    return done(std::move(refused));
  }
  if (!user->empty()) {
    req.set_auth_user(*user);
    if (req.has_idempotency()) {
      req.mutable_idempotency()->set_scope(UserScope(*user, req.idempotency().scope()));
    }
    if (req.has_idem_begin()) {
      req.mutable_idem_begin()->set_scope(UserScope(*user, req.idem_begin().scope()));
    }
    if (req.has_idem_checkpoint()) {
      req.mutable_idem_checkpoint()->set_scope(UserScope(*user, req.idem_checkpoint().scope()));
    }
    if (req.has_idem_complete()) {
      req.mutable_idem_complete()->set_scope(UserScope(*user, req.idem_complete().scope()));
    }
    if (req.has_idem_release()) {
      req.mutable_idem_release()->set_scope(UserScope(*user, req.idem_release().scope()));
    }
  }
  Propose(std::move(req), std::move(done));
}

void EtcdServer::FillHeader(etcdserverpb::ResponseHeader* h, int64_t revision) const {
  h->set_cluster_id(config_.cluster_id);
  h->set_member_id(config_.member_id);
  h->set_revision(revision);
  h->set_raft_term(node_ != nullptr ? node_->raft().term().value() : 0);
}

absl::Status EtcdServer::ToEtcdError(const absl::Status& s) const {
  return EtcdErrorFor(s);
}

}  // namespace bw::server
