// TLS for the client port (gRPC) and the checks behind etcd's TLS flags:
// key pairs and CA files checked at start, so a typo is an error naming the
// flag instead of a handshake that fails later; --cipher-suites from Go's
// names to OpenSSL's; credentials for https:// listeners and for a member
// calling another member's client port.
//
// The served certificates are re-read when their files change (gRPC's file
// watcher, every kCertRefreshSeconds), so a renewed certificate takes
// effect without a restart; a file caught half-written is skipped until it
// parses.
//
// Thread-safety: free functions; they read files and keep no state.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/config.h"
#include "transport/peer_tls.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace bw::server {

inline constexpr unsigned kCertRefreshSeconds = 5;

// The certificate in `cert_path` and the key in `key_path` (PEM) belong
// together, and the certificate is within its validity period. Errors name
// the flags.
[[nodiscard]] absl::Status CheckKeyPair(const std::string& cert_flag, const std::string& cert_path,
                                        const std::string& key_flag, const std::string& key_path);
// `path` holds at least one PEM certificate.
[[nodiscard]] absl::Status CheckCaFile(const std::string& flag, const std::string& path);

// etcd's --cipher-suites (Go names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
// as an OpenSSL cipher list ("" when none are given). Unknown and insecure
// (RC4, 3DES) names are errors. TLS 1.3's suites are accepted and change
// nothing: they are always on (as in Go).
[[nodiscard]] absl::StatusOr<std::string> OpenSslCipherList(const std::vector<std::string>& names);

// Makes gRPC use `openssl_ciphers` for TLS 1.2. gRPC reads its cipher list
// once per process, from the environment, when it first builds TLS
// credentials: call this before any. "" leaves gRPC's defaults.
void SetGrpcCipherList(const std::string& openssl_ciphers);

// Credentials for an https:// client listener: --cert-file/--key-file,
// reloaded on change; with --client-cert-auth a client certificate signed
// by --trusted-ca-file is required. TLS 1.2 at least (gRPC's floor).
std::shared_ptr<grpc::ServerCredentials> ClientServerCredentials(const ServerConfig& c);

// Credentials for a member calling another member's client URL `url`
// (forwarding a membership change to the leader): TLS for https://, with
// --trusted-ca-file as the roots (the system's if none) and
// --cert-file/--key-file as this member's client certificate.
std::shared_ptr<grpc::ChannelCredentials> MemberChannelCredentials(const ServerConfig& c,
                                                                   const Url& url);

// The peer transport's TLS settings from the --peer-* flags.
transport::PeerTlsOptions PeerTlsOptionsFor(const ResolvedConfig& r);
// One line on stderr: why a peer connection's TLS failed.
void LogPeerTlsError(const std::string& why);

}  // namespace bw::server
