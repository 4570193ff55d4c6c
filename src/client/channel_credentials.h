// Channel credentials for calling members' client ports: plaintext, or TLS
// with a CA file (empty: the system's roots) and an optional client key
// pair for members started with --client-cert-auth (etcdctl's --cacert,
// --cert and --key). Used by the SDK, the CLI's bench and members calling
// each other.
//
// Thread-safety: a free function; it reads the files at each call, so a
// renewed certificate is used by channels made after it changed.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace bw::client {

struct TlsFiles {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Any file given asks for TLS.
  bool any() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

// TLS credentials when `tls`, plaintext otherwise. Errors name the file that
// cannot be read, or a certificate given without its key.
[[nodiscard]] absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const TlsFiles& files, bool tls);

}  // namespace bw::client
