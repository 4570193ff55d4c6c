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
#include "member/member_stats.h"

namespace bw::server {

using member::MemberStats;

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
