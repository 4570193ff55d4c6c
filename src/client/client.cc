// bulwark::Client over gRPC's callback API. Everything with state runs on
// the client's event loop: the pipeline, the leader guess, watches and
// keepers. gRPC's completion callbacks (on gRPC's threads) only post to the
// loop. Shutdown cancels every live RPC and waits for their callbacks
// before the loop stops, so no callback outlives the client.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bulwark/client.h"
#include "client/channel_credentials.h"
#include "env/real/deadline.h"
#include "env/real/event_loop.h"
#include "env/real/real_env.h"

namespace bulwark {
namespace {

using bw::env::EventLoop;
using bw::env::RealClock;
using bw::env::RealRandom;
using bw::env::TimerId;
using bw::env::WallDeadlineAfter;

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// Whether a write that failed with `s` can have been applied. The answers
// that prove it was not: refused before proposing (no leader, a leadership
// transfer, overload, a full disk), refused by the client's own channel
// before sending (no connection), or any answer that is not transient.
bool MaybeApplied(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE: {
      const std::string& m = s.error_message();
      return !(absl::StrContains(m, "etcdserver: no leader") ||
               absl::StrContains(m, "leadership transfer in progress") ||
               absl::StrContains(m, "failed to connect") ||
               absl::StrContains(m, "Connection refused") ||
               absl::StrContains(m, "etcdserver: server stopped"));
    }
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::CANCELLED:
      return true;
    default:
      return false;
  }
}

// An error the member itself sent (etcd's errors all start "etcdserver:";
// bulwark's own "bulwark:"), as opposed to one from the connection.
bool ServerAnswered(const grpc::Status& s) {
  const std::string& m = s.error_message();
  return absl::StartsWith(m, "etcdserver:") || absl::StartsWith(m, "bulwark:");
}

std::optional<int64_t> Pushback(const grpc::ClientContext& ctx) {
  const auto& md = ctx.GetServerTrailingMetadata();
  auto it = md.find("grpc-retry-pushback-ms");
  if (it == md.end()) return std::nullopt;
  int64_t ms = 0;
  if (!absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms)) {
    return std::nullopt;
  }
  return ms < 0 ? -1 : ms * 1000;
}

// The server refused the call's token (or its lack): expired, unknown
// after a restart, or issued before a change to the auth state.
bool TokenRefused(const grpc::Status& s) {
  const std::string& m = s.error_message();
  return s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         m == "etcdserver: revision of auth store is old" || m == "etcdserver: user name is empty";
}

bool Replayed(const grpc::ClientContext& ctx) {
  const auto& md = ctx.GetServerInitialMetadata();
  auto it = md.find("idempotent-replayed");
  return it != md.end() && std::string_view(it->second.data(), it->second.size()) == "true";
}

struct Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  std::unique_ptr<bulwark::v1::Idempotency::Stub> idem;
  std::unique_ptr<etcdserverpb::Auth::Stub> auth;
  uint64_t member_id = 0;  // loop thread; 0 until a Status answer
};

// One lease renewal over etcd's LeaseKeepAlive stream: one request, one
// answer, then the stream is closed. TTL 0 means the lease is gone.
class KeepAliveOnce final : public grpc::ClientBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                                           etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveOnce(etcdserverpb::Lease::Stub* stub, grpc::ClientContext* ctx,
                const etcdserverpb::LeaseKeepAliveRequest* req,
                etcdserverpb::LeaseKeepAliveResponse* resp, std::function<void(grpc::Status)> done)
      : resp_(resp), done_(std::move(done)) {
    stub->async()->LeaseKeepAlive(ctx, this);
    StartWrite(req);
    StartRead(resp);
    StartCall();
  }
  void OnWriteDone(bool ok) override {
    if (ok) StartWritesDone();
  }
  void OnReadDone(bool ok) override { answered_ = ok; }
  void OnDone(const grpc::Status& s) override {
    grpc::Status st = s;
    if (answered_ && resp_->ttl() <= 0) {
      st = grpc::Status(grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found");
    } else if (answered_) {
      st = grpc::Status::OK;
    } else if (st.ok()) {
      st = grpc::Status(grpc::StatusCode::UNAVAILABLE, "lease keep-alive stream closed early");
    }
    auto done = std::move(done_);
    delete this;
    done(st);
  }

 private:
  etcdserverpb::LeaseKeepAliveResponse* resp_;
  std::function<void(grpc::Status)> done_;
  bool answered_ = false;
};

class ClientImpl;

// A watch that resumes after broken streams (see WatchOptions).
struct WatchState : std::enable_shared_from_this<WatchState> {
  ClientImpl* client = nullptr;
  WatchOptions options;
  std::function<void(const etcdserverpb::WatchResponse&)> on_response;
  // Loop thread only:
  int64_t next_revision = 0;  // 0: from now
  int endpoint = 0;
  int failures = 0;
  bool cancelled = false;
  bool finished = false;
  grpc::ClientContext* ctx = nullptr;  // the open stream's
  TimerId retry_timer = 0;
};

class WatchStream final
    : public grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchStream(ClientImpl* client, std::shared_ptr<WatchState> state)
      : client_(client), state_(std::move(state)) {}
  // Once tracked: the stream runs until OnDone, which deletes it.
  void Start(Endpoint& e);
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& s) override;
  grpc::ClientContext& ctx() { return ctx_; }

 private:
  ClientImpl* client_;
  std::shared_ptr<WatchState> state_;
  grpc::ClientContext ctx_;
  etcdserverpb::WatchRequest req_;
  etcdserverpb::WatchResponse resp_;
};

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(ClientOptions o) : o_(std::move(o)) {}
  ~ClientImpl() override;

  absl::Status Start();

  // --- KV ---
  void RangeAsync(const etcdserverpb::RangeRequest& r, CallOptions o,
                  Callback<etcdserverpb::RangeResponse> done) override {
    Call<etcdserverpb::RangeRequest, etcdserverpb::RangeResponse>(
        CallKind::kRead, r.serializable(), r, o,
        [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::RangeRequest* q,
           etcdserverpb::RangeResponse* p,
           std::function<void(grpc::Status)> f) { e.kv->async()->Range(c, q, p, std::move(f)); },
        std::move(done));
  }
  void PutAsync(const etcdserverpb::PutRequest& r, CallOptions o,
                Callback<etcdserverpb::PutResponse> done) override {
    Call<etcdserverpb::PutRequest, etcdserverpb::PutResponse>(
        CallKind::kWrite, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::PutRequest* q,
           etcdserverpb::PutResponse* p,
           std::function<void(grpc::Status)> f) { e.kv->async()->Put(c, q, p, std::move(f)); },
        std::move(done));
  }
  void DeleteAsync(const etcdserverpb::DeleteRangeRequest& r, CallOptions o,
                   Callback<etcdserverpb::DeleteRangeResponse> done) override {
    Call<etcdserverpb::DeleteRangeRequest, etcdserverpb::DeleteRangeResponse>(
        CallKind::kWrite, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::DeleteRangeRequest* q,
           etcdserverpb::DeleteRangeResponse* p, std::function<void(grpc::Status)> f) {
          e.kv->async()->DeleteRange(c, q, p, std::move(f));
        },
        std::move(done));
  }
  void TxnAsync(const etcdserverpb::TxnRequest& r, CallOptions o,
                Callback<etcdserverpb::TxnResponse> done) override {
    // A txn that only reads is a read (and retried as one).
    bool writes = false;
    for (const auto* ops : {&r.success(), &r.failure()}) {
      for (const etcdserverpb::RequestOp& op : *ops)
        writes |= !op.has_request_range();
    }
    Call<etcdserverpb::TxnRequest, etcdserverpb::TxnResponse>(
        writes ? CallKind::kWrite : CallKind::kRead, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::TxnRequest* q,
           etcdserverpb::TxnResponse* p,
           std::function<void(grpc::Status)> f) { e.kv->async()->Txn(c, q, p, std::move(f)); },
        std::move(done));
  }

  // --- Watch ---
  std::unique_ptr<Watcher> Watch(
      WatchOptions w, std::function<void(const etcdserverpb::WatchResponse&)> on_response) override;

  // --- Lease ---
  void LeaseGrantAsync(int64_t ttl_s, CallOptions o,
                       Callback<etcdserverpb::LeaseGrantResponse> done) override {
    etcdserverpb::LeaseGrantRequest r;
    r.set_ttl(ttl_s);
    Call<etcdserverpb::LeaseGrantRequest, etcdserverpb::LeaseGrantResponse>(
        CallKind::kWrite, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::LeaseGrantRequest* q,
           etcdserverpb::LeaseGrantResponse* p, std::function<void(grpc::Status)> f) {
          e.lease->async()->LeaseGrant(c, q, p, std::move(f));
        },
        std::move(done));
  }
  void LeaseRevokeAsync(int64_t lease, CallOptions o,
                        Callback<etcdserverpb::LeaseRevokeResponse> done) override {
    etcdserverpb::LeaseRevokeRequest r;
    r.set_id(lease);
    // Revoking twice is harmless (the second answers "not found").
    Call<etcdserverpb::LeaseRevokeRequest, etcdserverpb::LeaseRevokeResponse>(
        CallKind::kRead, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::LeaseRevokeRequest* q,
           etcdserverpb::LeaseRevokeResponse* p, std::function<void(grpc::Status)> f) {
          e.lease->async()->LeaseRevoke(c, q, p, std::move(f));
        },
        std::move(done));
  }
  void LeaseKeepAliveOnceAsync(int64_t lease, CallOptions o,
                               Callback<etcdserverpb::LeaseKeepAliveResponse> done) override {
    etcdserverpb::LeaseKeepAliveRequest r;
    r.set_id(lease);
    // A renewal may be repeated: it only moves the expiry.
    Call<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>(
        CallKind::kRead, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::LeaseKeepAliveRequest* q,
           etcdserverpb::LeaseKeepAliveResponse* p, std::function<void(grpc::Status)> f) {
          new KeepAliveOnce(e.lease.get(), c, q, p, std::move(f));
        },
        std::move(done));
  }
  std::unique_ptr<LeaseKeeper> KeepAlive(int64_t lease) override;

  // --- Idempotency records ---
  void BeginAsync(const bulwark::v1::BeginRequest& r, CallOptions o,
                  Callback<bulwark::v1::BeginResponse> done) override {
    Call<bulwark::v1::BeginRequest, bulwark::v1::BeginResponse>(
        CallKind::kWrite, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const bulwark::v1::BeginRequest* q,
           bulwark::v1::BeginResponse* p,
           std::function<void(grpc::Status)> f) { e.idem->async()->Begin(c, q, p, std::move(f)); },
        std::move(done));
  }
  void CheckpointAsync(const bulwark::v1::CheckpointRequest& r, CallOptions o,
                       Callback<bulwark::v1::CheckpointResponse> done) override {
    Call<bulwark::v1::CheckpointRequest, bulwark::v1::CheckpointResponse>(
        CallKind::kWrite, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const bulwark::v1::CheckpointRequest* q,
           bulwark::v1::CheckpointResponse* p, std::function<void(grpc::Status)> f) {
          e.idem->async()->Checkpoint(c, q, p, std::move(f));
        },
        std::move(done));
  }
  void CompleteAsync(const bulwark::v1::CompleteRequest& r, CallOptions o,
                     Callback<bulwark::v1::CompleteResponse> done) override {
    Call<bulwark::v1::CompleteRequest, bulwark::v1::CompleteResponse>(
        CallKind::kWrite, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const bulwark::v1::CompleteRequest* q,
           bulwark::v1::CompleteResponse* p, std::function<void(grpc::Status)> f) {
          e.idem->async()->Complete(c, q, p, std::move(f));
        },
        std::move(done));
  }
  void ReleaseAsync(const bulwark::v1::ReleaseRequest& r, CallOptions o,
                    Callback<bulwark::v1::ReleaseResponse> done) override {
    Call<bulwark::v1::ReleaseRequest, bulwark::v1::ReleaseResponse>(
        CallKind::kWrite, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const bulwark::v1::ReleaseRequest* q,
           bulwark::v1::ReleaseResponse* p, std::function<void(grpc::Status)> f) {
          e.idem->async()->Release(c, q, p, std::move(f));
        },
        std::move(done));
  }
  void GetRecordAsync(const bulwark::v1::GetRequest& r, CallOptions o,
                      Callback<bulwark::v1::GetResponse> done) override {
    Call<bulwark::v1::GetRequest, bulwark::v1::GetResponse>(
        CallKind::kRead, false, r, o,
        [](Endpoint& e, grpc::ClientContext* c, const bulwark::v1::GetRequest* q,
           bulwark::v1::GetResponse* p,
           std::function<void(grpc::Status)> f) { e.idem->async()->Get(c, q, p, std::move(f)); },
        std::move(done));
  }

  ClientMetrics metrics() override;
  const std::vector<std::string>& endpoints() const override { return o_.endpoints; }
  bool OnClientThread() const override { return loop_.InLoopThread(); }

  // --- for watches and keepers ---
  EventLoop& loop() { return loop_; }
  RealClock& clock() { return clock_; }
  RealRandom& random() { return random_; }
  const PipelineOptions& policies() const { return o_.policies; }
  int endpoint_count() const { return static_cast<int>(endpoints_.size()); }
  Endpoint& endpoint(int i) { return *endpoints_[i]; }
  int leader() const { return leader_; }
  // Registers a live RPC; false when the client is closing (do not start it).
  bool Track(grpc::ClientContext* ctx);
  bool Closing() {
    std::lock_guard<std::mutex> lock(rpc_mu_);
    return closing_;
  }
  void Untrack(grpc::ClientContext* ctx);
  void OpenWatch(const std::shared_ptr<WatchState>& w);
  void OnWatchResponse(const std::shared_ptr<WatchState>& w, const etcdserverpb::WatchResponse& r);
  void OnWatchDone(const std::shared_ptr<WatchState>& w, grpc::ClientContext* ctx,
                   const grpc::Status& s);
  // Runs `fn` on the loop and waits for it (at once if already there).
  void RunOnLoop(const std::function<void()>& fn);

 private:
  template <class Req, class Resp>
  using Method = void (*)(Endpoint&, grpc::ClientContext*, const Req*, Resp*,
                          std::function<void(grpc::Status)>);

  template <class Req, class Resp>
  void Call(CallKind kind, bool serializable, const Req& req, const CallOptions& o,
            Method<Req, Resp> m, Callback<Resp> done);

  void RefreshLeader();
  void MaybeRefreshLeader();
  // Asks `endpoint` for a new token (one request at a time), after the
  // cluster refused ours; `then` runs on the loop once that request has
  // finished, with or without a token.
  void Reauthenticate(int endpoint, std::function<void()> then = nullptr);

  ClientOptions o_;
  EventLoop loop_;
  RealClock clock_;
  RealRandom random_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  // Loop thread only:
  std::unique_ptr<Pipeline> pipeline_;
  int leader_ = -1;
  uint64_t leader_changes_ = 0;
  uint64_t replayed_ = 0;
  uint64_t requests_dropped_ = 0;
  uint64_t watch_resumes_ = 0;
  uint64_t replies_dropped_ = 0;
  bool refreshing_ = false;
  std::string token_;  // ClientOptions::user's current token
  bool authenticating_ = false;
  // Waiting for the token being requested (attempts it refused).
  std::vector<std::function<void()>> after_authenticating_;
  int64_t last_refresh_us_ = 0;
  TimerId refresh_timer_ = 0;
  // First answer to a Status probe (Connect waits for it).
  std::promise<absl::Status> first_answer_;
  bool answered_ = false;
  std::string last_probe_error_;

  std::mutex rpc_mu_;
  std::condition_variable rpc_cv_;
  std::set<grpc::ClientContext*> live_;
  bool closing_ = false;
};

// --- unary calls through the pipeline -------------------------------------------

template <class Req, class Resp>
void ClientImpl::Call(CallKind kind, bool serializable, const Req& req, const CallOptions& o,
                      Method<Req, Resp> m, Callback<Resp> done) {
  struct Op {
    Req req;
    Resp resp;
    std::string key;
    bool replayed = false;
    Callback<Resp> done;
  };
  auto op = std::make_shared<Op>();
  op->req = req;
  op->done = std::move(done);
  // The key exists before the first attempt and is the same on every retry.
  if (kind == CallKind::kWrite && !o.no_idempotency_key) {
    op->key = o.idempotency_key.empty() ? NewIdempotencyKey() : o.idempotency_key;
  }
  int64_t timeout_us = o.timeout.count();
  bool hedge = serializable && o.hedge;
  loop_.Post([this, op, kind, serializable, hedge, timeout_us, m] {
    if (pipeline_ == nullptr) return;  // closing
    CallSpec spec;
    spec.kind = kind;
    spec.idempotent = kind == CallKind::kRead || !op->key.empty();
    spec.deadline_us = timeout_us > 0 ? clock_.NowMicros() + timeout_us : 0;
    spec.hedge = hedge;
    spec.preferred_endpoint = serializable ? -1 : leader_;
    pipeline_->Execute(
        spec,
        [this, op, m, kind](const Attempt& a, Pipeline::AttemptDone adone) {
          struct AttemptState {
            grpc::ClientContext ctx;
            Resp resp;
          };
          auto st = std::make_shared<AttemptState>();
          int64_t left_us = std::max<int64_t>(0, a.deadline_us - clock_.NowMicros());
          st->ctx.set_deadline(WallDeadlineAfter(std::chrono::microseconds(left_us)));
          if (!token_.empty()) st->ctx.AddMetadata("token", token_);
          std::string sent_token = token_;
          if (!op->key.empty()) {
            st->ctx.AddMetadata("idempotency-key", op->key);
            if (!o_.idempotency_scope.empty()) {
              st->ctx.AddMetadata("idempotency-scope", o_.idempotency_scope);
            }
          }
          if (o_.drop_request_chance > 0 && random_.Chance(o_.drop_request_chance)) {
            ++requests_dropped_;
            adone(AttemptResult{
                absl::UnavailableError("bulwark client: request lost (injected fault)"),
                false,
                {}});
            return;
          }
          if (!Track(&st->ctx)) {
            adone(AttemptResult{absl::CancelledError("bulwark client: closing"), false, {}});
            return;
          }
          bool write = kind == CallKind::kWrite;
          m(*endpoints_[a.endpoint], &st->ctx, &op->req, &st->resp,
            [this, st, op, adone = std::move(adone), write, ep = a.endpoint,
             sent_token = std::move(sent_token)](grpc::Status s) mutable {
              loop_.Post([this, st, op, adone = std::move(adone), write, s, ep,
                          sent_token = std::move(sent_token)]() mutable {
                if (s.error_code() == grpc::StatusCode::CANCELLED && !Closing()) {
                  // Not our cancel (a call the pipeline gave up on is no
                  // longer awaited): the member stopped with the call in
                  // flight (a graceful shutdown cancels its calls). Like a
                  // broken connection: worth a retry, and a write may
                  // have been applied.
                  s = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   "bulwark client: the member cancelled the call (stopping?)");
                }
                if (s.ok() && o_.drop_reply_chance > 0 && random_.Chance(o_.drop_reply_chance)) {
                  ++replies_dropped_;
                  adone(AttemptResult{
                      absl::UnavailableError("bulwark client: reply lost (injected fault)"),
                      write,
                      {}});
                  return;
                }
                if (s.ok()) {
                  op->resp = std::move(st->resp);
                  op->replayed = Replayed(st->ctx);
                  adone(AttemptResult{});
                  return;
                }
                if (TokenRefused(s) && !o_.user.empty()) {
                  // Refused before anything was done: the pipeline retries
                  // (the breaker is not charged) once a new token is in
                  // hand. Answering at once would spend the call's attempts
                  // while the token is being requested: a member that
                  // restarts forgets every simple token, and the request
                  // for a new one goes through the log, so it can take an
                  // election's time.
                  AttemptResult refused{absl::UnavailableError(absl::StrCat(
                                            "bulwark client: token refused (", s.error_message(),
                                            "); authenticating again")),
                                        false, std::nullopt, true};
                  auto report = [adone = std::move(adone), refused]() mutable {
                    adone(std::move(refused));
                  };
                  if (sent_token != token_) {
                    report();  // a newer token came meanwhile: retry with it
                  } else {
                    Reauthenticate(ep, std::move(report));
                  }
                  return;
                }
                AttemptResult r{FromGrpc(s), write && MaybeApplied(s), Pushback(st->ctx),
                                ServerAnswered(s)};
                if (IsTransient(r.status)) MaybeRefreshLeader();
                adone(std::move(r));
              });
              Untrack(&st->ctx);
            });
        },
        [this, op](CallResult r) {
          Result<Resp> res;
          res.outcome = r.outcome;
          res.status = std::move(r.status);
          res.value = std::move(op->resp);
          res.attempts = r.attempts;
          res.idempotency_key = op->key;
          res.replayed = op->replayed && r.outcome == Outcome::kOk;
          if (res.replayed) ++replayed_;
          Callback<Resp> done = std::move(op->done);
          done(std::move(res));
        });
  });
}

// --- lifecycle -------------------------------------------------------------------

absl::Status ClientImpl::Start() {
  if (o_.endpoints.empty()) {
    return absl::InvalidArgumentError("bulwark client: at least one endpoint is needed");
  }
  BW_RETURN_IF_ERROR(o_.policies.Validate());
  const bw::client::TlsFiles tls_files{o_.tls_ca_file, o_.tls_cert_file, o_.tls_key_file};
  for (const std::string& ep : o_.endpoints) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
        bw::client::ChannelCredentialsFor(tls_files,
                                          tls_files.any() || absl::StartsWith(ep, "https://"));
    if (!creds.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("bulwark client: ", creds.status().message()));
    }
    std::string address = ep;
    for (const char* scheme : {"http://", "https://"}) {
      if (absl::StartsWith(address, scheme)) address = address.substr(std::strlen(scheme));
    }
    if (address.empty() || address.find(':') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bulwark client: endpoint '", ep, "' is not host:port"));
    }
    auto e = std::make_unique<Endpoint>();
    e->address = address;
    grpc::ChannelArguments args;
    // Reconnect quickly after a member comes back.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    // The pipeline retries; gRPC's own retries would be a second layer.
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    e->channel = grpc::CreateCustomChannel(address, *creds, args);
    e->kv = etcdserverpb::KV::NewStub(e->channel);
    e->lease = etcdserverpb::Lease::NewStub(e->channel);
    e->watch = etcdserverpb::Watch::NewStub(e->channel);
    e->maintenance = etcdserverpb::Maintenance::NewStub(e->channel);
    e->idem = bulwark::v1::Idempotency::NewStub(e->channel);
    e->auth = etcdserverpb::Auth::NewStub(e->channel);
    endpoints_.push_back(std::move(e));
  }
  pipeline_ = std::make_unique<Pipeline>(o_.policies, static_cast<int>(endpoints_.size()), clock_,
                                         loop_, random_, o_.on_event);
  std::future<absl::Status> first = first_answer_.get_future();
  loop_.Start("bw-client");
  loop_.Post([this] { RefreshLeader(); });
  if (first.wait_for(o_.connect_timeout) != std::future_status::ready) {
    std::string why;
    RunOnLoop([&] { why = last_probe_error_; });
    return absl::UnavailableError(absl::StrCat(
        "bulwark client: no endpoint of ", absl::StrJoin(o_.endpoints, ","), " answered within ",
        o_.connect_timeout.count(), " ms", why.empty() ? "" : absl::StrCat(" (", why, ")")));
  }
  BW_RETURN_IF_ERROR(first.get());
  if (o_.user.empty()) return absl::OkStatus();
  // The first token, from any member that answers; a wrong password is
  // the same answer everywhere, so it ends the search.
  absl::Status last;
  for (auto& e : endpoints_) {
    etcdserverpb::AuthenticateRequest req;
    req.set_name(o_.user);
    req.set_password(o_.password);
    etcdserverpb::AuthenticateResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(WallDeadlineAfter(o_.connect_timeout));
    grpc::Status s = e->auth->Authenticate(&ctx, req, &resp);
    if (s.ok()) {
      RunOnLoop([&] { token_ = resp.token(); });
      return absl::OkStatus();
    }
    last = FromGrpc(s);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
        s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      break;
    }
  }
  return absl::Status(last.code(), absl::StrCat("bulwark client: authenticating as ", o_.user, ": ",
                                                last.message()));
}

void ClientImpl::Reauthenticate(int endpoint, std::function<void()> then) {
  if (then) after_authenticating_.push_back(std::move(then));
  if (authenticating_ || o_.user.empty()) return;
  authenticating_ = true;
  auto finished = [this] {
    authenticating_ = false;
    std::vector<std::function<void()>> waiting;
    waiting.swap(after_authenticating_);
    for (auto& f : waiting)
      f();
  };
  struct Call {
    grpc::ClientContext ctx;
    etcdserverpb::AuthenticateRequest req;
    etcdserverpb::AuthenticateResponse resp;
  };
  auto call = std::make_shared<Call>();
  call->req.set_name(o_.user);
  call->req.set_password(o_.password);
  call->ctx.set_deadline(WallDeadlineAfter(o_.connect_timeout));
  if (!Track(&call->ctx)) {  // closing
    finished();
    return;
  }
  endpoints_[endpoint]->auth->async()->Authenticate(&call->ctx, &call->req, &call->resp,
                                                    [this, call, finished](grpc::Status s) {
                                                      loop_.Post([this, call, s, finished] {
                                                        if (s.ok()) token_ = call->resp.token();
                                                        finished();
                                                      });
                                                      Untrack(&call->ctx);
                                                    });
}

ClientImpl::~ClientImpl() {
  {
    std::unique_lock<std::mutex> lock(rpc_mu_);
    closing_ = true;
    for (grpc::ClientContext* c : live_)
      c->TryCancel();
    rpc_cv_.wait(lock, [this] { return live_.empty(); });
  }
  if (loop_.InLoopThread()) {
    std::fprintf(stderr, "bulwark client: destroyed from its own callback; leaking it\n");
    return;
  }
  RunOnLoop([this] {
    if (refresh_timer_) loop_.Cancel(refresh_timer_);
    pipeline_.reset();
  });
  loop_.Stop();
}

void ClientImpl::RunOnLoop(const std::function<void()>& fn) {
  if (loop_.InLoopThread()) {
    fn();
    return;
  }
  std::promise<void> done;
  loop_.Post([&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

bool ClientImpl::Track(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> lock(rpc_mu_);
  if (closing_) return false;
  live_.insert(ctx);
  return true;
}

void ClientImpl::Untrack(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> lock(rpc_mu_);
  live_.erase(ctx);
  if (live_.empty()) rpc_cv_.notify_all();
}

ClientMetrics ClientImpl::metrics() {
  ClientMetrics m;
  RunOnLoop([&] {
    if (pipeline_) m.pipeline = pipeline_->metrics();
    m.replayed = replayed_;
    m.requests_dropped = requests_dropped_;
    m.watch_resumes = watch_resumes_;
    m.replies_dropped = replies_dropped_;
    m.leader_changes = leader_changes_;
    m.leader = leader_;
  });
  return m;
}

// --- leader discovery ---------------------------------------------------------------
// Every member answers Maintenance.Status with its own id, the leader it
// follows and its term; the leader named at the highest term wins. Writes
// and linearizable reads go there first (any member would forward them,
// at the cost of a hop); serializable reads are spread over all members.

void ClientImpl::MaybeRefreshLeader() {
  if (refreshing_ || clock_.NowMicros() - last_refresh_us_ < 200'000) return;
  RefreshLeader();
}

void ClientImpl::RefreshLeader() {
  if (refreshing_ || pipeline_ == nullptr) return;
  refreshing_ = true;
  last_refresh_us_ = clock_.NowMicros();
  struct Probe {
    grpc::ClientContext ctx;
    etcdserverpb::StatusRequest req;
    etcdserverpb::StatusResponse resp;
  };
  struct Round {
    int pending = 0;
    uint64_t best_term = 0;
    uint64_t leader = 0;
  };
  auto round = std::make_shared<Round>();
  round->pending = static_cast<int>(endpoints_.size());
  for (int i = 0; i < static_cast<int>(endpoints_.size()); ++i) {
    auto p = std::make_shared<Probe>();
    p->ctx.set_deadline(WallDeadlineAfter(std::chrono::seconds(1)));
    if (!Track(&p->ctx)) {
      --round->pending;
      continue;
    }
    endpoints_[i]->maintenance->async()->Status(
        &p->ctx, &p->req, &p->resp, [this, p, i, round](grpc::Status s) {
          loop_.Post([this, p, i, round, s] {
            if (s.ok()) {
              endpoints_[i]->member_id = p->resp.header().member_id();
              if (p->resp.leader() != 0 && p->resp.raftterm() >= round->best_term) {
                round->best_term = p->resp.raftterm();
                round->leader = p->resp.leader();
              }
              if (!answered_) {
                answered_ = true;
                first_answer_.set_value(absl::OkStatus());
              }
            } else {
              last_probe_error_ = absl::StrCat(endpoints_[i]->address, ": ", s.error_message());
            }
            if (--round->pending > 0) return;
            refreshing_ = false;
            int found = -1;
            for (int j = 0; j < static_cast<int>(endpoints_.size()); ++j) {
              if (round->leader != 0 && endpoints_[j]->member_id == round->leader) found = j;
            }
            if (found != leader_) {
              if (found >= 0) ++leader_changes_;
              leader_ = found;
            }
          });
          Untrack(&p->ctx);
        });
  }
  if (round->pending == 0) refreshing_ = false;
  // And every few seconds anyway.
  if (refresh_timer_) loop_.Cancel(refresh_timer_);
  refresh_timer_ = loop_.Schedule(3'000'000, [this] {
    refresh_timer_ = 0;
    RefreshLeader();
  });
}

// --- watches ------------------------------------------------------------------------

class WatcherImpl final : public Watcher {
 public:
  WatcherImpl(ClientImpl* c, std::shared_ptr<WatchState> s) : client_(c), state_(std::move(s)) {}
  ~WatcherImpl() override { Cancel(); }
  void Cancel() override {
    if (done_) return;
    done_ = true;
    std::shared_ptr<WatchState> s = state_;
    client_->RunOnLoop([s, c = client_] {
      s->cancelled = true;
      if (s->retry_timer) c->loop().Cancel(s->retry_timer);
      if (s->ctx) s->ctx->TryCancel();
    });
  }

 private:
  ClientImpl* client_;
  std::shared_ptr<WatchState> state_;
  bool done_ = false;
};

void WatchStream::Start(Endpoint& e) {
  etcdserverpb::WatchCreateRequest* c = req_.mutable_create_request();
  c->set_key(state_->options.key);
  c->set_range_end(state_->options.range_end);
  c->set_start_revision(state_->next_revision);
  c->set_prev_kv(state_->options.prev_kv);
  e.watch->async()->Watch(&ctx_, this);
  StartWrite(&req_);
  StartRead(&resp_);
  StartCall();
}

void WatchStream::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  client_->loop().Post([c = client_, s = state_, r = resp_] { c->OnWatchResponse(s, r); });
  StartRead(&resp_);
}

void WatchStream::OnDone(const grpc::Status& st) {
  client_->loop().Post([c = client_, s = state_, ctx = &ctx_, st] { c->OnWatchDone(s, ctx, st); });
  client_->Untrack(&ctx_);
  delete this;
}

std::unique_ptr<Watcher> ClientImpl::Watch(
    WatchOptions w, std::function<void(const etcdserverpb::WatchResponse&)> on_response) {
  auto s = std::make_shared<WatchState>();
  s->client = this;
  s->next_revision = w.start_revision;
  s->options = std::move(w);
  s->on_response = std::move(on_response);
  loop_.Post([this, s] {
    s->endpoint = std::max(0, leader_);
    OpenWatch(s);
  });
  return std::make_unique<WatcherImpl>(this, s);
}

void ClientImpl::OpenWatch(const std::shared_ptr<WatchState>& s) {
  s->retry_timer = 0;
  if (s->cancelled || s->finished) return;
  auto* stream = new WatchStream(this, s);
  if (!Track(&stream->ctx())) {
    delete stream;  // closing
    return;
  }
  s->ctx = &stream->ctx();
  if (!token_.empty()) stream->ctx().AddMetadata("token", token_);
  stream->Start(*endpoints_[s->endpoint]);
}

void ClientImpl::OnWatchResponse(const std::shared_ptr<WatchState>& s,
                                 const etcdserverpb::WatchResponse& r) {
  if (s->cancelled || s->finished) return;
  s->failures = 0;
  if (r.created() && s->next_revision == 0) s->next_revision = r.header().revision() + 1;
  if (r.events_size() > 0) {
    int64_t last = r.events(r.events_size() - 1).kv().mod_revision();
    if (last < s->next_revision) return;  // already delivered before a resume
    s->next_revision = last + 1;
  }
  if (r.canceled() && !o_.user.empty() &&
      (absl::StrContains(r.cancel_reason(), "invalid auth token") ||
       absl::StrContains(r.cancel_reason(), "revision of auth store is old"))) {
    // Our token, not the watch, was refused: a new token, then the stream
    // is opened again like any broken one.
    Reauthenticate(s->endpoint);
    if (s->ctx) s->ctx->TryCancel();
    return;
  }
  if (r.canceled()) {
    s->finished = true;
    if (s->ctx) s->ctx->TryCancel();
  }
  if (r.events_size() > 0 || r.canceled()) s->on_response(r);
}

void ClientImpl::OnWatchDone(const std::shared_ptr<WatchState>& s, grpc::ClientContext* ctx,
                             const grpc::Status& st) {
  if (s->ctx == ctx) s->ctx = nullptr;
  if (s->cancelled || s->finished || pipeline_ == nullptr) return;
  // Resume elsewhere after a pause, from the revision after the last event.
  ++watch_resumes_;
  s->endpoint = (s->endpoint + 1) % static_cast<int>(endpoints_.size());
  std::optional<int64_t> delay = bw::client::RetryDelay(
      o_.policies.backoff, std::min(s->failures++, 10), std::nullopt, random_);
  s->retry_timer = loop_.Schedule(delay.value_or(100'000), [this, s] { OpenWatch(s); });
}

// --- lease keepers ------------------------------------------------------------------

class KeeperImpl final : public LeaseKeeper {
 public:
  KeeperImpl(ClientImpl* c, int64_t lease) : client_(c), lease_(lease) {}
  ~KeeperImpl() override { Stop(); }
  int64_t ttl() const override { return ttl_.load(); }
  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    // A renewal in flight finishes on its own; it only holds `alive_`.
    client_->RunOnLoop([this] {
      running_ = false;
      *alive_ = false;
      if (timer_) client_->loop().Cancel(timer_);
      timer_ = 0;
    });
  }
  void Renew() {
    timer_ = 0;
    if (!running_) return;
    CallOptions o;
    std::shared_ptr<bool> alive = alive_;
    client_->LeaseKeepAliveOnceAsync(
        lease_, o, [this, alive](Result<etcdserverpb::LeaseKeepAliveResponse> r) {
          if (!*alive || !running_) return;
          if (r.ok()) {
            ttl_ = r.value.ttl();
          } else if (r.status.code() == absl::StatusCode::kNotFound) {
            ttl_ = 0;
            running_ = false;
            return;
          }
          int64_t every_us = std::max<int64_t>(500'000, ttl_.load() * 1'000'000 / 3);
          if (!r.ok()) every_us = 500'000;
          timer_ = client_->loop().Schedule(every_us, [this, alive] {
            if (*alive) Renew();
          });
        });
  }

 private:
  ClientImpl* client_;
  int64_t lease_;
  std::atomic<int64_t> ttl_{-1};
  bool stopped_ = false;
  // Loop thread only:
  bool running_ = true;
  TimerId timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

std::unique_ptr<LeaseKeeper> ClientImpl::KeepAlive(int64_t lease) {
  auto k = std::make_unique<KeeperImpl>(this, lease);
  KeeperImpl* raw = k.get();
  loop_.Post([raw] { raw->Renew(); });
  return k;
}

}  // namespace

// --- the synchronous forms: the asynchronous call, waited for ---

template <class T, class Start>
Result<T> Client::Wait(Start start) {
  if (OnClientThread()) {
    Result<T> r;
    r.status = absl::FailedPreconditionError(
        "bulwark client: a synchronous call from inside a client callback would deadlock; use "
        "the Async form");
    return r;
  }
  std::promise<Result<T>> p;
  std::future<Result<T>> f = p.get_future();
  start([&p](Result<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<etcdserverpb::RangeResponse> Client::Get(const std::string& key, bool serializable,
                                                CallOptions o) {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_serializable(serializable);
  return Range(r, o);
}

Result<etcdserverpb::RangeResponse> Client::Range(const etcdserverpb::RangeRequest& r,
                                                  CallOptions o) {
  return Wait<etcdserverpb::RangeResponse>([&](auto done) { RangeAsync(r, o, done); });
}

Result<etcdserverpb::PutResponse> Client::Put(const std::string& key, const std::string& value,
                                              CallOptions o) {
  etcdserverpb::PutRequest r;
  r.set_key(key);
  r.set_value(value);
  return Put(r, o);
}

Result<etcdserverpb::PutResponse> Client::Put(const etcdserverpb::PutRequest& r, CallOptions o) {
  return Wait<etcdserverpb::PutResponse>([&](auto done) { PutAsync(r, o, done); });
}

Result<etcdserverpb::DeleteRangeResponse> Client::Delete(const etcdserverpb::DeleteRangeRequest& r,
                                                         CallOptions o) {
  return Wait<etcdserverpb::DeleteRangeResponse>([&](auto done) { DeleteAsync(r, o, done); });
}

Result<etcdserverpb::TxnResponse> Client::Txn(const etcdserverpb::TxnRequest& r, CallOptions o) {
  return Wait<etcdserverpb::TxnResponse>([&](auto done) { TxnAsync(r, o, done); });
}

Result<etcdserverpb::LeaseGrantResponse> Client::LeaseGrant(int64_t ttl_s, CallOptions o) {
  return Wait<etcdserverpb::LeaseGrantResponse>(
      [&](auto done) { LeaseGrantAsync(ttl_s, o, done); });
}

Result<etcdserverpb::LeaseRevokeResponse> Client::LeaseRevoke(int64_t lease, CallOptions o) {
  return Wait<etcdserverpb::LeaseRevokeResponse>(
      [&](auto done) { LeaseRevokeAsync(lease, o, done); });
}

Result<etcdserverpb::LeaseKeepAliveResponse> Client::LeaseKeepAliveOnce(int64_t lease,
                                                                        CallOptions o) {
  return Wait<etcdserverpb::LeaseKeepAliveResponse>(
      [&](auto done) { LeaseKeepAliveOnceAsync(lease, o, done); });
}

Result<bulwark::v1::BeginResponse> Client::Begin(const bulwark::v1::BeginRequest& r,
                                                 CallOptions o) {
  return Wait<bulwark::v1::BeginResponse>([&](auto done) { BeginAsync(r, o, done); });
}

Result<bulwark::v1::CheckpointResponse> Client::Checkpoint(const bulwark::v1::CheckpointRequest& r,
                                                           CallOptions o) {
  return Wait<bulwark::v1::CheckpointResponse>([&](auto done) { CheckpointAsync(r, o, done); });
}

Result<bulwark::v1::CompleteResponse> Client::Complete(const bulwark::v1::CompleteRequest& r,
                                                       CallOptions o) {
  return Wait<bulwark::v1::CompleteResponse>([&](auto done) { CompleteAsync(r, o, done); });
}

Result<bulwark::v1::ReleaseResponse> Client::Release(const bulwark::v1::ReleaseRequest& r,
                                                     CallOptions o) {
  return Wait<bulwark::v1::ReleaseResponse>([&](auto done) { ReleaseAsync(r, o, done); });
}

Result<bulwark::v1::GetResponse> Client::GetRecord(const bulwark::v1::GetRequest& r,
                                                   CallOptions o) {
  return Wait<bulwark::v1::GetResponse>([&](auto done) { GetRecordAsync(r, o, done); });
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  auto c = std::make_unique<ClientImpl>(std::move(options));
  BW_RETURN_IF_ERROR(c->Start());
  return std::unique_ptr<Client>(std::move(c));
}

std::string NewIdempotencyKey() {
  // One generator per thread, seeded from the OS: keys from different
  // threads and processes never follow one sequence.
  thread_local RealRandom random;
  uint64_t ms = static_cast<uint64_t>(bw::env::UnixMillisNow());
  uint64_t hi = (ms << 16) | 0x7000 | (random.Next() & 0x0FFF);                   // version 7
  uint64_t lo = (random.Next() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

}  // namespace bulwark
