// The security flags' parsing, pure: etcd's duration syntax, Go's cipher
// suite names mapped to OpenSSL's (unknown and insecure ones refused),
// https URLs, and the TLS settings Resolve refuses before anything starts.
#include "server/config.h"

#include <gtest/gtest.h>

#include "server/tls.h"

namespace bw::server {
namespace {

TEST(ConfigTest, DurationsTakeGoSyntaxOrMilliseconds) {
  EXPECT_EQ(*ParseDurationMs("f", "5s"), 5000);
  EXPECT_EQ(*ParseDurationMs("f", "100ms"), 100);
  EXPECT_EQ(*ParseDurationMs("f", "2h"), 7'200'000);
  EXPECT_EQ(*ParseDurationMs("f", "2h0m0s"), 7'200'000);
  EXPECT_EQ(*ParseDurationMs("f", "1m30s"), 90'000);
  EXPECT_EQ(*ParseDurationMs("f", "1.5s"), 1500);
  EXPECT_EQ(*ParseDurationMs("f", "250"), 250);
  for (const char* bad : {"", "s", "5x", "5 s", "-5s", "1e3s", "5s5"}) {
    absl::StatusOr<int64_t> d = ParseDurationMs("grpc-keepalive-min-time", bad);
    EXPECT_FALSE(d.ok()) << bad;
    if (!d.ok()) {
      EXPECT_NE(d.status().message().find("--grpc-keepalive-min-time"), std::string::npos);
    }
  }
}

// etcd 3.4's --auto-compaction-mode and --auto-compaction-retention.
TEST(ConfigTest, AutoCompactionTakesEtcdsFlags) {
  using Mode = member::AutoCompaction::Mode;
  auto parse = [](const char* mode, const char* retention) {
    return ParseAutoCompaction(mode, retention);
  };
  EXPECT_FALSE(parse("periodic", "0")->enabled());
  EXPECT_EQ(parse("periodic", "1")->retention, member::AutoCompactor::kHourUs);  // whole hours
  EXPECT_EQ(parse("periodic", "30m")->retention, 30 * 60 * 1'000'000LL);
  EXPECT_EQ(parse("periodic", "72h")->mode, Mode::kPeriodic);
  EXPECT_EQ(parse("revision", "1000")->retention, 1000);
  EXPECT_EQ(parse("revision", "1000")->mode, Mode::kRevision);
  EXPECT_EQ(parse("periodic", "soon").status().message(),
            "--auto-compaction-retention: \"soon\" is neither a duration like 30m or 72h nor a "
            "whole number of hours");
  EXPECT_EQ(parse("revision", "1h").status().message(),
            "--auto-compaction-retention: \"1h\" is not a whole number of revisions "
            "(--auto-compaction-mode revision)");
  EXPECT_EQ(parse("weekly", "1").status().message(),
            "--auto-compaction-mode: \"weekly\" is neither periodic nor revision");
}

TEST(ConfigTest, AnIntegerTooLargeForItsSettingIsRefusedNotCutDown) {
  // The config fuzzer's find: 4294967424128 was read as 128 (the low 32
  // bits) for a 32-bit setting.
  absl::StatusOr<ServerConfig> c = ParseTomlConfig("max-txn-ops = 4294967424128\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("max-txn-ops"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("too large (at most 4294967295)"), std::string::npos)
      << c.status();
  c = ParseTomlConfig("max-txn-ops = 4294967295\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_txn_ops, 4294967295u);
}

TEST(ConfigTest, CipherSuitesMapGoNamesToOpenSsl) {
  EXPECT_EQ(*OpenSslCipherList({}), "");
  EXPECT_EQ(*OpenSslCipherList({"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"}),
            "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
  // TLS 1.3's are accepted and add nothing: they are always on.
  EXPECT_EQ(*OpenSslCipherList({"TLS_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256"}),
            "AES128-GCM-SHA256");
  for (const char* bad : {"TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
                          "ECDHE-RSA-AES128-GCM-SHA256", "nonsense"}) {
    absl::StatusOr<std::string> l = OpenSslCipherList({bad});
    ASSERT_FALSE(l.ok()) << bad;
    EXPECT_NE(l.status().message().find(bad), std::string::npos);
  }
}

TEST(ConfigTest, HttpsUrlsMeanTls) {
  absl::StatusOr<Url> u = ParseUrl("listen-client-urls", "https://127.0.0.1:2379");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls());
  EXPECT_FALSE(ParseUrl("listen-client-urls", "http://127.0.0.1:2379")->tls());
  absl::Status unix_url = ParseUrl("listen-client-urls", "unixs://x:1").status();
  EXPECT_TRUE(absl::IsInvalidArgument(unix_url)) << unix_url;
  EXPECT_NE(unix_url.message().find("unix sockets are not supported"), std::string::npos);
  EXPECT_FALSE(ParseUrl("listen-client-urls", "ftp://x:1").ok());
}

TEST(ConfigTest, ResolveRefusesTlsSettingsThatCannotWork) {
  auto refused = [](ServerConfig c, const std::string& want) {
    absl::StatusOr<ResolvedConfig> r = Resolve(std::move(c));
    ASSERT_FALSE(r.ok()) << want;
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status();
  };
  ServerConfig c;
  c.listen_client_urls = {"https://127.0.0.1:2379"};
  refused(c, "TLS needs --cert-file and --key-file");
  c = ServerConfig();
  c.listen_peer_urls = c.initial_advertise_peer_urls = {"https://127.0.0.1:2380"};
  refused(c, "TLS needs --peer-cert-file");
  c = ServerConfig();
  c.client_cert_auth = true;
  refused(c, "--client-cert-auth needs --trusted-ca-file");
  c = ServerConfig();
  c.peer_client_cert_auth = true;
  refused(c, "--peer-client-cert-auth needs --peer-trusted-ca-file");
  c = ServerConfig();
  c.cert_file = "/nonexistent/cert.pem";
  c.key_file = "/nonexistent/key.pem";
  refused(c, "--cert-file /nonexistent/cert.pem: cannot read");
  c = ServerConfig();
  c.cipher_suites = {"TLS_RSA_WITH_RC4_128_SHA"};
  refused(c, "--cipher-suites");
  c = ServerConfig();
  c.max_watchers_per_stream = 0;
  refused(c, "--max-watchers-per-stream");
}

}  // namespace
}  // namespace bw::server
