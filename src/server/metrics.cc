#include "server/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace bw::server {

namespace {

const char* CodeName(int code) {
  static const char* kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  return code >= 0 && code <= 16 ? kNames[code] : "Unknown";
}

void Family(std::string* out, const char* name, const char* type, const char* help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void Sample(std::string* out, const char* name, double v, const std::string& labels = "") {
  absl::StrAppend(out, name, labels.empty() ? "" : absl::StrCat("{", labels, "}"), " ",
                  absl::StrFormat("%.9g", v), "\n");
}

void HistogramSamples(std::string* out, const char* name, const core::Histogram& h,
                      const std::string& labels) {
  std::string sep = labels.empty() ? "" : ",";
  uint64_t cum = 0;
  for (size_t i = 0; i < h.counts().size(); ++i) {
    cum += h.counts()[i];
    std::string le = i < h.bounds().size() ? absl::StrFormat("%g", h.bounds()[i]) : "+Inf";
    absl::StrAppend(out, name, "_bucket{", labels, sep, "le=\"", le, "\"} ", cum, "\n");
  }
  std::string braces = labels.empty() ? "" : absl::StrCat("{", labels, "}");
  absl::StrAppend(out, name, "_sum", braces, " ", absl::StrFormat("%.9g", h.sum()), "\n");
  absl::StrAppend(out, name, "_count", braces, " ", h.count(), "\n");
}

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(std::string method, GrpcMetrics& metrics)
      : method_(std::move(method)), metrics_(metrics), start_us_(clock_.NowMicros()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status s = methods->GetSendStatus();
      metrics_.Record(method_, s.error_code(),
                      static_cast<double>(clock_.NowMicros() - start_us_) / 1e6);
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  GrpcMetrics& metrics_;
  env::RealClock clock_;
  int64_t start_us_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(GrpcMetrics& m) : metrics_(m) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info->method(), metrics_);
  }

 private:
  GrpcMetrics& metrics_;
};

}  // namespace

void GrpcMetrics::Record(const std::string& full_method, int code, double seconds) {
  // "/etcdserverpb.KV/Range" -> service "etcdserverpb.KV", method "Range".
  size_t slash = full_method.rfind('/');
  std::string service = slash == std::string::npos || slash == 0 ? std::string("unknown")
                                                                 : full_method.substr(1, slash - 1);
  std::string method = slash == std::string::npos ? full_method : full_method.substr(slash + 1);
  std::lock_guard<std::mutex> lock(mu_);
  ++handled_[{service, method, code}];
  auto it = seconds_.find({service, method});
  if (it == seconds_.end()) {
    it = seconds_.emplace(std::make_pair(service, method), core::Histogram::LatencySeconds()).first;
  }
  it->second.Observe(seconds);
}

void GrpcMetrics::Render(std::string* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  Family(out, "grpc_server_handled_total", "counter",
         "RPCs completed on the server, by service, method and code.");
  for (const auto& [k, n] : handled_) {
    const auto& [service, method, code] = k;
    Sample(out, "grpc_server_handled_total", static_cast<double>(n),
           absl::StrCat("grpc_service=\"", service, "\",grpc_method=\"", method, "\",grpc_code=\"",
                        CodeName(code), "\""));
  }
  Family(out, "grpc_server_handling_seconds", "histogram",
         "Time from an RPC's start to its status (the stream's life for streams).");
  for (const auto& [k, h] : seconds_) {
    HistogramSamples(out, "grpc_server_handling_seconds", h,
                     absl::StrCat("grpc_service=\"", k.first, "\",grpc_method=\"", k.second, "\""));
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeMetricsInterceptor(
    GrpcMetrics& metrics) {
  return std::make_unique<MetricsInterceptorFactory>(metrics);
}

std::string RenderMetrics(const MemberStats& s, const GrpcMetrics& grpc) {
  std::string out;
  auto gauge = [&](const char* name, const char* help, double v) {
    Family(&out, name, "gauge", help);
    Sample(&out, name, v);
  };
  auto counter = [&](const char* name, const char* help, double v) {
    Family(&out, name, "counter", help);
    Sample(&out, name, v);
  };
  gauge("etcd_server_has_leader", "1 when this member knows a leader.", s.has_leader ? 1 : 0);
  gauge("etcd_server_is_leader", "1 when this member is the leader.", s.is_leader ? 1 : 0);
  counter("etcd_server_leader_changes_seen_total", "Leader changes this member has seen.",
          static_cast<double>(s.leader_changes));
  counter("etcd_server_proposals_committed_total", "The commit index (committed entries).",
          static_cast<double>(s.commit_index));
  counter("etcd_server_proposals_applied_total", "The applied index (applied entries).",
          static_cast<double>(s.applied_index));
  gauge("etcd_server_proposals_pending", "Client requests waiting for the log or a read.",
        static_cast<double>(s.pending));
  counter("bulwark_proposals_total", "Entries this member proposed for clients.",
          static_cast<double>(s.proposals));
  gauge("bulwark_raft_term", "The current Raft term.", static_cast<double>(s.term));
  gauge("bulwark_raft_commit_index", "The commit index.", static_cast<double>(s.commit_index));
  gauge("bulwark_raft_applied_index", "The index the state machine has applied.",
        static_cast<double>(s.applied_index));
  gauge("bulwark_raft_log_entries", "Entries in the Raft log since its compaction point.",
        static_cast<double>(s.log_entries));
  gauge(
      "bulwark_raft_log_cached_bytes",
      "Bytes of Raft log entries held in memory (--raft-log-cache-bytes bounds the applied ones).",
      static_cast<double>(s.log_cached_bytes));
  counter("bulwark_raft_log_entries_read_total",
          "Entries sent to followers read back from the WAL (no longer in memory).",
          static_cast<double>(s.log_entries_read));
  counter("bulwark_raft_log_read_failures_total",
          "Sends to followers not made because entries did not read back from the WAL.",
          static_cast<double>(s.log_read_failures));
  gauge("etcd_mvcc_db_total_size_in_bytes", "Bytes of stored keys and values (all versions).",
        static_cast<double>(s.db_bytes));
  gauge("etcd_debugging_mvcc_keys_total", "Live keys at the current revision.",
        static_cast<double>(s.live_keys));
  gauge("bulwark_mvcc_versions", "Stored versions of keys (history not yet compacted).",
        static_cast<double>(s.versions));
  gauge("bulwark_mvcc_revision", "The store's revision.", static_cast<double>(s.revision));
  gauge("bulwark_mvcc_compact_revision", "The last compaction's revision.",
        static_cast<double>(s.compact_revision));
  gauge("etcd_debugging_mvcc_watcher_total", "Watchers on this member.",
        static_cast<double>(s.watchers));
  gauge("bulwark_leases", "Leases granted and not expired.", static_cast<double>(s.leases));
  gauge("bulwark_idempotency_keys",
        "Kept answers of keyed etcd writes (each kept for its retention).",
        static_cast<double>(s.idempotency_keys));
  gauge("bulwark_idempotency_bytes",
        "Bytes of kept answers and idempotency records; they count against the quota.",
        static_cast<double>(s.idempotency_bytes));
  gauge("etcd_server_quota_backend_bytes", "The quota (--quota-backend-bytes); 0: none.",
        static_cast<double>(s.quota_backend_bytes));
  gauge("bulwark_idempotency_records", "bulwark.v1.Idempotency records kept.",
        static_cast<double>(s.records));
  gauge("bulwark_nospace_alarm", "1 while the disk is full and writes are refused.",
        s.nospace_alarm ? 1 : 0);
  Family(&out, "etcd_disk_wal_fsync_duration_seconds", "histogram",
         "Durations of the WAL's fsyncs (fdatasync).");
  HistogramSamples(&out, "etcd_disk_wal_fsync_duration_seconds", s.sync_seconds, "");
  grpc.Render(&out);
  return out;
}

}  // namespace bw::server
