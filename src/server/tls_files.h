// Checks behind etcd's TLS flags that need only OpenSSL (see tls.h for the
// credentials built from them).
//
// Thread-safety: free functions; they read files and keep no state.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace bw::server {

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

}  // namespace bw::server
