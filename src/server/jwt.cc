#include "server/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kv/auth.h"
#include "kv/etcd_errors.h"

namespace bw::server {

namespace {

constexpr size_t kEs256Half = 32;

const EVP_MD* DigestOf(const std::string& method) {
  if (method == "RS256" || method == "ES256") return EVP_sha256();
  if (method == "RS384") return EVP_sha384();
  if (method == "RS512") return EVP_sha512();
  return nullptr;
}

bool IsEc(const std::string& method) {
  return method == "ES256";
}

// Go's duration syntax, the parts etcd's ttl uses: "300s", "5m", "1h30m".
absl::StatusOr<int64_t> ParseSeconds(absl::string_view s) {
  int64_t total = 0;
  if (s.empty()) return absl::InvalidArgumentError("empty duration");
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[n])))
      ++n;
    int64_t v = 0;
    if (n == 0 || n == s.size() || !absl::SimpleAtoi(s.substr(0, n), &v)) {
      return absl::InvalidArgumentError(absl::StrCat("\"", s, "\" is not a duration like 5m"));
    }
    char unit = s[n];
    int64_t mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 0;
    if (mult == 0)
      return absl::InvalidArgumentError(absl::StrCat("unknown unit '", s.substr(n, 1), "'"));
    total += v * mult;
    s.remove_prefix(n + 1);
  }
  return total;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      absl::StrAppend(&out, "\\u00", absl::BytesToHexString(std::string(1, static_cast<char>(c))));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

// The claims of this code's own tokens (the signature was checked first, so
// only tokens we made reach here): {"exp":N,"revision":N,"username":"..."}.
bool ParseClaims(absl::string_view json, JwtTokens::Claims* c) {
  auto take = [&](absl::string_view lit) {
    if (json.substr(0, lit.size()) != lit) return false;
    json.remove_prefix(lit.size());
    return true;
  };
  auto number = [&](auto* out) {
    size_t n = 0;
    while (n < json.size() && absl::ascii_isdigit(static_cast<unsigned char>(json[n])))
      ++n;
    if (n == 0 || !absl::SimpleAtoi(json.substr(0, n), out)) return false;
    json.remove_prefix(n);
    return true;
  };
  if (!take("{\"exp\":") || !number(&c->expires_s) || !take(",\"revision\":") ||
      !number(&c->revision) || !take(",\"username\":\"")) {
    return false;
  }
  std::string user;
  while (!json.empty() && json[0] != '"') {
    if (json[0] != '\\') {
      user.push_back(json[0]);
      json.remove_prefix(1);
      continue;
    }
    if (json.size() >= 2 && (json[1] == '"' || json[1] == '\\')) {
      user.push_back(json[1]);
      json.remove_prefix(2);
    } else if (json.size() >= 6 && json.substr(0, 4) == "\\u00") {
      std::string b = absl::HexStringToBytes(json.substr(4, 2));
      user += b;
      json.remove_prefix(6);
    } else {
      return false;
    }
  }
  c->user = std::move(user);
  return take("\"}") && json.empty();
}

absl::StatusOr<EVP_PKEY*> ReadKey(const std::string& path, bool priv) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--auth-token: cannot read ", path));
  }
  EVP_PKEY* k = priv ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                     : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--auth-token: ", path, " is not a PEM ",
                                                   priv ? "private" : "public", " key"));
  }
  return k;
}

}  // namespace

absl::StatusOr<JwtOptions> ParseJwtOptions(std::string_view spec) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(spec.data(), spec.size()), ',');
  if (parts.empty() || parts[0] != "jwt") {
    return absl::InvalidArgumentError("--auth-token: expected jwt,pub-key=...,sign-method=...");
  }
  JwtOptions o;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    if (kv.first == "pub-key") {
      o.pub_key = std::string(kv.second);
    } else if (kv.first == "priv-key") {
      o.priv_key = std::string(kv.second);
    } else if (kv.first == "sign-method") {
      o.sign_method = std::string(kv.second);
    } else if (kv.first == "ttl") {
      absl::StatusOr<int64_t> s = ParseSeconds(kv.second);
      if (!s.ok() || *s <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--auth-token: ttl=", kv.second, " is not a positive duration like 5m"));
      }
      o.ttl_s = *s;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--auth-token: unknown jwt option \"",
                                                     kv.first,
                                                     "\" (pub-key, priv-key, sign-method, ttl)"));
    }
  }
  if (o.pub_key.empty()) return absl::InvalidArgumentError("--auth-token: jwt needs pub-key=PATH");
  if (DigestOf(o.sign_method) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-token: sign-method ", o.sign_method,
                     " is not one bulwark has (RS256, RS384, RS512, ES256)"));
  }
  return o;
}

absl::StatusOr<std::unique_ptr<JwtTokens>> JwtTokens::Load(const JwtOptions& o) {
  std::unique_ptr<JwtTokens> t(new JwtTokens());
  t->options_ = o;
  t->header_b64_ =
      absl::WebSafeBase64Escape(absl::StrCat("{\"alg\":\"", o.sign_method, "\",\"typ\":\"JWT\"}"));
  absl::StatusOr<EVP_PKEY*> pub = ReadKey(o.pub_key, false);
  if (!pub.ok()) return pub.status();
  t->pub_ = *pub;
  int want = IsEc(o.sign_method) ? EVP_PKEY_EC : EVP_PKEY_RSA;
  if (EVP_PKEY_get_base_id(t->pub_) != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-token: ", o.pub_key, " is not an ", IsEc(o.sign_method) ? "EC" : "RSA",
                     " key, as sign-method ", o.sign_method, " needs"));
  }
  if (!o.priv_key.empty()) {
    absl::StatusOr<EVP_PKEY*> priv = ReadKey(o.priv_key, true);
    if (!priv.ok()) return priv.status();
    t->priv_ = *priv;
    // The pair must match: a token signed now must verify.
    absl::StatusOr<std::string> probe = t->Sign("probe", 1, 0);
    if (!probe.ok() || !t->Verify(*probe, 0).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth-token: ", o.priv_key, " does not match ", o.pub_key));
    }
  }
  return t;
}

JwtTokens::~JwtTokens() {
  EVP_PKEY_free(pub_);
  EVP_PKEY_free(priv_);
}

std::string JwtTokens::SigningInput(const Claims& c) const {
  std::string claims = absl::StrCat("{\"exp\":", c.expires_s, ",\"revision\":", c.revision,
                                    ",\"username\":", JsonString(c.user), "}");
  return absl::StrCat(header_b64_, ".", absl::WebSafeBase64Escape(claims));
}

absl::StatusOr<std::string> JwtTokens::Sign(const std::string& user, uint64_t revision,
                                            int64_t now_unix_ms) const {
  if (priv_ == nullptr) {
    return kv::etcd_errors::JwtVerifyOnly();
  }
  Claims c{user, revision, now_unix_ms / 1000 + options_.ttl_s};
  std::string input = SigningInput(c);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  bool ok = EVP_DigestSignInit(ctx, nullptr, DigestOf(options_.sign_method), nullptr, priv_) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("jwt: signing failed");
  if (IsEc(options_.sign_method)) {
    // JWS wants r and s, 32 bytes each, not OpenSSL's DER.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    if (es == nullptr) return absl::InternalError("jwt: signing failed");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(es, &r, &s);
    std::string raw(2 * kEs256Half, '\0');
    BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), kEs256Half);
    BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + kEs256Half, kEs256Half);
    ECDSA_SIG_free(es);
    sig = std::move(raw);
  }
  return absl::StrCat(input, ".", absl::WebSafeBase64Escape(sig));
}

absl::StatusOr<JwtTokens::Claims> JwtTokens::Verify(std::string_view token,
                                                    int64_t now_unix_ms) const {
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(token.data(), token.size()), '.');
  // The header must be exactly ours: no "alg":"none", no other algorithm.
  if (parts.size() != 3 || parts[0] != header_b64_) return kv::etcd_errors::InvalidAuthToken();
  std::string sig;
  std::string claims_json;
  if (!absl::WebSafeBase64Unescape(parts[2], &sig) ||
      !absl::WebSafeBase64Unescape(parts[1], &claims_json)) {
    return kv::etcd_errors::InvalidAuthToken();
  }
  if (IsEc(options_.sign_method)) {
    if (sig.size() != 2 * kEs256Half) return kv::etcd_errors::InvalidAuthToken();
    ECDSA_SIG* es = ECDSA_SIG_new();
    const auto* raw = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG_set0(es, BN_bin2bn(raw, kEs256Half, nullptr),
                   BN_bin2bn(raw + kEs256Half, kEs256Half, nullptr));
    int n = i2d_ECDSA_SIG(es, nullptr);
    std::string der(n > 0 ? static_cast<size_t>(n) : 0, '\0');
    unsigned char* q = reinterpret_cast<unsigned char*>(der.data());
    if (n > 0) i2d_ECDSA_SIG(es, &q);
    ECDSA_SIG_free(es);
    sig = std::move(der);
  }
  std::string input = absl::StrCat(parts[0], ".", parts[1]);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, DigestOf(options_.sign_method), nullptr, pub_) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  Claims c;
  if (!ok || !ParseClaims(claims_json, &c)) return kv::etcd_errors::InvalidAuthToken();
  if (c.expires_s * 1000 <= now_unix_ms) return kv::etcd_errors::InvalidAuthToken();
  return c;
}

}  // namespace bw::server
