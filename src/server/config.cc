#include "server/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <set>

#include <toml++/toml.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/splitmix.h"
#include "server/jwt.h"
#include "server/tls_files.h"

namespace bw::server {

namespace {

uint64_t HashString(std::string_view s, uint64_t h) {
  for (unsigned char c : s)
    h = (h ^ c) * 1099511628211ULL;
  return core::SplitMix64(h);
}

absl::Status ParseUrls(const std::string& flag, const std::vector<std::string>& texts,
                       std::vector<Url>* out) {
  if (texts.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is empty"));
  for (const std::string& t : texts) {
    absl::StatusOr<Url> u = ParseUrl(flag, t);
    if (!u.ok()) return u.status();
    out->push_back(*u);
  }
  return absl::OkStatus();
}

absl::Status ResolveTls(const ServerConfig& c, ResolvedConfig* r) {
  bool client_tls = false;
  for (const Url& u : r->client_listen)
    client_tls = client_tls || u.tls();
  if (client_tls && (c.cert_file.empty() || c.key_file.empty())) {
    return absl::InvalidArgumentError(
        "--listen-client-urls has an https:// URL: TLS needs --cert-file and --key-file");
  }
  if (c.client_cert_auth && c.trusted_ca_file.empty()) {
    return absl::InvalidArgumentError("--client-cert-auth needs --trusted-ca-file");
  }
  if (!c.cert_file.empty() || !c.key_file.empty()) {
    BW_RETURN_IF_ERROR(CheckKeyPair("cert-file", c.cert_file, "key-file", c.key_file));
  }
  if (!c.trusted_ca_file.empty()) {
    BW_RETURN_IF_ERROR(CheckCaFile("trusted-ca-file", c.trusted_ca_file));
  }
  if (r->peer_listen.tls() && (c.peer_cert_file.empty() || c.peer_key_file.empty())) {
    return absl::InvalidArgumentError(
        "--listen-peer-urls is https://: TLS needs --peer-cert-file and --peer-key-file");
  }
  if (!r->peer_listen.tls() && !c.peer_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "--peer-cert-file is given but --listen-peer-urls is http://; use https:// peer URLs");
  }
  if (c.peer_client_cert_auth && c.peer_trusted_ca_file.empty()) {
    return absl::InvalidArgumentError("--peer-client-cert-auth needs --peer-trusted-ca-file");
  }
  if (!c.peer_cert_allowed_cn.empty() && !c.peer_client_cert_auth) {
    return absl::InvalidArgumentError("--peer-cert-allowed-cn needs --peer-client-cert-auth");
  }
  if (!c.peer_cert_file.empty() || !c.peer_key_file.empty()) {
    BW_RETURN_IF_ERROR(
        CheckKeyPair("peer-cert-file", c.peer_cert_file, "peer-key-file", c.peer_key_file));
  }
  if (!c.peer_trusted_ca_file.empty()) {
    BW_RETURN_IF_ERROR(CheckCaFile("peer-trusted-ca-file", c.peer_trusted_ca_file));
  }
  absl::StatusOr<std::string> ciphers = OpenSslCipherList(c.cipher_suites);
  if (!ciphers.ok()) return ciphers.status();
  r->openssl_ciphers = *ciphers;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<member::AutoCompaction> ParseAutoCompaction(const std::string& mode,
                                                           const std::string& retention) {
  member::AutoCompaction out;
  int64_t whole = 0;
  const bool is_whole = absl::SimpleAtoi(retention, &whole) && whole >= 0;
  if (mode == "periodic") {
    out.mode = member::AutoCompaction::Mode::kPeriodic;
    if (is_whole) {
      out.retention = whole * member::AutoCompactor::kHourUs;  // etcd: a bare number is hours
      return out;
    }
    absl::StatusOr<int64_t> ms = ParseDurationMs("auto-compaction-retention", retention);
    if (!ms.ok() || *ms < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auto-compaction-retention: \"", retention,
                       "\" is neither a duration like 30m or 72h nor a whole number of hours"));
    }
    out.retention = *ms * 1'000;
  } else if (mode == "revision") {
    out.mode = member::AutoCompaction::Mode::kRevision;
    if (!is_whole) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auto-compaction-retention: \"", retention,
                       "\" is not a whole number of revisions (--auto-compaction-mode revision)"));
    }
    out.retention = whole;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--auto-compaction-mode: \"", mode, "\" is neither periodic nor revision"));
  }
  return out;
}

absl::StatusOr<int64_t> ParseDurationMs(const std::string& flag, const std::string& text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": \"", text, "\" is not a duration like 5s, 100ms, 2h or 1m30s"));
  };
  if (text.empty()) return bad();
  double total_ms = 0;
  size_t i = 0;
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(text, &ms)) return bad();
    return ms;
  }
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    double value = 0;
    if (i == start || !absl::SimpleAtod(absl::string_view(text).substr(start, i - start), &value))
      return bad();
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])))
      ++i;
    const std::string unit = text.substr(unit_start, i - unit_start);
    double scale = 0;
    if (unit == "h")
      scale = 3'600'000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "s")
      scale = 1'000;
    else if (unit == "ms")
      scale = 1;
    else if (unit == "us" || unit == "µs")
      scale = 0.001;
    else if (unit == "ns")
      scale = 0.000001;
    else
      return bad();
    total_ms += value * scale;
  }
  if (total_ms > 1e15) return bad();
  return static_cast<int64_t>(total_ms);
}

std::string Url::HostPort() const {
  // An IPv6 literal keeps its brackets.
  return absl::StrCat(host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host,
                      ":", port);
}

absl::StatusOr<Url> ParseUrl(const std::string& flag, const std::string& text) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": \"", text, "\" is not a URL like http://127.0.0.1:2379 (", why, ")"));
  };
  size_t sep = text.find("://");
  if (sep == std::string::npos) return bad("no scheme");
  Url u;
  u.scheme = text.substr(0, sep);
  if (u.scheme == "unix" || u.scheme == "unixs") {
    return bad("unix sockets are not supported; use http:// or https://");
  }
  if (u.scheme != "http" && u.scheme != "https") return bad("the scheme must be http or https");
  std::string rest = text.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) return bad("a path is not allowed");
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return bad("no port");
  u.host = rest.substr(0, colon);
  if (u.host.size() >= 2 && u.host.front() == '[' && u.host.back() == ']') {
    u.host = u.host.substr(1, u.host.size() - 2);
  }
  if (u.host.empty()) return bad("no host");
  std::string port = rest.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return bad("the port must be a number from 1 to 65535");
  }
  u.port = static_cast<uint16_t>(value);
  return u;
}

uint64_t MemberIdFor(const std::vector<std::string>& peer_urls, const std::string& token,
                     int incarnation) {
  std::vector<std::string> sorted = peer_urls;
  std::sort(sorted.begin(), sorted.end());
  uint64_t h = HashString(absl::StrJoin(sorted, ","), 1469598103934665603ULL);
  h = HashString(token, h);
  if (incarnation > 0) h = HashString(absl::StrCat("#", incarnation), h);
  return h == 0 ? 1 : h;
}

uint64_t ClusterIdFor(std::vector<uint64_t> member_ids) {
  std::sort(member_ids.begin(), member_ids.end());
  uint64_t h = 0x62756C7761726BULL;
  for (uint64_t id : member_ids)
    h = core::SplitMix64(h) ^ id;
  h = core::SplitMix64(h);
  return h == 0 ? 1 : h;
}

absl::StatusOr<ResolvedConfig> Resolve(ServerConfig c) {
  ResolvedConfig r;
  if (c.name.empty()) return absl::InvalidArgumentError("--name must not be empty");
  if (c.heartbeat_interval_ms <= 0) {
    return absl::InvalidArgumentError("--heartbeat-interval must be a positive number of ms");
  }
  if (c.election_timeout_ms < 5 * c.heartbeat_interval_ms) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--election-timeout[", c.election_timeout_ms,
        "ms] should be at least 5 times --heartbeat-interval[", c.heartbeat_interval_ms, "ms]"));
  }
  if (c.election_timeout_ms > 50'000) {
    return absl::InvalidArgumentError("--election-timeout is longer than 50000 ms");
  }
  if (c.quota_backend_bytes < 0) {
    return absl::InvalidArgumentError("--quota-backend-bytes must not be negative");
  }
  if (c.max_request_bytes == 0 || c.max_request_bytes > (uint64_t{64} << 20)) {
    return absl::InvalidArgumentError("--max-request-bytes must be from 1 to 67108864");
  }
  if (c.max_txn_ops == 0) return absl::InvalidArgumentError("--max-txn-ops must be positive");
  if (c.auth_token != "simple") {
    if (!absl::StartsWith(c.auth_token, "jwt")) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth-token: \"", c.auth_token,
                       "\" is not a token kind bulwark has (simple, or jwt,pub-key=...)"));
    }
    BW_RETURN_IF_ERROR(ParseJwtOptions(c.auth_token).status());
  }
  BW_RETURN_IF_ERROR(
      ParseAutoCompaction(c.auto_compaction_mode, c.auto_compaction_retention).status());
  if (c.idempotency_retention_ms < 1'000 ||
      c.idempotency_retention_ms > int64_t{30} * 24 * 3'600'000) {
    return absl::InvalidArgumentError("--idempotency-retention must be from 1s to 720h (30 days)");
  }
  if (c.auth_token_ttl_s <= 0) {
    return absl::InvalidArgumentError("--auth-token-ttl must be a positive number of seconds");
  }
  if (c.max_watchers_per_stream == 0) {
    return absl::InvalidArgumentError("--max-watchers-per-stream must be positive");
  }
  if (c.max_concurrent_streams == 0) {
    return absl::InvalidArgumentError("--max-concurrent-streams must be positive");
  }
  if (c.grpc_keepalive_interval_ms <= 0 || c.grpc_keepalive_timeout_ms <= 0 ||
      c.grpc_keepalive_min_time_ms < 0 || c.max_connection_idle_ms < 0) {
    return absl::InvalidArgumentError(
        "--grpc-keepalive-interval and --grpc-keepalive-timeout must be positive, "
        "--grpc-keepalive-min-time and --max-connection-idle not negative");
  }
#ifndef BW_PLANTED_BUGS
  if (c.plant_bug_skip_dedup || c.plant_bug_stale_reads || c.plant_bug_watch_gaps ||
      c.plant_bug_ack_before_fsync) {
    return absl::InvalidArgumentError("--plant-bug-*: planted bugs are not in this build");
  }
#endif
  if (c.initial_cluster_state != "new" && c.initial_cluster_state != "existing") {
    return absl::InvalidArgumentError(absl::StrCat("--initial-cluster-state: \"",
                                                   c.initial_cluster_state,
                                                   "\" is neither \"new\" nor \"existing\""));
  }
  r.new_cluster = c.initial_cluster_state == "new";
  BW_RETURN_IF_ERROR(ParseUrls("listen-client-urls", c.listen_client_urls, &r.client_listen));
  std::vector<Url> ignored;
  BW_RETURN_IF_ERROR(ParseUrls("advertise-client-urls", c.advertise_client_urls, &ignored));
  std::vector<Url> peer_listen;
  BW_RETURN_IF_ERROR(ParseUrls("listen-peer-urls", c.listen_peer_urls, &peer_listen));
  if (peer_listen.size() != 1) {
    return absl::InvalidArgumentError("--listen-peer-urls: give exactly one URL");
  }
  r.peer_listen = peer_listen[0];
  BW_RETURN_IF_ERROR(
      ParseUrls("initial-advertise-peer-urls", c.initial_advertise_peer_urls, &ignored));
  for (const std::string& m : c.listen_metrics_urls) {
    absl::StatusOr<Url> u = ParseUrl("listen-metrics-urls", m);
    if (!u.ok()) return u.status();
    r.metrics_listen.push_back(*u);
  }
  BW_RETURN_IF_ERROR(ResolveTls(c, &r));
  std::string cluster = c.initial_cluster;
  if (cluster.empty()) cluster = absl::StrCat(c.name, "=", c.initial_advertise_peer_urls[0]);
  // name=url pairs; a name given twice has several peer URLs (etcd).
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> urls;
  for (absl::string_view part : absl::StrSplit(cluster, ',', absl::SkipWhitespace())) {
    std::vector<std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--initial-cluster: \"", std::string(part),
                                                     "\" is not name=http://host:port"));
    }
    absl::StatusOr<Url> peer = ParseUrl("initial-cluster", kv[1]);
    if (!peer.ok()) return peer.status();
    // The peer transport is TLS or not as a whole (one listener).
    if (peer->tls() != r.peer_listen.tls()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--initial-cluster: \"", kv[1], "\" is ", peer->scheme, " but --listen-peer-urls is ",
          r.peer_listen.scheme, "; peers are all TLS (https) or none"));
    }
    if (!urls.count(kv[0])) order.push_back(kv[0]);
    urls[kv[0]].push_back(kv[1]);
  }
  if (!urls.count(c.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--initial-cluster has no member named \"", c.name, "\" (--name)"));
  }
  std::vector<std::string> own = urls[c.name];
  std::vector<std::string> advertised = c.initial_advertise_peer_urls;
  std::sort(own.begin(), own.end());
  std::sort(advertised.begin(), advertised.end());
  if (own != advertised) {
    return absl::InvalidArgumentError(
        absl::StrCat("--initial-cluster has ", c.name, "=", absl::StrJoin(own, ","),
                     " but --initial-advertise-peer-urls is ", absl::StrJoin(advertised, ",")));
  }
  std::set<uint64_t> ids;
  std::vector<uint64_t> id_list;
  for (const std::string& name : order) {
    Member m;
    m.name = name;
    m.peer_urls = urls[name];
    m.id = MemberIdFor(m.peer_urls, c.initial_cluster_token);
    if (!ids.insert(m.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--initial-cluster: members share the peer URLs of \"", name, "\""));
    }
    if (name == c.name) {
      r.member_id = m.id;
      m.client_urls = c.advertise_client_urls;
    }
    id_list.push_back(m.id);
    r.members.push_back(std::move(m));
  }
  r.cluster_id = ClusterIdFor(id_list);
  r.data_dir = c.data_dir.empty() ? absl::StrCat(c.name, ".bulwark") : c.data_dir;
  r.config = std::move(c);
  return r;
}

namespace {

absl::Status TomlError(const std::string& path, const toml::parse_error& e) {
  return absl::InvalidArgumentError(absl::StrCat(path, ":", e.source().begin.line, ":",
                                                 e.source().begin.column, ": ",
                                                 std::string(e.description())));
}

absl::StatusOr<ServerConfig> ConfigFromToml(const toml::table& t, const std::string& path) {
  ServerConfig c;
  // Not a structured binding: clang 14 (the fuzz build) cannot capture one
  // in the lambdas below.
  for (const auto& entry : t) {
    const std::string k(entry.first.str());
    const toml::node& node = entry.second;
    auto where = [&] { return absl::StrCat(path, ":", node.source().begin.line, ": \"", k, "\""); };
    auto str = [&](std::string* out) -> absl::Status {
      if (!node.is_string())
        return absl::InvalidArgumentError(absl::StrCat(where(), " must be a string"));
      *out = node.as_string()->get();
      return absl::OkStatus();
    };
    auto urls = [&](std::vector<std::string>* out) -> absl::Status {
      // A string of comma-separated URLs (as the flag) or an array of them.
      out->clear();
      if (node.is_string()) {
        for (absl::string_view u :
             absl::StrSplit(node.as_string()->get(), ',', absl::SkipWhitespace())) {
          out->emplace_back(u);
        }
        return absl::OkStatus();
      }
      if (const toml::array* a = node.as_array()) {
        for (const toml::node& e : *a) {
          if (!e.is_string())
            return absl::InvalidArgumentError(absl::StrCat(where(), " must hold strings"));
          out->push_back(e.as_string()->get());
        }
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(
          absl::StrCat(where(), " must be a string or an array of strings"));
    };
    auto num = [&](auto* out) -> absl::Status {
      using T = std::remove_pointer_t<decltype(out)>;
      if (!node.is_integer() || node.as_integer()->get() < 0) {
        return absl::InvalidArgumentError(absl::StrCat(where(), " must be a non-negative integer"));
      }
      const uint64_t v = static_cast<uint64_t>(node.as_integer()->get());
      // Never cut down to the field's width: 4294967424128 is not 128.
      if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(), " is too large (at most ", std::numeric_limits<T>::max(), ")"));
      }
      *out = static_cast<T>(v);
      return absl::OkStatus();
    };
    auto boolean = [&](bool* out) -> absl::Status {
      if (!node.is_boolean())
        return absl::InvalidArgumentError(absl::StrCat(where(), " must be true or false"));
      *out = node.as_boolean()->get();
      return absl::OkStatus();
    };
    // "5s" as the flag takes it, or an integer of milliseconds.
    auto duration = [&](int64_t* out) -> absl::Status {
      if (node.is_integer()) return num(out);
      if (!node.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(), " must be a duration like \"5s\" or a number of ms"));
      }
      absl::StatusOr<int64_t> ms = ParseDurationMs(k, node.as_string()->get());
      if (!ms.ok())
        return absl::InvalidArgumentError(absl::StrCat(where(), ": ", ms.status().message()));
      *out = *ms;
      return absl::OkStatus();
    };
    absl::Status s;
    if (k == "name")
      s = str(&c.name);
    else if (k == "data-dir")
      s = str(&c.data_dir);
    else if (k == "listen-client-urls")
      s = urls(&c.listen_client_urls);
    else if (k == "advertise-client-urls")
      s = urls(&c.advertise_client_urls);
    else if (k == "listen-peer-urls")
      s = urls(&c.listen_peer_urls);
    else if (k == "initial-advertise-peer-urls")
      s = urls(&c.initial_advertise_peer_urls);
    else if (k == "listen-metrics-urls")
      s = urls(&c.listen_metrics_urls);
    else if (k == "initial-cluster")
      s = str(&c.initial_cluster);
    else if (k == "initial-cluster-state")
      s = str(&c.initial_cluster_state);
    else if (k == "initial-cluster-token")
      s = str(&c.initial_cluster_token);
    else if (k == "heartbeat-interval")
      s = num(&c.heartbeat_interval_ms);
    else if (k == "election-timeout")
      s = num(&c.election_timeout_ms);
    else if (k == "snapshot-count")
      s = num(&c.snapshot_count);
    else if (k == "raft-log-cache-bytes")
      s = num(&c.raft_log_cache_bytes);
    else if (k == "quota-backend-bytes")
      s = num(&c.quota_backend_bytes);
    else if (k == "max-request-bytes")
      s = num(&c.max_request_bytes);
    else if (k == "max-txn-ops")
      s = num(&c.max_txn_ops);
    else if (k == "auth-token")
      s = str(&c.auth_token);
    else if (k == "auth-token-ttl")
      s = num(&c.auth_token_ttl_s);
    else if (k == "cert-file")
      s = str(&c.cert_file);
    else if (k == "key-file")
      s = str(&c.key_file);
    else if (k == "trusted-ca-file")
      s = str(&c.trusted_ca_file);
    else if (k == "client-cert-auth")
      s = boolean(&c.client_cert_auth);
    else if (k == "peer-cert-file")
      s = str(&c.peer_cert_file);
    else if (k == "peer-key-file")
      s = str(&c.peer_key_file);
    else if (k == "peer-trusted-ca-file")
      s = str(&c.peer_trusted_ca_file);
    else if (k == "peer-client-cert-auth")
      s = boolean(&c.peer_client_cert_auth);
    else if (k == "peer-cert-allowed-cn")
      s = str(&c.peer_cert_allowed_cn);
    else if (k == "cipher-suites")
      s = urls(&c.cipher_suites);
    else if (k == "max-watchers-per-stream")
      s = num(&c.max_watchers_per_stream);
    else if (k == "max-concurrent-streams")
      s = num(&c.max_concurrent_streams);
    else if (k == "grpc-keepalive-min-time")
      s = duration(&c.grpc_keepalive_min_time_ms);
    else if (k == "grpc-keepalive-interval")
      s = duration(&c.grpc_keepalive_interval_ms);
    else if (k == "grpc-keepalive-timeout")
      s = duration(&c.grpc_keepalive_timeout_ms);
    else if (k == "max-connection-idle")
      s = duration(&c.max_connection_idle_ms);
    else if (k == "auto-compaction-mode")
      s = str(&c.auto_compaction_mode);
    else if (k == "auto-compaction-retention")
      s = str(&c.auto_compaction_retention);
    else if (k == "idempotency-retention")
      s = duration(&c.idempotency_retention_ms);
    else
      s = absl::InvalidArgumentError(absl::StrCat(where(), " is not a setting bulwark knows"));
    if (!s.ok()) return s;
  }
  return c;
}

}  // namespace

absl::StatusOr<ServerConfig> LoadTomlConfig(const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return TomlError(path, e);
  }
  return ConfigFromToml(t, path);
}

absl::StatusOr<ServerConfig> ParseTomlConfig(std::string_view text, const std::string& path) {
  toml::table t;
  try {
    t = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    return TomlError(path, e);
  }
  return ConfigFromToml(t, path);
}

}  // namespace bw::server
