// One bulwark member as a process runs it: the composition root that puts
// the member (member::Member: the node, the etcd MVCC state machine, watches,
// leases, users) on a real event loop, with the peer transport, the etcd v3
// gRPC API for clients (one adapter file per service) and /metrics.
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
#include <optional>
#include <string>

#include "core/status.h"
#include "env/real/event_loop.h"
#include "env/real/real_env.h"
#include "kv/mvcc.h"
#include "member/member.h"
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
  // The member (node, state machine, watches, leases, users): everything
  // the services do to the cluster goes through it.
  member::Member& member() { return *member_; }
  bool node_ready() const { return member_ != nullptr && member_->running(); }
  // A watch reply as the bytes of a WatchResponse. Loop thread.
  grpc::ByteBuffer EncodeWatchReply(const member::WatchReply& r);
  // etcd's shortest lease: 1.5 election timeouts, in whole seconds.
  int64_t MinLeaseTtl() const { return (config_.config.election_timeout_ms * 3 / 2 + 999) / 1000; }
  // Runs `read` on the loop thread once the state machine may be read
  // (member::Member::Read); answers etcd's error on `reactor` if the
  // barrier fails or permission is denied. `read` gets the caller's user
  // name ("" with authentication off). For handlers on gRPC threads;
  // `access` describes the read for Authorize and is called only with
  // authentication on.
  void ReadThen(grpc::ServerUnaryReactor* reactor, bool linearizable, const std::string& token,
                std::function<bulwark::internal::Request()> access,
                std::function<void(const std::string&)> read);
  // A write's path, for the unary calls: proposes `r` as the holder of
  // `token` (member::Member::ProposeAs) and answers on `reactor` — the
  // refusal in etcd's words, or OK once `fill` has written the response
  // from the result. Marks a replayed answer when `ctx` is given. Loop
  // thread.
  void ProposeThen(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                   const std::string& token, bulwark::internal::Request r,
                   std::function<void(kv::MvccResult&)> fill);

  // --- authentication (see docs/security.md) ------------------------------
  // The caller's token (gRPC metadata "token"; "" with none). Any thread.
  std::string TokenOf(grpc::CallbackServerContext* ctx) const;
  // Root-only calls: false, with the error answered on `reactor`, unless
  // the token's user has the root role (or authentication is off). Loop
  // thread.
  bool Admitted(const std::string& token, const char* method, grpc::ServerUnaryReactor* reactor);
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
  // etcd's error for a node's failure (no leader, timed out, ...).
  absl::Status ToEtcdError(const absl::Status& s) const;

 private:
  explicit EtcdServer(ResolvedConfig config);
  absl::Status Init();
  // Starts the member (on the loop thread), once the cluster id is known.
  absl::Status StartMember();
  std::string ClusterIdPath() const;
  // Points the transport at every member the state machine knows.
  void SyncMembers();
  // The user of a token the log does not issue (a JWT, a client
  // certificate's user); nullopt for a simple token.
  std::optional<absl::StatusOr<std::string>> OtherTokenUser(const std::string& token);
  // How long a member joining an existing cluster waits to be called.
  static constexpr int kJoinWaitSeconds = 60;

  ResolvedConfig config_;
  env::EventLoop loop_;
  // Password hashing and checking (tens of ms each) run here.
  env::EventLoop slow_loop_;
  std::atomic<int> slow_pending_{0};
  uint64_t token_suffix_ = 0;
  std::unique_ptr<JwtTokens> jwt_;
  std::unique_ptr<transport::TcpNetwork> net_;
  std::unique_ptr<env::RealEnv> env_;
  std::unique_ptr<member::Member> member_;
  // The shared events of the last watch reply encoded, as a gRPC slice.
  std::shared_ptr<const std::string> watch_events_;
  grpc::Slice watch_events_slice_;
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
