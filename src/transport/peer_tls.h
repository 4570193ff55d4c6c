// TLS for the peer transport (Asio's ssl streams over OpenSSL): the
// context built from etcd's --peer-* flags, rebuilt when a file changes,
// and the checks a connection's certificate must pass.
//
// Each new connection (dialled or accepted) asks for the current context;
// if the modification time or size of the certificate, key or CA file
// changed since the last build, the context is built again, so a renewed
// certificate is used from the next connection on. A build that fails (a
// file caught half-written) keeps the previous context and is retried at
// the next connection. Connections already open keep the context they
// started with.
//
// Thread-safety: none; a PeerTls belongs to one TcpNetwork, on its loop.
#pragma once

#include <asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace bw::transport {

struct PeerTlsOptions {
  std::string cert_file;
  std::string key_file;
  // Roots for the other side's certificate; empty: the system's.
  std::string trusted_ca_file;
  // Callers must present a certificate signed by trusted_ca_file.
  bool client_cert_auth = false;
  // Non-empty: a caller's certificate must have this common name.
  std::string allowed_cn;
  // OpenSSL cipher list for TLS 1.2; empty: OpenSSL's defaults.
  std::string ciphers;
};

class PeerTls {
 public:
  // Builds the first context; errors name the file that failed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PeerTls>> Load(PeerTlsOptions o);

  // The context for a new connection (rebuilt first if a file changed).
  std::shared_ptr<asio::ssl::context> Current();
  const PeerTlsOptions& options() const { return o_; }
  uint64_t reloads() const { return reloads_; }

  // After the handshake of an accepted connection: with client_cert_auth
  // and allowed_cn, the caller's certificate must carry that common name.
  // (OpenSSL has already checked its chain.) `ssl` is the stream's SSL*.
  [[nodiscard]] absl::Status CheckCaller(void* ssl) const;

 private:
  explicit PeerTls(PeerTlsOptions o) : o_(std::move(o)) {}
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> Build() const;
  // Modification times and sizes of the three files, as one string.
  std::string Stamp() const;

  PeerTlsOptions o_;
  std::shared_ptr<asio::ssl::context> ctx_;
  std::string stamp_;
  uint64_t reloads_ = 0;
};

}  // namespace bw::transport
