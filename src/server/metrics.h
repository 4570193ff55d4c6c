// The member's metrics in the Prometheus text format, under etcd's metric
// names where they mean the same thing (so etcd dashboards and alerts work),
// and gRPC request counts and latencies by service, method and code,
// recorded by a server interceptor on every call.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "core/histogram.h"
#include "env/real/real_env.h"

namespace bw::server {

// What the member reports, taken on its loop thread (EtcdServer::Stats): a
// plain snapshot, so the page is rendered from values and this file needs
// nothing of the member.
struct MemberStats {
  bool has_leader = false;
  bool is_leader = false;
  uint64_t leader_changes = 0;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t pending = 0;    // client requests waiting for the log or a read
  uint64_t proposals = 0;  // entries proposed for clients
  uint64_t db_bytes = 0;
  uint64_t live_keys = 0;
  uint64_t versions = 0;
  int64_t revision = 0;
  int64_t compact_revision = 0;
  uint64_t watchers = 0;
  uint64_t leases = 0;
  uint64_t idempotency_keys = 0;
  uint64_t idempotency_evicted = 0;
  uint64_t records = 0;
  bool nospace_alarm = false;
  core::Histogram sync_seconds = core::Histogram::LatencySeconds();
};

class GrpcMetrics {
 public:
  // Thread-safe: called from gRPC's threads.
  void Record(const std::string& full_method, int code, double seconds);
  // Appends the gRPC families to `out`.
  void Render(std::string* out) const;

 private:
  mutable std::mutex mu_;
  // (service, method, code) -> calls; (service, method) -> latency.
  std::map<std::tuple<std::string, std::string, int>, uint64_t> handled_;
  std::map<std::pair<std::string, std::string>, core::Histogram> seconds_;
};

// Makes the interceptor that records every call into `metrics`.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeMetricsInterceptor(
    GrpcMetrics& metrics);

// The whole /metrics page. Any thread.
std::string RenderMetrics(const MemberStats& s, const GrpcMetrics& grpc);

}  // namespace bw::server
