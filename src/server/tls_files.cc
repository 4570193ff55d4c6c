// The start-time checks behind etcd's TLS flags, with OpenSSL alone (no
// gRPC), so the configuration code and its fuzz target need no gRPC: key
// pairs and CA files read and checked, --cipher-suites translated.
#include "server/tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bw::server {

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// OpenSSL's last error as text, and the queue cleared (a stale entry would
// otherwise show up in an unrelated handshake's error).
std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no detail";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

absl::StatusOr<BioPtr> Open(const std::string& flag, const std::string& path) {
  errno = 0;
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    int err = errno;
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", path, ": cannot read (",
                                                   err != 0 ? std::strerror(err) : "no detail",
                                                   ")"));
  }
  return bio;
}

std::string TimeText(const ASN1_TIME* t) {
  BioPtr mem(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(mem.get(), t);
  char* data = nullptr;
  long n = BIO_get_mem_data(mem.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// Go's name -> OpenSSL's, for the TLS 1.2 suites Go offers as secure (and
// the CBC-SHA256 ones it lists as insecure but etcd still takes).
constexpr std::pair<const char*, const char*> kSuites[] = {
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
};
constexpr const char* kTls13Suites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                        "TLS_CHACHA20_POLY1305_SHA256"};

}  // namespace

absl::Status CheckKeyPair(const std::string& cert_flag, const std::string& cert_path,
                          const std::string& key_flag, const std::string& key_path) {
  if (cert_path.empty() || key_path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", cert_flag, " and --", key_flag, " go together; give both"));
  }
  absl::StatusOr<BioPtr> cert_bio = Open(cert_flag, cert_path);
  if (!cert_bio.ok()) return cert_bio.status();
  X509Ptr cert(PEM_read_bio_X509(cert_bio->get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", cert_flag, " ", cert_path, ": not a PEM certificate (", OpenSslError(), ")"));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--", cert_flag, " ", cert_path,
                                                   ": the certificate expired on ",
                                                   TimeText(X509_get0_notAfter(cert.get()))));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) > 0) {
    return absl::InvalidArgumentError(absl::StrCat("--", cert_flag, " ", cert_path,
                                                   ": the certificate is not valid before ",
                                                   TimeText(X509_get0_notBefore(cert.get()))));
  }
  absl::StatusOr<BioPtr> key_bio = Open(key_flag, key_path);
  if (!key_bio.ok()) return key_bio.status();
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio->get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--", key_flag, " ", key_path,
                                                   ": not a PEM private key without a passphrase (",
                                                   OpenSslError(), ")"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("--", key_flag, " ", key_path,
                                                   " is not the key of the certificate in --",
                                                   cert_flag, " ", cert_path));
  }
  return absl::OkStatus();
}

absl::Status CheckCaFile(const std::string& flag, const std::string& path) {
  absl::StatusOr<BioPtr> bio = Open(flag, path);
  if (!bio.ok()) return bio.status();
  X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " ", path, ": holds no PEM certificate (", OpenSslError(), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> OpenSslCipherList(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& name : names) {
    bool found = false;
    for (const auto& [go, openssl] : kSuites) {
      if (name == go) {
        out.push_back(openssl);
        found = true;
      }
    }
    for (const char* tls13 : kTls13Suites)
      found = found || name == tls13;
    if (!found) {
      std::vector<std::string> known;
      for (const auto& [go, openssl] : kSuites)
        known.push_back(go);
      return absl::InvalidArgumentError(absl::StrCat(
          "--cipher-suites: \"", name, "\" is not a cipher suite bulwark takes (insecure ones, ",
          "RC4 and 3DES, are refused); known: ", absl::StrJoin(known, ",")));
    }
  }
  return absl::StrJoin(out, ":");
}

}  // namespace bw::server
