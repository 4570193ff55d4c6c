#include "cli/start_command.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/config.h"
#include "server/etcd_server.h"
#include "server/grpc_log.h"

namespace bw::cli {

namespace {

struct StartFlags {
  std::string config_file;
  server::ServerConfig c;
  // URL lists as etcd takes them: comma-separated.
  std::string listen_client_urls, advertise_client_urls, listen_peer_urls,
      initial_advertise_peer_urls, listen_metrics_urls;
  std::string cipher_suites;
  // Durations as etcd takes them ("5s", "2h").
  std::string grpc_keepalive_min_time, grpc_keepalive_interval, grpc_keepalive_timeout,
      max_connection_idle, idempotency_retention;
};

std::vector<std::string> SplitUrls(const std::string& s) {
  return absl::StrSplit(s, ',', absl::SkipWhitespace());
}

int RunStart(CLI::App* cmd, StartFlags& f) {
  server::ServerConfig c;
  if (!f.config_file.empty()) {
    absl::StatusOr<server::ServerConfig> loaded = server::LoadTomlConfig(f.config_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "bulwark start: %s\n", std::string(loaded.status().message()).c_str());
      return 2;
    }
    c = *loaded;
  }
  // Flags given on the command line win over the file.
  auto given = [&](const char* name) { return cmd->count(name) > 0; };
  if (given("--name")) c.name = f.c.name;
  if (given("--data-dir")) c.data_dir = f.c.data_dir;
  if (given("--listen-client-urls")) c.listen_client_urls = SplitUrls(f.listen_client_urls);
  if (given("--advertise-client-urls"))
    c.advertise_client_urls = SplitUrls(f.advertise_client_urls);
  if (given("--listen-peer-urls")) c.listen_peer_urls = SplitUrls(f.listen_peer_urls);
  if (given("--initial-advertise-peer-urls")) {
    c.initial_advertise_peer_urls = SplitUrls(f.initial_advertise_peer_urls);
  }
  if (given("--listen-metrics-urls")) c.listen_metrics_urls = SplitUrls(f.listen_metrics_urls);
  if (given("--initial-cluster")) c.initial_cluster = f.c.initial_cluster;
  if (given("--initial-cluster-state")) c.initial_cluster_state = f.c.initial_cluster_state;
  if (given("--initial-cluster-token")) c.initial_cluster_token = f.c.initial_cluster_token;
  if (given("--heartbeat-interval")) c.heartbeat_interval_ms = f.c.heartbeat_interval_ms;
  if (given("--election-timeout")) c.election_timeout_ms = f.c.election_timeout_ms;
  if (given("--snapshot-count")) c.snapshot_count = f.c.snapshot_count;
  if (given("--raft-log-cache-bytes")) c.raft_log_cache_bytes = f.c.raft_log_cache_bytes;
  if (given("--quota-backend-bytes")) c.quota_backend_bytes = f.c.quota_backend_bytes;
  if (given("--auto-compaction-mode")) c.auto_compaction_mode = f.c.auto_compaction_mode;
  if (given("--auto-compaction-retention")) {
    c.auto_compaction_retention = f.c.auto_compaction_retention;
  }
  if (given("--max-request-bytes")) c.max_request_bytes = f.c.max_request_bytes;
  if (given("--max-txn-ops")) c.max_txn_ops = f.c.max_txn_ops;
  if (given("--auth-token")) c.auth_token = f.c.auth_token;
  if (given("--auth-token-ttl")) c.auth_token_ttl_s = f.c.auth_token_ttl_s;
  if (given("--cert-file")) c.cert_file = f.c.cert_file;
  if (given("--key-file")) c.key_file = f.c.key_file;
  if (given("--trusted-ca-file")) c.trusted_ca_file = f.c.trusted_ca_file;
  if (given("--client-cert-auth")) c.client_cert_auth = f.c.client_cert_auth;
  if (given("--peer-cert-file")) c.peer_cert_file = f.c.peer_cert_file;
  if (given("--peer-key-file")) c.peer_key_file = f.c.peer_key_file;
  if (given("--peer-trusted-ca-file")) c.peer_trusted_ca_file = f.c.peer_trusted_ca_file;
  if (given("--peer-client-cert-auth")) c.peer_client_cert_auth = f.c.peer_client_cert_auth;
  if (given("--peer-cert-allowed-cn")) c.peer_cert_allowed_cn = f.c.peer_cert_allowed_cn;
  if (given("--cipher-suites")) c.cipher_suites = SplitUrls(f.cipher_suites);
  if (given("--max-watchers-per-stream")) c.max_watchers_per_stream = f.c.max_watchers_per_stream;
  if (given("--max-concurrent-streams")) c.max_concurrent_streams = f.c.max_concurrent_streams;
  struct Duration {
    const char* flag;
    const std::string& text;
    int64_t* ms;
  };
  for (const Duration& d :
       {Duration{"grpc-keepalive-min-time", f.grpc_keepalive_min_time,
                 &c.grpc_keepalive_min_time_ms},
        Duration{"grpc-keepalive-interval", f.grpc_keepalive_interval,
                 &c.grpc_keepalive_interval_ms},
        Duration{"grpc-keepalive-timeout", f.grpc_keepalive_timeout, &c.grpc_keepalive_timeout_ms},
        Duration{"max-connection-idle", f.max_connection_idle, &c.max_connection_idle_ms},
        Duration{"idempotency-retention", f.idempotency_retention, &c.idempotency_retention_ms}}) {
    if (!given(absl::StrCat("--", d.flag).c_str())) continue;
    absl::StatusOr<int64_t> ms = server::ParseDurationMs(d.flag, d.text);
    if (!ms.ok()) {
      std::fprintf(stderr, "bulwark start: %s\n", std::string(ms.status().message()).c_str());
      return 2;
    }
    *d.ms = *ms;
  }
  c.plant_bug_skip_dedup = f.c.plant_bug_skip_dedup;
  c.plant_bug_stale_reads = f.c.plant_bug_stale_reads;
  c.plant_bug_watch_gaps = f.c.plant_bug_watch_gaps;
  c.plant_bug_ack_before_fsync = f.c.plant_bug_ack_before_fsync;

  absl::StatusOr<server::ResolvedConfig> resolved = server::Resolve(std::move(c));
  if (!resolved.ok()) {
    std::fprintf(stderr, "bulwark start: %s\n", std::string(resolved.status().message()).c_str());
    return 2;
  }
  // SIGINT and SIGTERM are taken by sigwait below; every thread started
  // from here on inherits the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  server::BoundGrpcLogs();
  absl::StatusOr<std::unique_ptr<server::EtcdServer>> s = server::EtcdServer::Start(*resolved);
  if (!s.ok()) {
    std::fprintf(stderr, "bulwark start: %s\n", std::string(s.status().message()).c_str());
    return 1;
  }
  server::EtcdServer& srv = **s;
  // A storage failure halts the node; the process then exits non-zero so
  // a supervisor restarts it (recovery reads what is durable).
  srv.SetOnHalted([](absl::Status) { ::kill(::getpid(), SIGTERM); });
  std::fprintf(
      stderr,
      "bulwark: member %s (%016lx) of cluster %016lx: data %s, clients on %s, peers on %s\n",
      resolved->config.name.c_str(), static_cast<unsigned long>(srv.member_id()),
      static_cast<unsigned long>(srv.cluster_id()), resolved->data_dir.c_str(),
      absl::StrJoin(resolved->config.listen_client_urls, ",").c_str(),
      resolved->config.listen_peer_urls[0].c_str());
  int sig = 0;
  sigwait(&stop_signals, &sig);
  absl::Status halted = srv.halted();
  std::fprintf(stderr, "bulwark: %s; stopping\n",
               halted.ok() ? (sig == SIGINT ? "interrupted" : "terminated")
                           : std::string(halted.message()).c_str());
  s->reset();
  return halted.ok() ? 0 : 1;
}

}  // namespace

void AddStartCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<StartFlags>();
  server::ServerConfig defaults;
  CLI::App* cmd = app.add_subcommand(
      "start", "Run one member of a cluster (etcd's flags; no flags: a single local member)");
  cmd->add_option("--config-file", flags->config_file,
                  "TOML file whose keys are these flags' names; flags given too win");
  cmd->add_option("--name", flags->c.name, "Human-readable name of this member")
      ->default_str(defaults.name);
  cmd->add_option("--data-dir", flags->c.data_dir, "Data directory (default: <name>.bulwark)");
  cmd->add_option("--listen-client-urls", flags->listen_client_urls,
                  "URLs to serve clients on (comma-separated)")
      ->default_str(absl::StrJoin(defaults.listen_client_urls, ","));
  cmd->add_option("--advertise-client-urls", flags->advertise_client_urls,
                  "Client URLs to tell the cluster")
      ->default_str(absl::StrJoin(defaults.advertise_client_urls, ","));
  cmd->add_option("--listen-peer-urls", flags->listen_peer_urls, "URL to serve peers on")
      ->default_str(absl::StrJoin(defaults.listen_peer_urls, ","));
  cmd->add_option("--initial-advertise-peer-urls", flags->initial_advertise_peer_urls,
                  "Peer URLs to tell the cluster")
      ->default_str(absl::StrJoin(defaults.initial_advertise_peer_urls, ","));
  cmd->add_option("--initial-cluster", flags->c.initial_cluster,
                  "name=peer-url,... of the initial members (default: this member alone)");
  cmd->add_option("--initial-cluster-state", flags->c.initial_cluster_state, "new or existing")
      ->default_str(defaults.initial_cluster_state);
  cmd->add_option("--initial-cluster-token", flags->c.initial_cluster_token,
                  "Token that makes a cluster's ids unique")
      ->default_str(defaults.initial_cluster_token);
  cmd->add_option("--heartbeat-interval", flags->c.heartbeat_interval_ms,
                  "Time between heartbeats, ms")
      ->default_str(std::to_string(defaults.heartbeat_interval_ms));
  cmd->add_option("--election-timeout", flags->c.election_timeout_ms, "Election timeout, ms")
      ->default_str(std::to_string(defaults.election_timeout_ms));
  cmd->add_option("--snapshot-count", flags->c.snapshot_count, "Applied entries between snapshots")
      ->default_str(std::to_string(defaults.snapshot_count));
  cmd->add_option("--raft-log-cache-bytes", flags->c.raft_log_cache_bytes,
                  "Bytes of applied log entries kept in memory (older ones are read back from "
                  "the WAL for a follower that lags)")
      ->default_str(std::to_string(defaults.raft_log_cache_bytes));
  cmd->add_option("--quota-backend-bytes", flags->c.quota_backend_bytes,
                  "Data size above which writes are refused (NOSPACE)")
      ->default_str(std::to_string(defaults.quota_backend_bytes));
  cmd->add_option("--auto-compaction-mode", flags->c.auto_compaction_mode,
                  "periodic (keep --auto-compaction-retention of history) or revision (keep that "
                  "many revisions)")
      ->default_str(defaults.auto_compaction_mode);
  cmd->add_option("--auto-compaction-retention", flags->c.auto_compaction_retention,
                  "periodic: a duration (30m, 72h) or whole hours; revision: a count; 0: off")
      ->default_str(defaults.auto_compaction_retention);
  cmd->add_option("--idempotency-retention", flags->idempotency_retention,
                  "How long the answers to keyed writes and idempotency records are kept (log "
                  "time; counted in the quota, never evicted sooner)")
      ->default_str("24h");
  cmd->add_option("--max-request-bytes", flags->c.max_request_bytes,
                  "Largest client request, bytes")
      ->default_str(std::to_string(defaults.max_request_bytes));
  cmd->add_option("--max-txn-ops", flags->c.max_txn_ops, "Most operations in one txn")
      ->default_str(std::to_string(defaults.max_txn_ops));
  cmd->add_option("--auth-token", flags->c.auth_token, "Kind of authentication token (simple)")
      ->default_str(defaults.auth_token);
  cmd->add_option("--auth-token-ttl", flags->c.auth_token_ttl_s,
                  "Seconds an unused simple token stays valid")
      ->default_str(std::to_string(defaults.auth_token_ttl_s));
  cmd->add_option("--listen-metrics-urls", flags->listen_metrics_urls,
                  "URLs to serve /metrics and /health on");
  // TLS: etcd's flags (docs/security.md).
  const std::string tls = "TLS (https:// URLs)";
  cmd->add_option("--cert-file", flags->c.cert_file, "Certificate served on https client URLs")
      ->group(tls);
  cmd->add_option("--key-file", flags->c.key_file, "Key of --cert-file")->group(tls);
  cmd->add_option("--trusted-ca-file", flags->c.trusted_ca_file,
                  "CAs that sign client certificates (with --client-cert-auth)")
      ->group(tls);
  cmd->add_flag("--client-cert-auth", flags->c.client_cert_auth,
                "Clients must present a certificate signed by --trusted-ca-file")
      ->group(tls);
  cmd->add_option("--peer-cert-file", flags->c.peer_cert_file,
                  "Certificate for peer connections (https peer URLs)")
      ->group(tls);
  cmd->add_option("--peer-key-file", flags->c.peer_key_file, "Key of --peer-cert-file")->group(tls);
  cmd->add_option("--peer-trusted-ca-file", flags->c.peer_trusted_ca_file,
                  "CAs that sign peers' certificates")
      ->group(tls);
  cmd->add_flag("--peer-client-cert-auth", flags->c.peer_client_cert_auth,
                "Calling peers must present a certificate signed by --peer-trusted-ca-file")
      ->group(tls);
  cmd->add_option("--peer-cert-allowed-cn", flags->c.peer_cert_allowed_cn,
                  "Calling peers' certificates must have this common name")
      ->group(tls);
  cmd->add_option("--cipher-suites", flags->cipher_suites,
                  "TLS 1.2 cipher suites, Go's names, comma-separated (default: OpenSSL's)")
      ->group(tls);
  const std::string lim = "Limits";
  cmd->add_option("--max-watchers-per-stream", flags->c.max_watchers_per_stream,
                  "Most watchers on one watch stream")
      ->default_str(std::to_string(defaults.max_watchers_per_stream))
      ->group(lim);
  cmd->add_option("--max-concurrent-streams", flags->c.max_concurrent_streams,
                  "Most calls in flight on one client connection")
      ->default_str(std::to_string(defaults.max_concurrent_streams))
      ->group(lim);
  cmd->add_option("--grpc-keepalive-min-time", flags->grpc_keepalive_min_time,
                  "Shortest interval between a client's pings")
      ->default_str("5s")
      ->group(lim);
  cmd->add_option("--grpc-keepalive-interval", flags->grpc_keepalive_interval,
                  "Idle time after which the server pings a client")
      ->default_str("2h")
      ->group(lim);
  cmd->add_option("--grpc-keepalive-timeout", flags->grpc_keepalive_timeout,
                  "How long a ping's answer may take before the connection is closed")
      ->default_str("20s")
      ->group(lim);
  cmd->add_option("--max-connection-idle", flags->max_connection_idle,
                  "Close client connections without a call for this long (0: never)")
      ->default_str("0")
      ->group(lim);
  // Debug only: proves the exactly-once test catches a server without dedup.
  cmd->add_flag("--plant-bug-skip-dedup", flags->c.plant_bug_skip_dedup)->group("");
  // Debug only: proves the chaos harness's linearizability check catches
  // stale reads (a member answering linearizable reads from local state).
  cmd->add_flag("--plant-bug-stale-reads", flags->c.plant_bug_stale_reads)->group("");
  cmd->add_flag("--plant-bug-watch-gaps", flags->c.plant_bug_watch_gaps)->group("");
  cmd->add_flag("--plant-bug-ack-before-fsync", flags->c.plant_bug_ack_before_fsync)->group("");
  cmd->callback([cmd, flags, exit_code] { *exit_code = RunStart(cmd, *flags); });
}

}  // namespace bw::cli
