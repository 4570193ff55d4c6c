// One bulwark member as a process runs it: the node (Raft, WAL, the etcd
// MVCC state machine) on a real event loop, the peer transport, and the etcd
// v3 gRPC API for clients.
//
// Threads: gRPC's callback threads take requests and post them to the event
// loop, which owns the node and the state machine; answers are finished from
// the loop thread (gRPC allows Finish from any thread). Nothing blocks a
// gRPC thread.
#pragma once

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"
#include "env/real/event_loop.h"
#include "env/real/real_env.h"
#include "kv/mvcc.h"
#include "member/log_time.h"
#include "member/watch_hub.h"
#include "node/node.h"
#include "server/auth_tokens.h"
#include "server/config.h"
#include "server/jwt.h"
#include "server/metrics.h"
#include "transport/http_server.h"
#include "transport/tcp_network.h"

namespace grpc {
class CallbackServerContext;
class Server;
class ServerUnaryReactor;
}  // namespace grpc

namespace bw::server {

class EtcdServer {
 public:
  // Opens the data directory, starts the node, the peer listener and the
  // client listeners. Errors name what failed (a port in use, a data dir of
  // another member).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<EtcdServer>> Start(ResolvedConfig config);
  // Stops accepting, answers what waits, stops the node and the loop.
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  const ResolvedConfig& config() const { return config_; }
  uint64_t member_id() const { return config_.member_id; }
  uint64_t cluster_id() const { return config_.cluster_id; }
  env::EventLoop& loop() { return loop_; }
  // Non-OK once the node halted on a storage failure (the process exits).
  absl::Status halted() const;
  // Called (on the loop thread) when the node halts.
  void SetOnHalted(std::function<void(absl::Status)> fn) { on_halted_ = std::move(fn); }

  // --- for the services; call on the loop thread -------------------------
  node::Node& node() { return *node_; }
  bool node_ready() const { return node_ != nullptr; }
  kv::MvccStore& mvcc() { return *mvcc_; }
  member::WatchHub& watch_hub() { return *watch_hub_; }
  // A watch reply as the bytes of a WatchResponse. Loop thread.
  grpc::ByteBuffer EncodeWatchReply(const member::WatchReply& r);
  int64_t NowMicros() { return env_->clock().NowMicros(); }
  // Log time now, as this member reckons it (member::LogTime::Now).
  int64_t LogNowMicros();
  // Called when an entry or a snapshot was applied.
  void ObserveLogTime();
  // A new lease id: positive, random (etcd's are too).
  int64_t NewLeaseId() {
    // Positive, and 16 hex digits as etcd's usually print.
    return static_cast<int64_t>((env_->random().Next() >> 2) | (uint64_t{1} << 62));
  }
  // etcd's shortest lease: 1.5 election timeouts, in whole seconds.
  int64_t MinLeaseTtl() const { return (config_.config.election_timeout_ms * 3 / 2 + 999) / 1000; }
  // Proposes a request; `done` runs on the loop thread with the result.
  void Propose(bulwark::internal::Request req,
               std::function<void(absl::StatusOr<kv::MvccResult>)> done);
  // The NOSPACE alarm: a full disk, or data past --quota-backend-bytes.
  bool nospace_alarm() const { return nospace_alarm_ || (node_ != nullptr && node_->no_space()); }
  void DisarmNoSpace() { nospace_alarm_ = false; }
  // Runs `read` on the loop thread once the state machine may be read
  // (after ReadIndex when linearizable) and the caller may make `access`
  // (MvccStore::Authorize, against the state read); answers etcd's error on
  // `reactor` if the barrier fails or permission is denied. `read` gets the
  // caller's user name ("" with authentication off). For handlers on gRPC
  // threads.
  // `access` describes the read for Authorize; it is called only with
  // authentication on.
  void ReadThen(grpc::ServerUnaryReactor* reactor, bool linearizable, const std::string& token,
                std::function<bulwark::internal::Request()> access,
                std::function<void(const std::string&)> read);

  // --- authentication (see docs/security.md) ------------------------------
  // The caller's token (gRPC metadata "token"; "" with none). Any thread.
  std::string TokenOf(grpc::CallbackServerContext* ctx) const;
  // The user a token names: "" with authentication off or no token; etcd's
  // invalid auth token for a token unknown here or expired. Loop thread.
  absl::StatusOr<std::string> UserOf(const std::string& token);
  // UserOf, but a simple token this member does not know yet gets a second
  // look once the member has applied everything the leader had committed
  // (the token's Authenticate entry may not have reached it: it restarted,
  // or lags), as etcd waits for its applied index. Loop thread; `then` runs
  // on it.
  void ResolveUser(const std::string& token, std::function<void(absl::StatusOr<std::string>)> then);
  // UserOf, then MvccStore::Authorize: the user when `access` is allowed.
  // Loop thread.
  absl::StatusOr<std::string> Authorize(const std::string& token,
                                        const bulwark::internal::Request& access);
  // Root-only calls: false, with the error answered on `reactor`, unless
  // the token's user has the root role (or authentication is off). Loop
  // thread.
  bool Admitted(const std::string& token, const char* method, grpc::ServerUnaryReactor* reactor);
  // Propose for a client: the request is stamped with the token's user
  // (whose permissions the state machine checks when it applies it, and
  // whose idempotency scopes it uses), and refused at once if the current
  // state already denies it. Loop thread.
  void ProposeAs(const std::string& token, bulwark::internal::Request req,
                 std::function<void(absl::StatusOr<kv::MvccResult>)> done);
  void ProposeAsUser(absl::StatusOr<std::string> user, bulwark::internal::Request req,
                     std::function<void(absl::StatusOr<kv::MvccResult>)> done, bool caught_up);
  // A keep-alive renewal for a client: renewals that reach the loop
  // together (from every stream, per user) become one log entry
  // (LeaseRenewBatch), proposed once what the loop already holds is done.
  // `done` gets the lease's TTL, or -1 if there is no such lease. Loop
  // thread.
  using RenewDone = std::function<void(absl::StatusOr<int64_t>)>;
  void RenewLease(const std::string& token, int64_t id, RenewDone done);
  // A user's own idempotency scope: users never see each other's keys or
  // records. The empty user (authentication off) keeps the scope as given.
  static std::string UserScope(const std::string& user, const std::string& scope);
  static std::string ClientScope(const std::string& user, const std::string& stored);
  SimpleTokens& tokens() { return tokens_; }
  // Runs slow work (password hashing) off the member's loop; `fn` must post
  // its answer back with loop().Post. False (nothing run) when
  // kMaxSlowPending are waiting already: a flood of Authenticate calls is
  // refused rather than queued without bound.
  static constexpr int kMaxSlowPending = 64;
  bool RunSlow(std::function<void()> fn) {
    if (slow_pending_.fetch_add(1) >= kMaxSlowPending) {
      slow_pending_.fetch_sub(1);
      return false;
    }
    slow_loop_.Post([this, fn = std::move(fn)] {
      fn();
      slow_pending_.fetch_sub(1);
    });
    return true;
  }
  uint64_t NextTokenSuffix() { return ++token_suffix_; }
  // With --auth-token jwt: the keys; null with simple tokens.
  const JwtTokens* jwt() const { return jwt_.get(); }
  // What /metrics shows, as values. Loop thread, with the node running.
  MemberStats Stats() const;
  // Fills a response header: cluster, member, revision, term.
  void FillHeader(etcdserverpb::ResponseHeader* h, int64_t revision) const;
  // etcd's error for a node's failure (no leader, timed out, ...).
  absl::Status ToEtcdError(const absl::Status& s) const;

 private:
  class Observer;
  explicit EtcdServer(ResolvedConfig config);
  absl::Status Init();
  // Opens the node (on the loop thread), once the cluster id is known.
  absl::Status StartNode();
  std::string ClusterIdPath() const;
  // Points the transport at every member the state machine knows.
  void SyncMembers();
  // Stops this member once the configuration no longer has it.
  void CheckRemoved();
  // How long a member joining an existing cluster waits to be called.
  static constexpr int kJoinWaitSeconds = 60;
  // Every heartbeat: the leader proposes log time while leases exist (see
  // MvccStore); a member publishes its attributes once there is a leader.
  void OnLeaseTimer();
  // False (and the alarm raised) when a write would pass the quota.
  bool CheckQuota(const bulwark::internal::Request& req);
  void MaybePublish();

  ResolvedConfig config_;
  env::EventLoop loop_;
  // Password hashing and checking (tens of ms each) run here.
  env::EventLoop slow_loop_;
  std::atomic<int> slow_pending_{0};
  SimpleTokens tokens_{300'000'000};
  uint64_t token_suffix_ = 0;
  std::unique_ptr<JwtTokens> jwt_;
  std::unique_ptr<transport::TcpNetwork> net_;
  std::unique_ptr<env::RealEnv> env_;
  std::unique_ptr<Observer> observer_;
  std::unique_ptr<node::Node> node_;
  kv::MvccStore* mvcc_ = nullptr;  // owned by node_
  std::unique_ptr<member::WatchHub> watch_hub_;
  env::TimerId lease_timer_ = 0;
  // The shared events of the last watch reply encoded, as a gRPC slice.
  std::shared_ptr<const std::string> watch_events_;
  grpc::Slice watch_events_slice_;
  // Renewals waiting for the next LeaseRenewBatch, by user.
  std::map<std::string, std::vector<std::pair<int64_t, RenewDone>>> renewals_;
  void ProposeRenewals();
  // Set with env_: this member's log time, and when the leader ticks.
  std::unique_ptr<member::LogTime> log_time_;
  // This member's attributes are in the state machine (etcd's publish).
  bool published_ = false;
  uint64_t synced_members_version_ = 0;
  bool was_member_ = false;
  bool removed_ = false;
  bool nospace_alarm_ = false;
  bool publish_in_flight_ = false;
  uint64_t next_request_id_ = 1;
  std::function<void(absl::Status)> on_halted_;
  mutable std::mutex halted_mu_;
  absl::Status halted_;

  // /metrics, /health and /readyz (on the loop thread).
  void ServeHttp(const std::string& path, transport::HttpReply reply);

  struct Services;
  std::unique_ptr<Services> services_;
  GrpcMetrics grpc_metrics_;
  std::vector<std::unique_ptr<transport::HttpServer>> http_;
  std::unique_ptr<grpc::Server> grpc_;
};

}  // namespace bw::server
