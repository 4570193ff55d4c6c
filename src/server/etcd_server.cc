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
#include "member/etcd_error_map.h"
#include "server/bidi_stream.h"
#include "server/client_limits.h"
#include "server/password.h"
#include "server/service_support.h"
#include "server/services.h"
#include "server/tls.h"

namespace bw::server {

struct EtcdServer::Services {
  explicit Services(EtcdServer& s)
      : all{NewKvService(s),    NewMaintenanceService(s), NewClusterService(s), NewLeaseService(s),
            NewWatchService(s), NewIdempotencyService(s), NewAuthService(s)} {}
  std::unique_ptr<grpc::Service> all[7];
};

// --- the server ------------------------------------------------------------------

EtcdServer::EtcdServer(ResolvedConfig config) : config_(std::move(config)) {}

absl::StatusOr<std::unique_ptr<EtcdServer>> EtcdServer::Start(ResolvedConfig config) {
  std::unique_ptr<EtcdServer> s(new EtcdServer(std::move(config)));
  BW_RETURN_IF_ERROR(s->Init());
  return s;
}

absl::Status EtcdServer::Init() {
  loop_.Start("bw-member");
  slow_loop_.Start("bw-auth");
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
    // The member's fsyncs run there; the loop keeps serving meanwhile.
    env_->StartStorageThread(loop_);
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
    started = StartMember();
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
  for (std::unique_ptr<grpc::Service>& service : services_->all)
    b.RegisterService(service.get());
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
    http_.clear();
    // Watch streams still hold the member's hub: the member itself goes
    // once gRPC is done with them.
    if (member_ != nullptr) member_->StopNode();
    net_.reset();
    done.set_value();
  });
  done.get_future().wait();
  if (grpc_) grpc_->Wait();
  loop_.Stop();
}

void EtcdServer::ServeHttp(const std::string& path, transport::HttpReply reply) {
  if (!node_ready()) {
    reply({503, "text/plain; charset=utf-8", "stopping\n"});
    return;
  }
  node::Node& node = member_->node();
  if (path == "/metrics") {
    reply({200, "text/plain; version=0.0.4; charset=utf-8",
           RenderMetrics(member_->Stats(), grpc_metrics_)});
  } else if (path == "/readyz") {
    // Ready: the member knows a leader and its storage works.
    bool ready = node.halted().ok() && node.raft().leader() != kNoNode;
    reply({ready ? 200 : 503, "text/plain; charset=utf-8", ready ? "ok\n" : "not ready\n"});
  } else if (path == "/health") {
    // etcd's check: a leader, no alarm, and a linearizable read that works.
    auto unhealthy = [&reply](const std::string& why) {
      reply({503, "application/json",
             absl::StrCat("{\"health\":\"false\",\"reason\":\"", why, "\"}")});
    };
    if (!node.halted().ok()) return unhealthy("storage failed");
    if (node.raft().leader() == kNoNode) return unhealthy("no leader");
    if (member_->nospace_alarm()) return unhealthy("alarm NOSPACE");
    node.ReadBarrier(true, [reply](absl::Status st) {
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

std::string EtcdServer::ClusterIdPath() const {
  return absl::StrCat(config_.data_dir, "/cluster-id");
}

absl::Status EtcdServer::StartMember() {
  const ServerConfig& c = config_.config;
  std::vector<NodeId> voters;
  for (const Member& m : config_.members)
    voters.push_back(NodeId(m.id));
  member::MemberOptions mo;
  node::NodeOptions& no = mo.node;
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
  no.raft.log_cache_bytes = c.raft_log_cache_bytes;
#ifdef BW_PLANTED_BUGS
  no.bugs.wal_lying_sync = c.plant_bug_ack_before_fsync;
#endif
  mo.name = c.name;
  mo.peer_urls = c.initial_advertise_peer_urls;
  mo.client_urls = c.advertise_client_urls;
  mo.quota_backend_bytes = c.quota_backend_bytes;
  mo.token_ttl_us = c.auth_token_ttl_s * 1'000'000;
  mo.idempotency_retention_us = c.idempotency_retention_ms * 1'000;
  // Checked by ValidateConfig already.
  mo.auto_compaction = *ParseAutoCompaction(c.auto_compaction_mode, c.auto_compaction_retention);
  mo.max_request_bytes = c.max_request_bytes;
  mo.max_watchers_per_stream = c.max_watchers_per_stream;
  mo.other_tokens = [this](const std::string& token) { return OtherTokenUser(token); };
  const bool skip_dedup = c.plant_bug_skip_dedup;
  mo.configure_store = [skip_dedup](kv::MvccStore& store) {
    store.set_planted_skip_dedup(skip_dedup);
  };
#ifdef BW_PLANTED_BUGS
  const bool watch_gaps = c.plant_bug_watch_gaps;
  mo.configure_hub = [watch_gaps](member::WatchHub& hub) {
    hub.set_planted_drop_events(watch_gaps);
  };
#endif
  mo.on_members_changed = [this] { SyncMembers(); };
  mo.on_stopped = [this](const absl::Status& why) {
    {
      std::lock_guard<std::mutex> lock(halted_mu_);
      halted_ = why;
    }
    if (on_halted_) on_halted_(why);
  };
  BW_ASSIGN_OR_RETURN(member_, member::Member::Start(*env_, std::move(mo)));
  // Where this member's cluster is recorded for its next start.
  if (!env_->disk().Exists(ClusterIdPath())) {
    BW_RETURN_IF_ERROR(env_->disk().WriteFileAtomic(
        ClusterIdPath(), absl::StrCat(absl::Hex(config_.cluster_id, absl::kZeroPad16), "\n",
                                      absl::Hex(config_.member_id, absl::kZeroPad16), "\n")));
  }
  SyncMembers();
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

void EtcdServer::SyncMembers() {
  if (!node_ready()) return;
  for (const auto& [id, m] : member_->mvcc().members()) {
    if (id == config_.member_id || m.peer_urls().empty()) continue;
    absl::StatusOr<Url> u = ParseUrl("peer-urls", m.peer_urls(0));
    if (u.ok()) net_->SetPeer(NodeId(id), u->IpHost(), u->port, u->host);
  }
}

absl::Status EtcdServer::halted() const {
  std::lock_guard<std::mutex> lock(halted_mu_);
  return halted_;
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
    if (!node_ready()) return reactor->Finish(ToGrpc(kv::etcd_errors::Stopped()));
    member_->Read(linearizable, token, std::move(access),
                  [reactor, read = std::move(read)](absl::StatusOr<std::string> user) {
                    if (!user.ok()) return reactor->Finish(ToGrpc(user.status()));
                    read(*user);
                  });
  });
}

void EtcdServer::ProposeThen(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                             const std::string& token, bulwark::internal::Request r,
                             std::function<void(kv::MvccResult&)> fill) {
  member_->ProposeAs(token, std::move(r),
                     [ctx, reactor, fill = std::move(fill)](absl::StatusOr<kv::MvccResult> res) {
                       if (!res.ok())
                         return reactor->Finish(ToGrpc(member::EtcdErrorFor(res.status())));
                       if (ctx != nullptr) MarkReplayed(ctx, *res);
                       if (!res->status.ok()) return reactor->Finish(ToGrpc(res->status));
                       fill(*res);
                       reactor->Finish(grpc::Status::OK);
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

std::optional<absl::StatusOr<std::string>> EtcdServer::OtherTokenUser(const std::string& token) {
  if (absl::StartsWith(token, kCertUserMark)) return token.substr(std::strlen(kCertUserMark));
  if (jwt_ == nullptr) return std::nullopt;
  absl::StatusOr<JwtTokens::Claims> c = jwt_->Verify(token, env::UnixMillisNow());
  if (!c.ok()) return c.status();
  const kv::AuthStore& auth = member_->mvcc().auth();
  // Any change to users, roles or grants retires the tokens made before it
  // (etcd's rule for JWT); clients authenticate again.
  if (c->revision < auth.revision()) return kv::etcd_errors::AuthOldRevision();
  if (auth.FindUser(c->user) == nullptr) return kv::etcd_errors::InvalidAuthToken();
  return std::move(c->user);
}

bool EtcdServer::Admitted(const std::string& token, const char* method,
                          grpc::ServerUnaryReactor* reactor) {
  absl::StatusOr<std::string> user = member_->Authorize(token, AdminCall(method));
  if (user.ok()) return true;
  reactor->Finish(ToGrpc(user.status()));
  return false;
}

grpc::ByteBuffer EtcdServer::EncodeWatchReply(const member::WatchReply& r) {
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

absl::Status EtcdServer::ToEtcdError(const absl::Status& s) const {
  return member::EtcdErrorFor(s);
}

}  // namespace bw::server
