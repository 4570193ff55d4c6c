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
    reply({200, "text/plain; version=0.0.4; charset=utf-8", RenderMetrics(Stats(), grpc_metrics_)});
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
  if (quota > 0 && static_cast<int64_t>(mvcc_->bytes() + req.ByteSizeLong()) > quota &&
      !nospace_alarm_) {
    // Refused here at once; and raised for the cluster, as etcd does, so
    // every member refuses such writes until `etcdctl alarm disarm`.
    nospace_alarm_ = true;
    bulwark::internal::Request alarm;
    alarm.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
    alarm.mutable_alarm()->set_memberid(member_id());
    alarm.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
    Propose(std::move(alarm), [](const absl::StatusOr<kv::MvccResult>&) {});
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
    watch_hub_ = std::make_unique<member::WatchHub>(
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

MemberStats EtcdServer::Stats() const {
  const node::Node& n = *node_;
  const raft::Raft& r = n.raft();
  const kv::MvccStore& m = *mvcc_;
  MemberStats st;
  st.has_leader = r.leader() != kNoNode;
  st.is_leader = r.role() == raft::Role::kLeader;
  st.leader_changes = n.leader_changes();
  st.term = r.term().value();
  st.commit_index = r.log().committed().value();
  st.applied_index = n.applied_index().value();
  st.pending = n.pending();
  st.proposals = n.proposals();
  st.db_bytes = m.bytes();
  st.live_keys = m.live_keys();
  st.versions = m.versions();
  st.revision = m.revision();
  st.compact_revision = m.compact_revision();
  st.watchers = watch_hub_->watchers();
  st.leases = m.LeaseIds().size();
  st.idempotency_keys = m.idempotency_records();
  st.idempotency_evicted = m.idempotency_evicted();
  st.records = m.records();
  st.nospace_alarm = nospace_alarm();
  st.sync_seconds = n.sync_seconds();
  return st;
}

absl::Status EtcdServer::ToEtcdError(const absl::Status& s) const {
  return EtcdErrorFor(s);
}

}  // namespace bw::server
