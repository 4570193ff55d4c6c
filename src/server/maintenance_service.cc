// etcd's Maintenance service: Status, Hash, HashKV, Alarm, MoveLeader, Snapshot and Defragment.
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
      allowed = s.member().Authorize(token, AdminCall("Snapshot")).status();
      if (allowed.ok()) {
        blob_ = SnapshotFile(s.member().mvcc().Serialize());
        s.member().FillHeader(&header_, s.member().mvcc().revision());
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
      const raft::Raft& r = s_.member().node().raft();
      s_.member().FillHeader(resp->mutable_header(), s_.member().mvcc().revision());
      resp->set_version(kEtcdApiVersion);
      int64_t size = static_cast<int64_t>(s_.member().mvcc().bytes());
      resp->set_dbsize(size);
      resp->set_dbsizeinuse(size);
      resp->set_leader(r.leader().value());
      resp->set_raftindex(r.log().committed().value());
      resp->set_raftterm(r.term().value());
      resp->set_raftappliedindex(s_.member().node().applied_index().value());
      // As etcd writes them (protobuf's text form, zero fields left out):
      // "memberID:<id> alarm:<type> ".
      for (const etcdserverpb::AlarmMember& a : RaisedAlarms()) {
        std::string text;
        if (a.memberid() != 0) absl::StrAppend(&text, "memberID:", a.memberid(), " ");
        if (a.alarm() != etcdserverpb::NONE) {
          absl::StrAppend(&text, "alarm:", etcdserverpb::AlarmType_Name(a.alarm()), " ");
        }
        resp->add_errors(text);
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
      s_.member().FillHeader(resp->mutable_header(), s_.member().mvcc().revision());
      resp->set_hash(s_.member().mvcc().HashKV(0));
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::AlarmRequest* req,
                                  etcdserverpb::AlarmResponse* resp) override {
    // The cluster's alarms are replicated state (ACTIVATE and DEACTIVATE go
    // through the log); GET reads them here. etcd answers without a header.
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, req, resp, reactor, token = s_.TokenOf(ctx)] {
      if (req->action() == etcdserverpb::AlarmRequest::GET) {
        for (const etcdserverpb::AlarmMember& a : RaisedAlarms()) {
          if (req->alarm() == etcdserverpb::NONE || req->alarm() == a.alarm()) {
            *resp->add_alarms() = a;
          }
        }
        reactor->Finish(grpc::Status::OK);
        return;
      }
      if (!Admitted(token, "Alarm", reactor)) return;
      if (req->action() == etcdserverpb::AlarmRequest::DEACTIVATE &&
          req->alarm() == etcdserverpb::NOSPACE && req->memberid() == s_.member_id()) {
        s_.member().DisarmNoSpace();  // past the quota: raised here before it was replicated
      }
      bulwark::internal::Request r;
      *r.mutable_alarm() = *req;
      s_.ProposeThen(/*ctx=*/nullptr, reactor, token, std::move(r),
                     [resp](kv::MvccResult& res) { resp->ParseFromString(res.service_response); });
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MoveLeaderRequest* req,
                                       etcdserverpb::MoveLeaderResponse*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, req, reactor, token = s_.TokenOf(ctx)] {
      if (!Admitted(token, "MoveLeader", reactor)) return;
      const raft::Raft& r = s_.member().node().raft();
      if (r.role() != raft::Role::kLeader) {
        reactor->Finish(ToGrpc(kv::etcd_errors::NotLeader()));
        return;
      }
      // etcd answers a move, even to the leader itself, without a header.
      if (req->targetid() == s_.member_id()) {
        reactor->Finish(grpc::Status::OK);
        return;
      }
      absl::Status st = s_.member().node().TransferLeadership(NodeId(req->targetid()));
      if (!st.ok()) {
        // An unknown member, a learner, a transfer already under way.
        reactor->Finish(ToGrpc(kv::etcd_errors::BadLeaderTransferee()));
        return;
      }
      WaitForLeader(req->targetid(), reactor, /*polls_left=*/50);
    });
    return reactor;
  }

 private:
  // The replicated alarms, and this member's NOSPACE when its disk is full
  // (which it may not be able to replicate). Loop thread.
  std::vector<etcdserverpb::AlarmMember> RaisedAlarms() const {
    std::vector<etcdserverpb::AlarmMember> out = s_.member().mvcc().alarms();
    if (s_.member().nospace_alarm() &&
        std::none_of(out.begin(), out.end(), [this](const etcdserverpb::AlarmMember& a) {
          return a.alarm() == etcdserverpb::NOSPACE && a.memberid() == s_.member_id();
        })) {
      etcdserverpb::AlarmMember& a = out.emplace_back();
      a.set_memberid(s_.member_id());
      a.set_alarm(etcdserverpb::NOSPACE);
    }
    return out;
  }

  // Polls every heartbeat until `target` leads (etcd waits for the transfer too).
  void WaitForLeader(uint64_t target, grpc::ServerUnaryReactor* reactor, int polls_left) {
    if (s_.member().node().raft().leader() == NodeId(target)) {
      reactor->Finish(grpc::Status::OK);
      return;
    }
    if (polls_left == 0) {
      reactor->Finish(ToGrpc(kv::etcd_errors::LeaderTransferTimeout()));
      return;
    }
    s_.loop().Schedule(
        s_.config().config.heartbeat_interval_ms * 1000,
        [this, target, reactor, polls_left] { WaitForLeader(target, reactor, polls_left - 1); });
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
                                       etcdserverpb::DefragmentResponse*) override {
    // etcd rewrites its backend file to give back the space compaction
    // freed. bulwark's compaction frees that memory at once, so there is
    // nothing left to give back: the answer is success, without a header
    // (as etcd 3.4 answers).
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_.loop().Post([this, reactor, token = s_.TokenOf(ctx)] {
      if (!Admitted(token, "Defragment", reactor)) return;
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
      if (rev > s_.member().mvcc().revision()) {
        reactor->Finish(ToGrpc(kv::etcd_errors::FutureRev()));
        return;
      }
      // etcd refuses a hash at the compaction point itself too.
      if (rev > 0 && rev <= s_.member().mvcc().compact_revision()) {
        reactor->Finish(ToGrpc(kv::etcd_errors::Compacted()));
        return;
      }
      s_.member().FillHeader(resp->mutable_header(), s_.member().mvcc().revision());
      resp->set_hash(s_.member().mvcc().HashKV(rev));
      // etcd's compact revision is -1 until the first compaction.
      int64_t compacted = s_.member().mvcc().compact_revision();
      resp->set_compact_revision(compacted == 0 ? -1 : compacted);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  // Root only. etcd 3.4's maintenance calls answer a refusal with the auth
  // store's own error (code Unknown, "auth: ..."), which clients print.
  bool Admitted(const std::string& token, const char* method, grpc::ServerUnaryReactor* reactor) {
    absl::StatusOr<std::string> user = s_.member().Authorize(token, AdminCall(method));
    if (user.ok()) return true;
    reactor->Finish(ToGrpc(MaintenanceAuthError(user.status())));
    return false;
  }

  EtcdServer& s_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewMaintenanceService(EtcdServer& s) {
  return std::make_unique<MaintenanceService>(s);
}

}  // namespace bw::server
