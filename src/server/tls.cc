#include "server/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/channel_credentials.h"

namespace bw::server {

void SetGrpcCipherList(const std::string& openssl_ciphers) {
  if (!openssl_ciphers.empty()) ::setenv("GRPC_SSL_CIPHER_SUITES", openssl_ciphers.c_str(), 1);
}

std::shared_ptr<grpc::ServerCredentials> ClientServerCredentials(const ServerConfig& c) {
  // The roots are watched only when client certificates are checked: a
  // server that asks for none has no use for them.
  const std::string roots = c.client_cert_auth ? c.trusted_ca_file : "";
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      c.key_file, c.cert_file, roots, kCertRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions o(provider);
  o.watch_identity_key_cert_pairs();
  if (c.client_cert_auth) {
    o.watch_root_certs();
    o.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    o.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(o);
}

std::shared_ptr<grpc::ChannelCredentials> MemberChannelCredentials(const ServerConfig& c,
                                                                   const Url& url) {
  client::TlsFiles files{c.trusted_ca_file, c.cert_file, c.key_file};
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
      client::ChannelCredentialsFor(files, url.tls());
  // The files were checked at start; one unreadable now (being replaced)
  // fails this call's handshake, and the caller retries.
  if (!creds.ok()) return grpc::SslCredentials(grpc::SslCredentialsOptions());
  return *creds;
}

transport::PeerTlsOptions PeerTlsOptionsFor(const ResolvedConfig& r) {
  const ServerConfig& c = r.config;
  transport::PeerTlsOptions o;
  o.cert_file = c.peer_cert_file;
  o.key_file = c.peer_key_file;
  o.trusted_ca_file = c.peer_trusted_ca_file;
  o.client_cert_auth = c.peer_client_cert_auth;
  o.allowed_cn = c.peer_cert_allowed_cn;
  o.ciphers = r.openssl_ciphers;
  return o;
}

void LogPeerTlsError(const std::string& why) {
  std::fprintf(stderr, "bulwark: peer TLS: %s\n", why.c_str());
}

}  // namespace bw::server
