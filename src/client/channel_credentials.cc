#include "client/channel_credentials.h"

#include <grpcpp/security/credentials.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace bw::client {

namespace {

absl::StatusOr<std::string> ReadWhole(const char* what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": cannot read"));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const TlsFiles& files, bool tls) {
  if (!tls) return grpc::InsecureChannelCredentials();
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError("a client certificate and its key go together; give both");
  }
  grpc::SslCredentialsOptions o;
  if (!files.ca_file.empty()) {
    absl::StatusOr<std::string> roots = ReadWhole("CA file", files.ca_file);
    if (!roots.ok()) return roots.status();
    o.pem_root_certs = *roots;
  }
  if (!files.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadWhole("certificate", files.cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadWhole("key", files.key_file);
    if (!key.ok()) return key.status();
    o.pem_cert_chain = *cert;
    o.pem_private_key = *key;
  }
  return grpc::SslCredentials(o);
}

}  // namespace bw::client
