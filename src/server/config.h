// A member's configuration, named and defaulted as etcd 3.4 names and
// defaults it, so an etcd command line works unchanged: --name,
// --data-dir, --listen-client-urls, --initial-cluster and the rest. Loaded
// from flags (cli/start_command.cc) or a TOML file (LoadTomlConfig), then
// Resolve()d into the cluster's members and this member's identity.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "member/auto_compactor.h"

namespace bw::server {

struct Url {
  std::string scheme;  // "http", or "https": TLS (docs/security.md)
  std::string host;
  uint16_t port = 0;
  // host:port, as gRPC takes it.
  std::string HostPort() const;
  // The host as an IP address for the peer transport and HTTP listeners,
  // which take addresses only: "localhost" is 127.0.0.1.
  std::string IpHost() const { return host == "localhost" ? "127.0.0.1" : host; }
  bool tls() const { return scheme == "https"; }
};

// "http://host:port" or "https://host:port", with etcd's rules: a scheme,
// a host and a port.
[[nodiscard]] absl::StatusOr<Url> ParseUrl(const std::string& flag, const std::string& text);

struct ServerConfig {
  std::string name = "default";
  // Empty: "<name>.bulwark" in the working directory (etcd: "<name>.etcd").
  std::string data_dir;
  std::vector<std::string> listen_client_urls = {"http://localhost:2379"};
  std::vector<std::string> advertise_client_urls = {"http://localhost:2379"};
  std::vector<std::string> listen_peer_urls = {"http://localhost:2380"};
  std::vector<std::string> initial_advertise_peer_urls = {"http://localhost:2380"};
  // name=peer-url,... ; empty: "<name>=<first initial advertise peer url>".
  std::string initial_cluster;
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "etcd-cluster";
  int64_t heartbeat_interval_ms = 100;
  int64_t election_timeout_ms = 1000;
  uint64_t snapshot_count = 100'000;
  // Bytes of applied, durable Raft log entries kept in memory; older ones
  // (for a follower that lags) are read back from the WAL. bulwark's own.
  uint64_t raft_log_cache_bytes = 64 << 20;
  int64_t quota_backend_bytes = int64_t{2} << 30;
  uint64_t max_request_bytes = 1536 * 1024;
  uint32_t max_txn_ops = 128;
  // Authentication tokens: "simple" (etcd's default) or
  // "jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256,ttl=5m".
  std::string auth_token = "simple";
  // A simple token unused this long ends (etcd's --auth-token-ttl).
  int64_t auth_token_ttl_s = 300;
  // How long the answers to keyed writes and idempotency records are kept
  // (log time): a retry within it gets the first answer. 1 s to 30 days.
  int64_t idempotency_retention_ms = int64_t{24} * 3'600'000;
  // etcd's automatic compaction (ParseAutoCompaction); off by default.
  std::string auto_compaction_mode = "periodic";
  std::string auto_compaction_retention = "0";
  std::vector<std::string> listen_metrics_urls;

  // --- TLS (etcd's flags and meanings; docs/security.md) ---
  // The key pair served on https:// client URLs; with client_cert_auth,
  // clients must present a certificate signed by a CA in trusted_ca_file.
  std::string cert_file;
  std::string key_file;
  std::string trusted_ca_file;
  bool client_cert_auth = false;
  // The same for peers, when the peer URLs are https://. The dialling
  // member checks that the certificate names the host it dialled.
  std::string peer_cert_file;
  std::string peer_key_file;
  std::string peer_trusted_ca_file;
  bool peer_client_cert_auth = false;
  // Non-empty: a calling peer's certificate must have this common name.
  std::string peer_cert_allowed_cn;
  // Go's cipher-suite names (TLS 1.2; TLS 1.3's are always on, as in Go).
  // Empty: OpenSSL's defaults.
  std::vector<std::string> cipher_suites;

  // --- Limits against abuse (docs/security.md) ---
  // Watchers one watch stream may hold; a create past it is refused.
  uint32_t max_watchers_per_stream = 10'000;
  // HTTP/2 streams (calls) in flight on one client connection; a client
  // past it waits for a slot (etcd 3.5: --max-concurrent-streams).
  uint32_t max_concurrent_streams = 1'000;
  // A client pinging more often than this (without data) is sent GOAWAY.
  int64_t grpc_keepalive_min_time_ms = 5'000;
  // The server pings a connection idle this long, and drops it when the
  // answer takes longer than the timeout.
  int64_t grpc_keepalive_interval_ms = 2 * 3'600'000;
  int64_t grpc_keepalive_timeout_ms = 20'000;
  // A client connection with no call for this long is closed (GOAWAY;
  // gRPC clients reconnect when they next call). 0: never.
  int64_t max_connection_idle_ms = 0;

  // Planted bugs, BW_PLANTED_BUGS builds only: the exactly-once test's
  // (ignore idempotency keys) and the chaos harness's (serve linearizable
  // reads from local state, without ReadIndex).
  bool plant_bug_skip_dedup = false;
  bool plant_bug_stale_reads = false;
  // The log claims appends are synced before it has written them (they
  // reach the file at the next heartbeat tick).
  bool plant_bug_ack_before_fsync = false;
  // ... and its watch checker's (drop every 500th watch event).
  bool plant_bug_watch_gaps = false;
};

struct Member {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;  // known for this member only, at first
};

// A configuration checked and worked out: ids, addresses, the data dir.
struct ResolvedConfig {
  ServerConfig config;
  // --cipher-suites as OpenSSL names ("" for OpenSSL's defaults).
  std::string openssl_ciphers;
  std::string data_dir;
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  std::vector<Member> members;  // the initial cluster, in flag order
  std::vector<Url> client_listen;
  Url peer_listen;
  std::vector<Url> metrics_listen;
  bool new_cluster = true;
};

// Checks every setting; errors name the flag and say what is wrong.
[[nodiscard]] absl::StatusOr<ResolvedConfig> Resolve(ServerConfig config);

// A member's id, from its peer URLs and the cluster token (stable across
// restarts, different for a member of another cluster), and the cluster's
// id from its members' ids. Never 0.
// A member added again at the same peer URLs after it was removed gets a
// new id, never one used before: the id of its `incarnation` (0 for the
// first; the leader picks the first unused one, and a joining member
// accepts any of the first kMaxIncarnations as its own).
inline constexpr int kMaxIncarnations = 64;
uint64_t MemberIdFor(const std::vector<std::string>& peer_urls, const std::string& token,
                     int incarnation = 0);
uint64_t ClusterIdFor(std::vector<uint64_t> member_ids);

// A duration as etcd's flags take them (Go's syntax: "5s", "2h0m0s",
// "100ms", "1.5s"), in milliseconds. A bare number is milliseconds.
[[nodiscard]] absl::StatusOr<int64_t> ParseDurationMs(const std::string& flag,
                                                      const std::string& text);

// etcd's --auto-compaction-mode and --auto-compaction-retention. Periodic
// retention: a duration ("30m", "72h") or a whole number of hours ("1");
// revision retention: a whole number of revisions; "0": off.
// INVALID_ARGUMENT naming the flag otherwise.
[[nodiscard]] absl::StatusOr<member::AutoCompaction> ParseAutoCompaction(
    const std::string& mode, const std::string& retention);

// Reads a TOML config file whose keys are the flags' names without the
// dashes ("name", "data-dir", "initial-cluster", ...). Unknown keys and
// wrong types are errors naming the key and the line.
[[nodiscard]] absl::StatusOr<ServerConfig> LoadTomlConfig(const std::string& path);
// The same for a file's contents; `path` names it in error messages.
[[nodiscard]] absl::StatusOr<ServerConfig> ParseTomlConfig(std::string_view text,
                                                           const std::string& path);

}  // namespace bw::server
