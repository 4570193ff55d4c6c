// JWT authentication tokens, as etcd's `--auth-token jwt,...` makes them:
// a signed JSON Web Token whose claims are the user name, the auth revision
// it was issued at and its expiry. Any member holding the public key checks
// a token by itself (nothing goes through the log), so the token works at
// every member that shares the keys; it ends at its expiry, or when the auth
// state changes (the server refuses a token of an older revision, etcd's
// "revision of auth store is old", and clients authenticate again).
//
// Signing methods: RS256, RS384, RS512 (RSA) and ES256 (ECDSA P-256). Keys
// are PEM files; without a private key a member only verifies.
//
// Thread-safety: Sign and Verify are const and safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace bw::server {

struct JwtOptions {
  std::string pub_key;   // path of a PEM public key
  std::string priv_key;  // path of a PEM private key ("": verify only)
  std::string sign_method = "RS256";
  int64_t ttl_s = 300;
};

// Parses etcd's flag value "jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256,ttl=5m"
// (ttl in Go's duration syntax: s, m or h; default 5m).
[[nodiscard]] absl::StatusOr<JwtOptions> ParseJwtOptions(std::string_view spec);

class JwtTokens {
 public:
  struct Claims {
    std::string user;
    uint64_t revision = 0;
    int64_t expires_s = 0;  // Unix time
  };

  // Reads and checks the keys (their type must fit the signing method).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<JwtTokens>> Load(const JwtOptions& o);
  ~JwtTokens();
  JwtTokens(const JwtTokens&) = delete;
  JwtTokens& operator=(const JwtTokens&) = delete;

  bool can_sign() const { return priv_ != nullptr; }
  // A token for `user` at auth `revision`, expiring ttl_s after now.
  [[nodiscard]] absl::StatusOr<std::string> Sign(const std::string& user, uint64_t revision,
                                                 int64_t now_unix_ms) const;
  // The claims of a token this key signed with this method and that has not
  // expired; etcd's "invalid auth token" for anything else.
  [[nodiscard]] absl::StatusOr<Claims> Verify(std::string_view token, int64_t now_unix_ms) const;

 private:
  JwtTokens() = default;
  std::string SigningInput(const Claims& c) const;

  JwtOptions options_;
  std::string header_b64_;
  EVP_PKEY* pub_ = nullptr;
  EVP_PKEY* priv_ = nullptr;
};

}  // namespace bw::server
