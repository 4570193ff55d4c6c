// `bulwark bench LOAD`: drives a cluster with a bounded load and reports
// throughput and latency percentiles. It speaks the etcd v3 API, so the same
// run can measure etcd and bulwark side by side (bench/compare-etcd.sh).
//
// A client is one request in flight at a time, as in etcd's benchmark tool:
// when an answer arrives the client sends its next request (or waits for its
// slot under --rate). Requests are spread over --conns gRPC connections and
// the endpoints round-robin. Every run stops by itself: after --total
// requests, or --duration seconds, whichever comes first.
#include "cli/bench_command.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bulwark/idempotency.grpc.pb.h"
#include "client/channel_credentials.h"
#include "core/status.h"
#include "env/real/deadline.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace bw::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kLoads =
    "put, keyed-put, txn-put, range, idem, redis-idem, watch, lease-keepalive";

struct BenchFlags {
  std::string load;
  std::string endpoints = "127.0.0.1:2379";
  int conns = 1;
  int clients = 1;
  int64_t total = 10'000;
  double duration_s = 60;
  double rate = 0;
  int key_size = 8;
  int val_size = 8;
  int64_t key_space = 1;
  bool sequential = false;
  std::string consistency = "l";
  std::string range_key = "foo";
  std::string redis = "127.0.0.1:6379";
  double timeout_s = 10;
  int64_t lock_ttl_ms = 10'000;
  bool json = false;
  bool no_progress = false;
  // watch: streams, and watchers on each (all on --key).
  int streams = 10;
  int watchers_per_stream = 10;
  // TLS, as etcdctl's flags: any given (or an https:// endpoint) means TLS.
  client::TlsFiles tls;
};

bool UsesTls(const BenchFlags& f, const std::string& ep) {
  return f.tls.any() || ep.rfind("https://", 0) == 0;
}

// A request's outcome: empty for success, else what went wrong (errors are
// counted by this text).
using Done = std::function<void(std::string error)>;

// One load: starts request `seq` for client `client` and calls `done` once.
class Load {
 public:
  virtual ~Load() = default;
  virtual void Start(int client, int64_t seq, Done done) = 0;
};

struct Summary {
  int64_t ok = 0;
  int64_t errors = 0;
  double seconds = 0;
  std::vector<int64_t> latencies_us;  // of successful requests, sorted
  std::map<std::string, int64_t> error_kinds;

  double Percentile(double p) const {
    if (latencies_us.empty()) return 0;
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(latencies_us.size() - 1) + 0.5);
    return static_cast<double>(latencies_us[std::min(i, latencies_us.size() - 1)]) / 1000.0;
  }
  double MeanMs() const {
    if (latencies_us.empty()) return 0;
    double sum = 0;
    for (int64_t v : latencies_us)
      sum += static_cast<double>(v);
    return sum / static_cast<double>(latencies_us.size()) / 1000.0;
  }
  double Throughput() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

// Runs the clients: each sends its next request when the last is answered,
// at its slot under a rate, until the total or the duration is reached.
class Driver {
 public:
  Driver(const BenchFlags& f, Load& load)
      : f_(f), load_(load), per_client_(static_cast<size_t>(f.clients)) {}

  Summary Run() {
    start_ = Clock::now();
    deadline_ = start_ + std::chrono::microseconds(static_cast<int64_t>(f_.duration_s * 1e6));
    active_ = f_.clients;
    std::thread pacer([this] { Pace(); });
    for (int c = 0; c < f_.clients; ++c)
      Next(c);
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (active_ > 0) {
        cv_.wait_for(lock, std::chrono::milliseconds(250));
        if (!f_.no_progress) Progress(false);
      }
    }
    end_ = Clock::now();
    {
      std::lock_guard<std::mutex> lock(pace_mu_);
      stop_pacer_ = true;
    }
    pace_cv_.notify_all();
    pacer.join();
    if (!f_.no_progress) Progress(true);
    Summary s;
    // Until the last answer (a client that found nothing left to send does
    // not stretch the run).
    Clock::time_point last = last_done_ > start_ ? last_done_ : end_;
    s.seconds = std::chrono::duration<double>(last - start_).count();
    for (auto& v : per_client_)
      s.latencies_us.insert(s.latencies_us.end(), v.begin(), v.end());
    std::sort(s.latencies_us.begin(), s.latencies_us.end());
    s.ok = static_cast<int64_t>(s.latencies_us.size());
    std::lock_guard<std::mutex> lock(mu_);
    s.error_kinds = error_kinds_;
    for (const auto& [kind, n] : error_kinds_)
      s.errors += n;
    return s;
  }

 private:
  void Next(int client) {
    int64_t seq = issued_.fetch_add(1);
    Clock::time_point now = Clock::now();
    if (seq >= f_.total || now >= deadline_) {
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) cv_.notify_all();
      return;
    }
    Clock::time_point slot = now;
    if (f_.rate > 0) {
      slot = start_ + std::chrono::microseconds(
                          static_cast<int64_t>(static_cast<double>(seq) * 1e6 / f_.rate));
    }
    // Answers that come back on the calling thread would recurse without
    // bound; those, and requests whose slot is later, go through the pacer.
    if (slot > now || depth_ > 16) {
      {
        std::lock_guard<std::mutex> lock(pace_mu_);
        paced_.emplace(slot, std::make_pair(client, seq));
      }
      pace_cv_.notify_one();
      return;
    }
    Fire(client, seq);
  }

  void Fire(int client, int64_t seq) {
    Clock::time_point sent = Clock::now();
    ++depth_;
    load_.Start(client, seq, [this, client, sent](std::string error) {
      Clock::time_point now = Clock::now();
      if (error.empty()) {
        per_client_[client].push_back(
            std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count());
        done_.fetch_add(1);
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        ++error_kinds_[error];
        failed_.fetch_add(1);
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (now > last_done_) last_done_ = now;
      }
      Next(client);
    });
    --depth_;
  }

  void Pace() {
    std::unique_lock<std::mutex> lock(pace_mu_);
    while (!stop_pacer_) {
      if (paced_.empty()) {
        pace_cv_.wait(lock);
        continue;
      }
      auto it = paced_.begin();
      if (it->first > Clock::now()) {
        pace_cv_.wait_until(lock, it->first);
        continue;
      }
      auto [client, seq] = it->second;
      paced_.erase(it);
      lock.unlock();
      Fire(client, seq);
      lock.lock();
    }
  }

  void Progress(bool final) {
    int64_t done = done_.load() + failed_.load();
    double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    double frac = std::min(1.0, std::max(static_cast<double>(done) / static_cast<double>(f_.total),
                                         elapsed / f_.duration_s));
    int width = 30;
    int filled = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r[%s%s] %3.0f%% %lld done, %lld errors, %.0f req/s   %s",
                 std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(width - filled), ' ').c_str(), frac * 100,
                 static_cast<long long>(done), static_cast<long long>(failed_.load()),
                 elapsed > 0 ? static_cast<double>(done_.load()) / elapsed : 0.0,
                 final ? "\n" : "");
    std::fflush(stderr);
  }

  const BenchFlags& f_;
  Load& load_;
  Clock::time_point start_, deadline_, end_;
  std::atomic<int64_t> issued_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<int64_t> failed_{0};
  std::vector<std::vector<int64_t>> per_client_;  // each written by its client only
  static thread_local int depth_;

  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  Clock::time_point last_done_;
  std::map<std::string, int64_t> error_kinds_;

  std::mutex pace_mu_;
  std::condition_variable pace_cv_;
  std::multimap<Clock::time_point, std::pair<int, int64_t>> paced_;
  bool stop_pacer_ = false;
};

thread_local int Driver::depth_ = 0;

const char* CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

std::string ErrorKind(const grpc::Status& s) {
  return absl::StrCat(CodeName(s.error_code()), ": ", s.error_message().substr(0, 80));
}

// "http://host:port" or "host:port" -> "host:port".
std::string HostPort(std::string ep) {
  for (const char* scheme : {"http://", "https://"}) {
    if (ep.rfind(scheme, 0) == 0) ep = ep.substr(std::string(scheme).size());
  }
  return ep;
}

// "http://host:port" or "host:port" -> a gRPC target.
std::string Target(std::string ep) {
  ep = HostPort(ep);
  bool ipv4 = !ep.empty() && ep[0] >= '0' && ep[0] <= '9';
  return ipv4 ? "ipv4:" + ep : ep;
}

using Channels = std::vector<std::pair<std::string, std::shared_ptr<grpc::Channel>>>;

// --conns separate connections, round-robin over the endpoints.
Channels MakeChannels(const BenchFlags& f) {
  Channels out;
  std::vector<std::string> eps = absl::StrSplit(f.endpoints, ',', absl::SkipEmpty());
  for (int i = 0; i < f.conns; ++i) {
    grpc::ChannelArguments args;
    // Separate connections, not one shared subchannel.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("bulwark.bench.conn", i);
    args.SetMaxReceiveMessageSize(-1);
    const std::string& ep = eps[static_cast<size_t>(i) % eps.size()];
    // Checked by Validate: the files can be read.
    std::shared_ptr<grpc::ChannelCredentials> creds =
        *client::ChannelCredentialsFor(f.tls, UsesTls(f, ep));
    // With TLS the certificate must name the endpoint's host: a plain
    // host:port target, whose authority is that host.
    out.push_back(
        {ep, grpc::CreateCustomChannel(UsesTls(f, ep) ? HostPort(ep) : Target(ep), creds, args)});
  }
  return out;
}

absl::Status WaitConnected(const Channels& channels) {
  for (const auto& [ep, ch] : channels) {
    if (!ch->WaitForConnected(env::WallDeadlineAfter(std::chrono::seconds(5)))) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", ep, " within 5 s"));
    }
  }
  return absl::OkStatus();
}

// The etcd API (and bulwark's Idempotency service) over --conns connections.
// One client's lease keep-alive stream: a request, then its answer, as
// etcd's clients renew a lease.
class KeepAliveStream final : public grpc::ClientBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                                             etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveStream(etcdserverpb::Lease::Stub* stub, int64_t lease) {
    req_.set_id(lease);
    stub->async()->LeaseKeepAlive(&ctx_, this);
    StartCall();
  }
  // One renewal; `done` runs when its answer arrives (or the stream fails).
  void KeepAlive(Done done) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (broken_) {
        done("lease keep-alive stream closed");
        return;
      }
      done_ = std::move(done);
    }
    StartWrite(&req_);
  }
  void Cancel() { ctx_.TryCancel(); }
  void WaitDone() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return finished_; });
  }

  void OnWriteDone(bool ok) override {
    if (ok) {
      StartRead(&resp_);
    } else {
      Fail();
    }
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Fail();
      return;
    }
    Done done = Take();
    if (done) done(resp_.ttl() > 0 ? std::string() : "lease not found (TTL 0)");
  }
  void OnDone(const grpc::Status&) override {
    Fail();
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    cv_.notify_all();
  }

 private:
  Done Take() {
    std::lock_guard<std::mutex> lock(mu_);
    Done d = std::move(done_);
    done_ = nullptr;
    return d;
  }
  void Fail() {
    Done done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      broken_ = true;
      done = std::move(done_);
      done_ = nullptr;
    }
    if (done) done("lease keep-alive stream closed");
  }

  grpc::ClientContext ctx_;
  etcdserverpb::LeaseKeepAliveRequest req_;
  etcdserverpb::LeaseKeepAliveResponse resp_;
  std::mutex mu_;
  std::condition_variable cv_;
  Done done_;
  bool broken_ = false;
  bool finished_ = false;
};

class GrpcLoad : public Load {
 public:
  explicit GrpcLoad(const BenchFlags& f) : f_(f), value_(static_cast<size_t>(f.val_size), 'v') {
    channels_ = MakeChannels(f);
    for (auto& [ep, ch] : channels_) {
      kv_.push_back(etcdserverpb::KV::NewStub(ch));
      idem_.push_back(bulwark::v1::Idempotency::NewStub(ch));
    }
    std::random_device rd;
    run_id_ = absl::StrFormat("%08x", rd());
    for (int c = 0; c < f.clients; ++c)
      rngs_.emplace_back(rd());
  }

  ~GrpcLoad() override {
    for (auto& st : keepalives_)
      st->Cancel();
    for (auto& st : keepalives_)
      st->WaitDone();
  }

  absl::Status Connect() {
    BW_RETURN_IF_ERROR(WaitConnected(channels_));
    if (f_.load != "lease-keepalive") return absl::OkStatus();
    // A lease per client, renewed on its own stream.
    for (int c = 0; c < f_.clients; ++c) {
      auto& ch = channels_[static_cast<size_t>(c) % channels_.size()].second;
      leases_.push_back(etcdserverpb::Lease::NewStub(ch));
      etcdserverpb::LeaseGrantRequest req;
      req.set_ttl(60);
      etcdserverpb::LeaseGrantResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(env::WallDeadlineAfter(std::chrono::seconds(10)));
      grpc::Status st = leases_.back()->LeaseGrant(&ctx, req, &resp);
      if (!st.ok()) return absl::UnavailableError(absl::StrCat("lease grant: ", ErrorKind(st)));
      keepalives_.push_back(std::make_unique<KeepAliveStream>(leases_.back().get(), resp.id()));
    }
    return absl::OkStatus();
  }

  void Start(int client, int64_t seq, Done done) override {
    size_t conn = static_cast<size_t>(client) % channels_.size();
    if (f_.load == "put" || f_.load == "keyed-put") {
      auto* call = NewCall<etcdserverpb::PutRequest, etcdserverpb::PutResponse>();
      call->req.set_key(Key(client, seq));
      call->req.set_value(value_);
      if (f_.load == "keyed-put") call->ctx.AddMetadata("idempotency-key", IdemKey(client, seq));
      kv_[conn]->async()->Put(&call->ctx, &call->req, &call->resp, Finish(call, std::move(done)));
    } else if (f_.load == "txn-put") {
      auto* call = NewCall<etcdserverpb::TxnRequest, etcdserverpb::TxnResponse>();
      etcdserverpb::PutRequest* put = call->req.add_success()->mutable_request_put();
      put->set_key(Key(client, seq));
      put->set_value(value_);
      kv_[conn]->async()->Txn(&call->ctx, &call->req, &call->resp, Finish(call, std::move(done)));
    } else if (f_.load == "lease-keepalive") {
      keepalives_[static_cast<size_t>(client)]->KeepAlive(std::move(done));
    } else if (f_.load == "range") {
      auto* call = NewCall<etcdserverpb::RangeRequest, etcdserverpb::RangeResponse>();
      call->req.set_key(f_.range_key);
      call->req.set_serializable(f_.consistency == "s");
      kv_[conn]->async()->Range(&call->ctx, &call->req, &call->resp, Finish(call, std::move(done)));
    } else {
      Idem(conn, client, seq, std::move(done));
    }
  }

 private:
  template <typename Req, typename Resp>
  struct Call {
    grpc::ClientContext ctx;
    Req req;
    Resp resp;
  };

  template <typename Req, typename Resp>
  Call<Req, Resp>* NewCall() {
    auto* call = new Call<Req, Resp>();
    call->ctx.set_deadline(env::WallDeadlineAfter(
        std::chrono::milliseconds(static_cast<int64_t>(f_.timeout_s * 1e3))));
    return call;
  }

  template <typename C>
  std::function<void(grpc::Status)> Finish(C* call, Done done) {
    return [call, done = std::move(done)](grpc::Status s) {
      delete call;
      done(s.ok() ? std::string() : ErrorKind(s));
    };
  }

  // A key of --key-size bytes from the key space, sequential or random.
  std::string Key(int client, int64_t seq) {
    uint64_t n = f_.sequential
                     ? static_cast<uint64_t>(seq) % static_cast<uint64_t>(f_.key_space)
                     : rngs_[static_cast<size_t>(client)]() % static_cast<uint64_t>(f_.key_space);
    std::string k = absl::StrFormat("%0*llu", f_.key_size, static_cast<unsigned long long>(n));
    return k;
  }

  // Unique across runs: a fresh key for every request (none is a retry).
  std::string IdemKey(int client, int64_t seq) const {
    return absl::StrCat("bench-", run_id_, "-", client, "-", seq);
  }

  // Begin (STARTED expected) then Complete with the value as the response:
  // one guarded side effect, as a payment service would do it.
  void Idem(size_t conn, int client, int64_t seq, Done done) {
    using BeginCall = Call<bulwark::v1::BeginRequest, bulwark::v1::BeginResponse>;
    auto* begin = NewCall<bulwark::v1::BeginRequest, bulwark::v1::BeginResponse>();
    begin->req.set_scope("bench");
    begin->req.set_key(IdemKey(client, seq));
    begin->req.set_fingerprint("request-fingerprint");
    begin->req.set_lock_ttl_ms(f_.lock_ttl_ms);
    bulwark::v1::Idempotency::Stub* stub = idem_[conn].get();
    idem_[conn]->async()->Begin(
        &begin->ctx, &begin->req, &begin->resp,
        [this, begin, stub, done = std::move(done)](grpc::Status s) mutable {
          std::unique_ptr<BeginCall> b(begin);
          if (!s.ok()) {
            done(ErrorKind(s));
            return;
          }
          if (b->resp.outcome() != bulwark::v1::BeginResponse::STARTED) {
            done(absl::StrCat("begin: ",
                              bulwark::v1::BeginResponse::Outcome_Name(b->resp.outcome())));
            return;
          }
          auto* complete = NewCall<bulwark::v1::CompleteRequest, bulwark::v1::CompleteResponse>();
          complete->req.set_scope("bench");
          complete->req.set_key(b->req.key());
          complete->req.set_token(b->resp.token());
          complete->req.set_response(value_);
          complete->req.set_status(200);
          stub->async()->Complete(&complete->ctx, &complete->req, &complete->resp,
                                  Finish(complete, std::move(done)));
        });
  }

  const BenchFlags& f_;
  std::string value_;
  std::string run_id_;
  Channels channels_;
  std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>> leases_;
  std::vector<std::unique_ptr<KeepAliveStream>> keepalives_;  // per client
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv_;
  std::vector<std::unique_ptr<bulwark::v1::Idempotency::Stub>> idem_;
  std::vector<std::mt19937_64> rngs_;  // per client
};

// The Redis idempotency store that bulwark's service is compared with:
// `SET key token NX PX lock_ttl` claims the key, then `SET key response EX
// 86400` stores the outcome. One connection per client, all driven by one
// epoll thread; RESP is written and read by hand (only SET's replies).
class RedisLoad : public Load {
 public:
  explicit RedisLoad(const BenchFlags& f) : f_(f), value_(static_cast<size_t>(f.val_size), 'v') {
    std::random_device rd;
    run_id_ = absl::StrFormat("%08x", rd());
  }
  ~RedisLoad() override {
    stop_ = true;
    if (loop_.joinable()) loop_.join();
    for (auto& c : conns_)
      close(c->fd);
    if (epfd_ >= 0) close(epfd_);
  }

  absl::Status Connect() {
    std::vector<std::string> hp = absl::StrSplit(f_.redis, ':');
    int port = 0;
    if (hp.size() != 2 || !absl::SimpleAtoi(hp[1], &port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--redis must be host:port (got '", f_.redis, "')"));
    }
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(hp[0].c_str(), hp[1].c_str(), &hints, &res) != 0 || res == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot resolve ", hp[0]));
    }
    epfd_ = epoll_create1(0);
    for (int c = 0; c < f_.clients; ++c) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return absl::UnavailableError(absl::StrCat("cannot connect to redis at ", f_.redis));
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto conn = std::make_unique<Conn>();
      conn->fd = fd;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = conn.get();
      epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
      conns_.push_back(std::move(conn));
    }
    freeaddrinfo(res);
    loop_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  void Start(int client, int64_t seq, Done done) override {
    Conn& c = *conns_[static_cast<size_t>(client)];
    std::string cmd;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      c.key = absl::StrCat("bench-", run_id_, "-", client, "-", seq);
      c.phase = 0;
      c.done = std::move(done);
      cmd = Command(
          {"SET", c.key, absl::StrCat("token-", seq), "NX", "PX", std::to_string(f_.lock_ttl_ms)});
    }
    Send(c, cmd);
  }

 private:
  struct Conn {
    int fd = -1;
    std::mutex mu;
    std::string in;
    std::string key;
    int phase = 0;  // 0: the claim is out; 1: the outcome is out
    Done done;
  };

  static std::string Command(const std::vector<std::string>& args) {
    std::string out = absl::StrCat("*", args.size(), "\r\n");
    for (const std::string& a : args)
      absl::StrAppend(&out, "$", a.size(), "\r\n", a, "\r\n");
    return out;
  }

  void Send(Conn& c, const std::string& cmd) {
    size_t off = 0;
    while (off < cmd.size()) {
      ssize_t n = write(c.fd, cmd.data() + off, cmd.size() - off);
      if (n <= 0) {
        Finish(c, "redis: write failed");
        return;
      }
      off += static_cast<size_t>(n);
    }
  }

  void Finish(Conn& c, std::string error) {
    Done done;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      done = std::move(c.done);
      c.done = nullptr;
    }
    if (done) done(std::move(error));
  }

  void Loop() {
    std::vector<epoll_event> events(64);
    char buf[4096];
    while (!stop_) {
      int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) {
        Conn& c = *static_cast<Conn*>(events[static_cast<size_t>(i)].data.ptr);
        ssize_t got = read(c.fd, buf, sizeof(buf));
        if (got <= 0) {
          Finish(c, "redis: connection closed");
          continue;
        }
        std::string line;
        {
          std::lock_guard<std::mutex> lock(c.mu);
          c.in.append(buf, static_cast<size_t>(got));
          size_t eol = c.in.find("\r\n");
          if (eol == std::string::npos) continue;
          line = c.in.substr(0, eol);
          c.in.erase(0, eol + 2);
        }
        OnReply(c, line);
      }
    }
  }

  void OnReply(Conn& c, const std::string& line) {
    if (line != "+OK") {
      Finish(c, line == "$-1" ? "redis: key already claimed" : absl::StrCat("redis: ", line));
      return;
    }
    std::string cmd;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      if (c.phase == 1) {
        cmd.clear();
      } else {
        c.phase = 1;
        cmd = Command({"SET", c.key, value_, "EX", "86400"});
      }
    }
    if (cmd.empty()) {
      Finish(c, "");
    } else {
      Send(c, cmd);
    }
  }

  const BenchFlags& f_;
  std::string value_;
  std::string run_id_;
  int epfd_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::thread loop_;
  std::atomic<bool> stop_{false};
};

absl::Status Validate(const BenchFlags& f) {
  BW_RETURN_IF_ERROR(client::ChannelCredentialsFor(f.tls, true).status());
  static const std::vector<std::string> loads = absl::StrSplit(kLoads, ", ");
  if (std::find(loads.begin(), loads.end(), f.load) == loads.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown load '", f.load, "' (known: ", kLoads, ")"));
  }
  if (f.conns < 1 || f.clients < 1) {
    return absl::InvalidArgumentError("--conns and --clients must be at least 1");
  }
  if (f.total < 1 || f.duration_s <= 0 || f.timeout_s <= 0) {
    return absl::InvalidArgumentError("--total, --duration and --timeout must be positive");
  }
  if (f.rate < 0) return absl::InvalidArgumentError("--rate must be 0 (unlimited) or positive");
  if (f.key_size < 1 || f.val_size < 0 || f.key_space < 1) {
    return absl::InvalidArgumentError(
        "--key-size and --key-space-size must be at least 1, --val-size at least 0");
  }
  if (f.streams < 1 || f.watchers_per_stream < 1) {
    return absl::InvalidArgumentError("--streams and --watchers-per-stream must be at least 1");
  }
  if (f.consistency != "l" && f.consistency != "s") {
    return absl::InvalidArgumentError("--consistency must be l (linearizable) or s (serializable)");
  }
  return absl::OkStatus();
}

void Report(const BenchFlags& f, const Summary& s) {
  if (f.json) {
    std::string kinds;
    for (const auto& [kind, n] : s.error_kinds) {
      std::string k;
      for (char ch : kind)
        if (ch != '"' && ch != '\\') k.push_back(ch);
      absl::StrAppend(&kinds, kinds.empty() ? "" : ",", "\"", k, "\":", n);
    }
    std::printf(
        "{\"load\":\"%s\",\"clients\":%d,\"conns\":%d,\"ok\":%lld,\"errors\":%lld,\"seconds\":%.3f,"
        "\"throughput\":%.1f,\"latency_ms\":{\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
        "\"p999\":%.3f,\"max\":%.3f},\"error_kinds\":{%s}}\n",
        f.load.c_str(), f.clients, f.conns, static_cast<long long>(s.ok),
        static_cast<long long>(s.errors), s.seconds, s.Throughput(), s.MeanMs(), s.Percentile(50),
        s.Percentile(90), s.Percentile(99), s.Percentile(99.9), s.Percentile(100), kinds.c_str());
    // Out before teardown: whatever happens while the channels close, the
    // summary has been written.
    std::fflush(stdout);
    return;
  }
  if (f.load == "watch") {
    std::printf("watch: %lld events received, %lld missed or failed, in %.2f s: %.0f events/s\n",
                static_cast<long long>(s.ok), static_cast<long long>(s.errors), s.seconds,
                s.Throughput());
  } else {
    std::printf("%s: %lld ok, %lld errors in %.2f s: %.0f requests/s (%d clients, %d conns)\n",
                f.load.c_str(), static_cast<long long>(s.ok), static_cast<long long>(s.errors),
                s.seconds, s.Throughput(), f.clients, f.conns);
  }
  std::printf("latency ms: mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
              s.MeanMs(), s.Percentile(50), s.Percentile(90), s.Percentile(99), s.Percentile(99.9),
              s.Percentile(100));
  for (const auto& [kind, n] : s.error_kinds)
    std::printf("  %lld x %s\n", static_cast<long long>(n), kind.c_str());
  std::fflush(stdout);
}

// Watch fan-out: --streams streams (spread over the connections) with
// --watchers-per-stream watchers each, all on --key; then --total puts to the
// key at --rate, each value carrying the time it was sent. Every watcher must
// see every put; the latency is from the put's send to each event's arrival.
class WatchStream final
    : public grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchStream(etcdserverpb::Watch::Stub* stub, const std::string& key, int watchers,
              Clock::time_point epoch, std::atomic<int64_t>* created, std::atomic<int>* done)
      : key_(key), watchers_(watchers), epoch_(epoch), created_(created), done_(done) {
    stub->async()->Watch(&ctx_, this);
    WriteNext();
    StartRead(&resp_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }
  std::vector<int64_t>& latencies() { return latencies_; }

  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (resp_.created()) created_->fetch_add(1);
    int64_t now =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - epoch_).count();
    for (const mvccpb::Event& e : resp_.events()) {
      int64_t sent = 0;
      if (absl::SimpleAtoi(e.kv().value().substr(0, 16), &sent)) latencies_.push_back(now - sent);
    }
    StartRead(&resp_);
  }
  void OnDone(const grpc::Status&) override { done_->fetch_add(1); }

 private:
  void WriteNext() {
    if (written_ == watchers_) return;
    ++written_;
    req_.mutable_create_request()->set_key(key_);
    StartWrite(&req_);
  }

  grpc::ClientContext ctx_;
  std::string key_;
  int watchers_;
  int written_ = 0;
  Clock::time_point epoch_;
  std::atomic<int64_t>* created_;
  std::atomic<int>* done_;
  etcdserverpb::WatchRequest req_;
  etcdserverpb::WatchResponse resp_;
  std::vector<int64_t> latencies_;  // only this stream's reads touch it
};

int RunWatchBench(const BenchFlags& f) {
  Channels channels = MakeChannels(f);
  absl::Status connected = WaitConnected(channels);
  if (!connected.ok()) {
    std::fprintf(stderr, "bulwark bench: %s\n", std::string(connected.message()).c_str());
    return 1;
  }
  std::vector<std::unique_ptr<etcdserverpb::Watch::Stub>> watch;
  for (auto& [ep, ch] : channels)
    watch.push_back(etcdserverpb::Watch::NewStub(ch));
  const int64_t watchers = int64_t{f.streams} * f.watchers_per_stream;
  const Clock::time_point epoch = Clock::now();
  std::atomic<int64_t> created{0};
  std::atomic<int> done{0};
  std::vector<std::unique_ptr<WatchStream>> streams;
  for (int i = 0; i < f.streams; ++i) {
    streams.push_back(
        std::make_unique<WatchStream>(watch[static_cast<size_t>(i) % watch.size()].get(),
                                      f.range_key, f.watchers_per_stream, epoch, &created, &done));
  }
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(30);
  while (created.load() < watchers && Clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  Summary s;
  if (created.load() < watchers) {
    s.error_kinds["watchers not created within 30 s"] = watchers - created.load();
  }
  if (!f.no_progress) {
    std::fprintf(stderr, "%lld watchers created in %.2f s; writing %lld puts\n",
                 static_cast<long long>(created.load()),
                 std::chrono::duration<double>(Clock::now() - epoch).count(),
                 static_cast<long long>(f.total));
  }
  // The writer: one client, at --rate (default: one put per millisecond).
  auto kv = etcdserverpb::KV::NewStub(channels[0].second);
  const double rate = f.rate > 0 ? f.rate : 1000;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + std::chrono::microseconds(static_cast<int64_t>(f.duration_s * 1e6));
  int64_t puts = 0;
  for (; puts < f.total && Clock::now() < deadline; ++puts) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(static_cast<int64_t>(
                                              static_cast<double>(puts) * 1e6 / rate)));
    etcdserverpb::PutRequest req;
    req.set_key(f.range_key);
    int64_t now =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - epoch).count();
    std::string v = absl::StrFormat("%016d", now);
    if (static_cast<int>(v.size()) < f.val_size) v.resize(static_cast<size_t>(f.val_size), 'v');
    req.set_value(v);
    etcdserverpb::PutResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(
        env::WallDeadlineAfter(std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1e3))));
    grpc::Status st = kv->Put(&ctx, req, &resp);
    if (!st.ok()) ++s.error_kinds[absl::StrCat("put: ", ErrorKind(st))];
  }
  // Let the last events arrive, then end every stream.
  const int64_t expected = puts * created.load();
  const Clock::time_point drain = Clock::now() + std::chrono::seconds(5);
  auto received = [&streams] {
    int64_t n = 0;
    for (auto& st : streams)
      n += static_cast<int64_t>(st->latencies().size());
    return n;
  };
  while (received() < expected && Clock::now() < drain)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& st : streams)
    st->Cancel();
  while (done.load() < f.streams)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (auto& st : streams)
    s.latencies_us.insert(s.latencies_us.end(), st->latencies().begin(), st->latencies().end());
  std::sort(s.latencies_us.begin(), s.latencies_us.end());
  s.ok = static_cast<int64_t>(s.latencies_us.size());
  if (s.ok < expected) s.error_kinds["events missed"] = expected - s.ok;
  for (const auto& [kind, n] : s.error_kinds)
    s.errors += n;
  std::fprintf(f.json ? stderr : stdout, "%lld watchers on %d streams, %lld puts\n",
               static_cast<long long>(created.load()), f.streams, static_cast<long long>(puts));
  Report(f, s);
  return s.ok == 0 ? 1 : 0;
}

int RunBench(const BenchFlags& f) {
  absl::Status v = Validate(f);
  if (!v.ok()) {
    std::fprintf(stderr, "bulwark bench: %s\n", std::string(v.message()).c_str());
    return 2;
  }
  if (f.load == "watch") return RunWatchBench(f);
  std::unique_ptr<Load> load;
  absl::Status connected;
  if (f.load == "redis-idem") {
    auto r = std::make_unique<RedisLoad>(f);
    connected = r->Connect();
    load = std::move(r);
  } else {
    auto g = std::make_unique<GrpcLoad>(f);
    connected = g->Connect();
    load = std::move(g);
  }
  if (!connected.ok()) {
    std::fprintf(stderr, "bulwark bench: %s\n", std::string(connected.message()).c_str());
    return 1;
  }
  Driver driver(f, *load);
  Summary s = driver.Run();
  Report(f, s);
  // Every request failed: the run measured nothing.
  return s.ok == 0 ? 1 : 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Drive etcd or bulwark (etcd v3 API) or Redis with a bounded load and report "
      "throughput and latency");
  cmd->add_option("load", f->load, std::string("The load: ") + kLoads)->required();
  cmd->add_option("--endpoints", f->endpoints, "Comma-separated host:port list");
  cmd->add_option("--conns", f->conns, "gRPC connections (spread over the endpoints)");
  cmd->add_option("--clients", f->clients, "Concurrent clients, one request in flight each");
  cmd->add_option("--total", f->total, "Requests in all");
  cmd->add_option("--duration", f->duration_s, "Stop after this many seconds at the latest");
  cmd->add_option("--rate", f->rate, "Requests per second in all (0: as fast as answered)");
  cmd->add_option("--key-size", f->key_size, "Key size, bytes");
  cmd->add_option("--val-size", f->val_size, "Value size, bytes");
  cmd->add_option("--key-space-size", f->key_space, "Distinct keys written");
  cmd->add_flag("--sequential-keys", f->sequential, "Write keys in order instead of at random");
  cmd->add_option("--consistency", f->consistency, "range: l (linearizable) or s (serializable)");
  cmd->add_option("--key", f->range_key, "range: the key read; watch: the key watched");
  cmd->add_option("--redis", f->redis, "redis-idem: the Redis server, host:port");
  cmd->add_option("--streams", f->streams, "watch: watch streams");
  cmd->add_option("--watchers-per-stream", f->watchers_per_stream,
                  "watch: watchers on each stream (all on --key)");
  cmd->add_option("--timeout", f->timeout_s, "Deadline of each request, seconds");
  cmd->add_option("--lock-ttl-ms", f->lock_ttl_ms, "idem, redis-idem: the claim's lock time");
  cmd->add_option("--cacert", f->tls.ca_file, "TLS: the CA of the members' certificates");
  cmd->add_option("--cert", f->tls.cert_file, "TLS: client certificate");
  // (--key is taken by the key read; etcdctl's --key is --key-file here.)
  cmd->add_option("--key-file", f->tls.key_file, "TLS: the key of --cert");
  cmd->add_flag("--json", f->json, "Print the summary as one JSON line");
  cmd->add_flag("--no-progress", f->no_progress, "No progress bar on stderr");
  cmd->callback([f, exit_code] { *exit_code = RunBench(*f); });
}

}  // namespace bw::cli
