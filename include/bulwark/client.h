// libbulwark: the C++ client for a bulwark (or etcd) cluster, designed for
// failure. Every call runs through the resilience pipeline
// (bulwark/resilience.h): a deadline that travels to the server, retries
// with backoff and full jitter inside a retry budget, a circuit breaker,
// bulkhead and outlier ejection per member, hedged serializable reads.
//
// Writes (Put, Delete, Txn) carry an idempotency key, a UUIDv7 generated
// once before the first attempt and sent on every retry, so a retry after a
// lost reply is answered from the server's record instead of applied twice.
// A write sent without a key (CallOptions::no_idempotency_key) is never
// retried once it may have reached the server: if no answer comes back its
// result is Outcome::kUnknown, never a plain failure.
//
// Threading: a Client owns one thread (its event loop). Every method may be
// called from any thread. Asynchronous calls take a callback that runs on
// the client's thread, with no lock of the client's held; it must not block
// (a synchronous call made from inside it fails with FAILED_PRECONDITION
// instead of deadlocking). Destroying the client cancels what is in flight
// and waits for its thread; callbacks of unfinished calls are not run.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bulwark/idempotency.grpc.pb.h"
#include "bulwark/resilience.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace bulwark {

struct ClientOptions {
  // Members' client addresses, "host:port" or a client URL
  // ("https://host:port": TLS).
  std::vector<std::string> endpoints;
  // TLS, as etcdctl's --cacert, --cert and --key: used for https://
  // endpoints, and for every endpoint once any of these is set. The CA
  // that signs the members' certificates (empty: the system's roots); a
  // client certificate and key for members that require one
  // (--client-cert-auth).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  PipelineOptions policies;
  // Sent as `idempotency-scope` with every keyed write: keys need only be
  // unique within a scope (a tenant, a service).
  std::string idempotency_scope;
  // With authentication on: the user and password. Connect authenticates
  // (CONNECT fails with the server's error for a wrong password); every call
  // carries the token, and a token the cluster refuses (expired, issued
  // before an auth change, lost in a restart) is replaced by authenticating
  // again, and the call retried, without the caller noticing.
  std::string user;
  std::string password;
  // How long Connect waits for the first member to answer.
  std::chrono::milliseconds connect_timeout{5000};
  // Each policy event (retry, hedge, breaker opened, ejected, ...), on the
  // client's thread.
  std::function<void(const Event&)> on_event;
  // Fault injection, for tests and demos: the chance that an attempt's
  // request is lost before it is sent (it fails UNAVAILABLE, certainly not
  // applied), and that an answer is lost after the server sent it (it fails
  // UNAVAILABLE although the server acted on it).
  double drop_request_chance = 0;
  double drop_reply_chance = 0;
};

struct CallOptions {
  // 0: the pipeline's default_timeout_us.
  std::chrono::microseconds timeout{0};
  // Writes: this idempotency key instead of a fresh UUIDv7 (a caller that
  // retries a whole operation later reuses its key).
  std::string idempotency_key;
  // Writes: send no key. Such a write is not retried once it may have been
  // applied; see Outcome::kUnknown.
  bool no_idempotency_key = false;
  // Serializable reads: send a second attempt to another member when the
  // first is slow (PipelineOptions::hedge_delay_us).
  bool hedge = true;
};

template <class T>
struct Result {
  Outcome outcome = Outcome::kFailed;
  // OK, the error, or (kUnknown) why the outcome is unknown.
  absl::Status status;
  T value;
  int attempts = 0;
  // The idempotency key the write carried ("" for reads and unkeyed writes).
  std::string idempotency_key;
  // The server answered from its record of an earlier attempt.
  bool replayed = false;

  bool ok() const { return outcome == Outcome::kOk; }
};

struct ClientMetrics {
  PipelineMetrics pipeline;
  uint64_t replayed = 0;
  uint64_t leader_changes = 0;
  int leader = -1;  // endpoint index, -1 unknown
  // Injected faults (ClientOptions::drop_*_chance).
  uint64_t requests_dropped = 0;
  uint64_t replies_dropped = 0;
  // Watch streams reopened after they broke.
  uint64_t watch_resumes = 0;
};

// Events of one watch, in revision order. After a broken stream the watch
// resumes (on another member if need be) from the revision after the last
// event delivered, so no event is lost or repeated; a watch whose start was
// compacted away ends with `canceled` and the compact revision.
struct WatchOptions {
  std::string key;
  std::string range_end;
  int64_t start_revision = 0;
  bool prev_kv = false;
};

class Watcher {
 public:
  virtual ~Watcher() = default;
  // Stops the watch; no callback runs after Cancel returns (unless called
  // from inside one, where the current callback is the last).
  virtual void Cancel() = 0;
};

class LeaseKeeper {
 public:
  virtual ~LeaseKeeper() = default;
  // The TTL the server last granted (seconds); 0 once the lease is gone.
  virtual int64_t ttl() const = 0;
  virtual void Stop() = 0;
};

class Client {
 public:
  // Connects to the cluster: at least one endpoint must answer within the
  // connect timeout. INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);
  virtual ~Client() = default;

  template <class T>
  using Callback = std::function<void(Result<T>)>;

  // Every call has an asynchronous form (the callback runs on the client's
  // thread) and a synchronous one that waits for it. A synchronous call
  // made from inside a client callback fails with FAILED_PRECONDITION.

  // --- KV ---
  virtual void RangeAsync(const etcdserverpb::RangeRequest& r, CallOptions o,
                          Callback<etcdserverpb::RangeResponse> done) = 0;
  virtual void PutAsync(const etcdserverpb::PutRequest& r, CallOptions o,
                        Callback<etcdserverpb::PutResponse> done) = 0;
  virtual void DeleteAsync(const etcdserverpb::DeleteRangeRequest& r, CallOptions o,
                           Callback<etcdserverpb::DeleteRangeResponse> done) = 0;
  // A Txn with only reads in it is retried as a read.
  virtual void TxnAsync(const etcdserverpb::TxnRequest& r, CallOptions o,
                        Callback<etcdserverpb::TxnResponse> done) = 0;

  // A linearizable read unless `serializable`.
  Result<etcdserverpb::RangeResponse> Get(const std::string& key, bool serializable = false,
                                          CallOptions o = {});
  Result<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& r,
                                            CallOptions o = {});
  Result<etcdserverpb::PutResponse> Put(const std::string& key, const std::string& value,
                                        CallOptions o = {});
  Result<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& r, CallOptions o = {});
  Result<etcdserverpb::DeleteRangeResponse> Delete(const etcdserverpb::DeleteRangeRequest& r,
                                                   CallOptions o = {});
  Result<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& r, CallOptions o = {});

  // --- Watch ---
  // `on_response` gets every WatchResponse with events (and the final one,
  // canceled). Runs on the client's thread. Watchers and keepers must be
  // destroyed before their client.
  virtual std::unique_ptr<Watcher> Watch(
      WatchOptions w, std::function<void(const etcdserverpb::WatchResponse&)> on_response) = 0;

  // --- Lease ---
  // Revocations and renewals are safe to repeat and are retried like reads.
  virtual void LeaseGrantAsync(int64_t ttl_s, CallOptions o,
                               Callback<etcdserverpb::LeaseGrantResponse> done) = 0;
  virtual void LeaseRevokeAsync(int64_t lease, CallOptions o,
                                Callback<etcdserverpb::LeaseRevokeResponse> done) = 0;
  // One renewal (NOT_FOUND once the lease is gone).
  virtual void LeaseKeepAliveOnceAsync(int64_t lease, CallOptions o,
                                       Callback<etcdserverpb::LeaseKeepAliveResponse> done) = 0;
  // Renews `lease` every third of its TTL until stopped or the lease is gone.
  virtual std::unique_ptr<LeaseKeeper> KeepAlive(int64_t lease) = 0;

  Result<etcdserverpb::LeaseGrantResponse> LeaseGrant(int64_t ttl_s, CallOptions o = {});
  Result<etcdserverpb::LeaseRevokeResponse> LeaseRevoke(int64_t lease, CallOptions o = {});
  Result<etcdserverpb::LeaseKeepAliveResponse> LeaseKeepAliveOnce(int64_t lease,
                                                                  CallOptions o = {});

  // --- Idempotency records (bulwark.v1.Idempotency; see docs/idempotency.md) ---
  // Changes carry an idempotency key of their own, so a retried Begin gets
  // its token back; GetRecord is a read.
  virtual void BeginAsync(const bulwark::v1::BeginRequest& r, CallOptions o,
                          Callback<bulwark::v1::BeginResponse> done) = 0;
  virtual void CheckpointAsync(const bulwark::v1::CheckpointRequest& r, CallOptions o,
                               Callback<bulwark::v1::CheckpointResponse> done) = 0;
  virtual void CompleteAsync(const bulwark::v1::CompleteRequest& r, CallOptions o,
                             Callback<bulwark::v1::CompleteResponse> done) = 0;
  virtual void ReleaseAsync(const bulwark::v1::ReleaseRequest& r, CallOptions o,
                            Callback<bulwark::v1::ReleaseResponse> done) = 0;
  virtual void GetRecordAsync(const bulwark::v1::GetRequest& r, CallOptions o,
                              Callback<bulwark::v1::GetResponse> done) = 0;

  Result<bulwark::v1::BeginResponse> Begin(const bulwark::v1::BeginRequest& r, CallOptions o = {});
  Result<bulwark::v1::CheckpointResponse> Checkpoint(const bulwark::v1::CheckpointRequest& r,
                                                     CallOptions o = {});
  Result<bulwark::v1::CompleteResponse> Complete(const bulwark::v1::CompleteRequest& r,
                                                 CallOptions o = {});
  Result<bulwark::v1::ReleaseResponse> Release(const bulwark::v1::ReleaseRequest& r,
                                               CallOptions o = {});
  Result<bulwark::v1::GetResponse> GetRecord(const bulwark::v1::GetRequest& r, CallOptions o = {});

  virtual ClientMetrics metrics() = 0;
  virtual const std::vector<std::string>& endpoints() const = 0;

 protected:
  // True on the client's own thread, where waiting for a call would
  // deadlock.
  virtual bool OnClientThread() const = 0;

 private:
  template <class T, class Start>
  Result<T> Wait(Start start);
};

// A fresh UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random
// bits, so keys sort by creation time and never repeat.
std::string NewIdempotencyKey();

}  // namespace bulwark
