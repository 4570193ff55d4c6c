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
#include "server/tls_files.h"
#include "transport/peer_tls.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace bw::server {

inline constexpr unsigned kCertRefreshSeconds = 5;

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
