// etcd's Cluster service: MemberList, MemberAdd (voter or learner), MemberPromote, MemberRemove and
// MemberUpdate.
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
#include "core/error_kind.h"
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
            return Fail(reactor, kv::etcd_errors::PeerUrlsExist());
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
        return Fail(reactor, kv::etcd_errors::PeerUrlsUsedUp(kMaxIncarnations));
      }
      bulwark::internal::Request r;
      bulwark::internal::MemberAttributes* a = r.mutable_member_add();
      a->set_id(id);
      for (const std::string& u : urls)
        a->add_peer_urls(u);
      a->set_learner(req->islearner());
      bool learner = req->islearner();
      s_.member().ProposeAs(
          token, std::move(r),
          [this, id, learner, urls, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
            absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
            if (!st.ok()) return Fail(reactor, st);
            raft::ConfChange cc;
            cc.changes.push_back(
                {learner ? raft::ConfChangeType::kAddLearner : raft::ConfChangeType::kAddVoter,
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
      const raft::Raft& r = s_.member().node().raft();
      const auto& learners = r.conf().learners;
      if (std::find(learners.begin(), learners.end(), NodeId(id)) == learners.end()) {
        return Fail(reactor, kv::etcd_errors::PromoteNotLearner());
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
        return Fail(reactor, kv::etcd_errors::LearnerNotReady());
      }
      raft::ConfChange cc;
      cc.changes.push_back({raft::ConfChangeType::kAddVoter, NodeId(id)});
      ProposeConf(cc, [this, id, resp, reactor](absl::Status st) {
        if (!st.ok()) return Fail(reactor, st);
        WaitFor(
            [this, id] {
              const auto& voters = s_.member().node().raft().conf().voters;
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
      s_.member().ProposeAs(
          token, std::move(r), [this, resp, reactor](absl::StatusOr<kv::MvccResult> res) {
            absl::Status st = res.ok() ? res->status : s_.ToEtcdError(res.status());
            if (!st.ok()) return Fail(reactor, st);
            FinishMembers(resp, reactor);
          });
    });
    return reactor;
  }

 private:
  static absl::Status BadUrls() { return kv::etcd_errors::BadMemberUrls(); }
  static absl::Status MemberNotFound() { return kv::etcd_errors::MemberNotFound(); }
  absl::Status ConfError(const absl::Status& st) {
    if (core::KindOf(st) == core::ErrorKind::kConfChangePending) {
      return kv::etcd_errors::MembershipChangePending();
    }
    return s_.ToEtcdError(st);
  }
  static void Fail(grpc::ServerUnaryReactor* reactor, const absl::Status& st) {
    reactor->Finish(ToGrpc(st));
  }
  bool InConf(uint64_t id) {
    const raft::ConfState& cs = s_.member().node().raft().conf();
    for (const auto* v : {&cs.voters, &cs.learners, &cs.voters_outgoing, &cs.learners_next}) {
      if (std::find(v->begin(), v->end(), NodeId(id)) != v->end()) return true;
    }
    return false;
  }
  // Members with what is known of them: the state machine's records, and
  // the initial cluster's (from flags) for those without one.
  std::map<uint64_t, bulwark::internal::MemberAttributes> Known() {
    std::map<uint64_t, bulwark::internal::MemberAttributes> out = s_.member().mvcc().members();
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
    const raft::ConfState& cs = s_.member().node().raft().conf();
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
    uint64_t leader = s_.member().node().raft().leader().value();
    auto it = s_.member().mvcc().members().find(leader);
    if (leader == 0 || it == s_.member().mvcc().members().end() ||
        it->second.client_urls().empty()) {
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
    s_.member().FillHeader(resp->mutable_header(), 0);
    FillMembers(resp->mutable_members());
    reactor->Finish(grpc::Status::OK);
  }
  // On a follower: hands the call to the leader and returns true.
  template <typename Req, typename Resp>
  bool ForwardIfFollower(
      const std::string& token, const Req& req, Resp* resp, grpc::ServerUnaryReactor* reactor,
      void (etcdserverpb::Cluster::Stub::async::*method)(grpc::ClientContext*, const Req*, Resp*,
                                                         std::function<void(grpc::Status)>)) {
    if (s_.member().node().raft().role() == raft::Role::kLeader) return false;
    if (!ForwardToLeader(token, req, resp, reactor, method)) {
      Fail(reactor, kv::etcd_errors::NoLeader());
    }
    return true;
  }
  // Proposes a configuration change on the leader, retrying while another
  // change is still being applied (for about three seconds).
  void ProposeConf(raft::ConfChange cc, std::function<void(absl::Status)> done, int tries = 60) {
    absl::Status st = s_.member().node().ProposeConfChange(cc);
    if (st.ok() || tries == 0 || core::KindOf(st) != core::ErrorKind::kConfChangePending) {
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

}  // namespace

std::unique_ptr<grpc::Service> NewClusterService(EtcdServer& s) {
  return std::make_unique<ClusterService>(s);
}

}  // namespace bw::server
