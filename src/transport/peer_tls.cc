#include "transport/peer_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace bw::transport {

namespace {

std::string FileStamp(const std::string& path) {
  if (path.empty()) return "-";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "?";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size, ":", st.st_ino);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PeerTls>> PeerTls::Load(PeerTlsOptions o) {
  std::unique_ptr<PeerTls> t(new PeerTls(std::move(o)));
  t->stamp_ = t->Stamp();
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> ctx = t->Build();
  if (!ctx.ok()) return ctx.status();
  t->ctx_ = *ctx;
  return t;
}

std::string PeerTls::Stamp() const {
  return absl::StrCat(FileStamp(o_.cert_file), "|", FileStamp(o_.key_file), "|",
                      FileStamp(o_.trusted_ca_file));
}

std::shared_ptr<asio::ssl::context> PeerTls::Current() {
  std::string now = Stamp();
  if (now != stamp_) {
    absl::StatusOr<std::shared_ptr<asio::ssl::context>> ctx = Build();
    // A file caught half-written fails to build: keep the old context and
    // try again at the next connection (the stamp stays old).
    if (ctx.ok()) {
      ctx_ = *ctx;
      stamp_ = now;
      ++reloads_;
    }
  }
  return ctx_;
}

absl::StatusOr<std::shared_ptr<asio::ssl::context>> PeerTls::Build() const {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls);
  // TLS 1.2 at least, as etcd.
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  std::error_code ec;
  auto failed = [&](const char* flag, const std::string& path) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", path, ": ", ec.message()));
  };
  ctx->use_certificate_chain_file(o_.cert_file, ec);
  if (ec) return failed("peer-cert-file", o_.cert_file);
  ctx->use_private_key_file(o_.key_file, asio::ssl::context::pem, ec);
  if (ec) return failed("peer-key-file", o_.key_file);
  if (!o_.trusted_ca_file.empty()) {
    ctx->load_verify_file(o_.trusted_ca_file, ec);
    if (ec) return failed("peer-trusted-ca-file", o_.trusted_ca_file);
  } else {
    ctx->set_default_verify_paths(ec);
    ec.clear();
  }
  if (!o_.ciphers.empty() &&
      SSL_CTX_set_cipher_list(ctx->native_handle(), o_.ciphers.c_str()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("--cipher-suites: OpenSSL takes none of ", o_.ciphers));
  }
  return ctx;
}

absl::Status PeerTls::CheckCaller(void* ssl) const {
  if (!o_.client_cert_auth || o_.allowed_cn.empty()) return absl::OkStatus();
  X509* cert = SSL_get1_peer_certificate(static_cast<SSL*>(ssl));
  if (cert == nullptr) return absl::PermissionDeniedError("peer presented no certificate");
  char cn[256] = {0};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  if (n < 0 || o_.allowed_cn != cn) {
    return absl::PermissionDeniedError(absl::StrCat("peer certificate's common name \"", cn,
                                                    "\" is not --peer-cert-allowed-cn \"",
                                                    o_.allowed_cn, "\""));
  }
  return absl::OkStatus();
}

}  // namespace bw::transport
