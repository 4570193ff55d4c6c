#include "server/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace bw::server {
namespace {

// Writes a fresh key pair as PEM files; returns {public, private} paths.
std::pair<std::string, std::string> WriteKeys(EVP_PKEY* k, const std::string& tag) {
  std::string dir = ::testing::TempDir();
  std::string pub = absl::StrCat(dir, "/jwt-", tag, "-", getpid(), ".pub");
  std::string priv = absl::StrCat(dir, "/jwt-", tag, "-", getpid(), ".key");
  FILE* f = std::fopen(pub.c_str(), "w");
  PEM_write_PUBKEY(f, k);
  std::fclose(f);
  f = std::fopen(priv.c_str(), "w");
  PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  EVP_PKEY_free(k);
  return {pub, priv};
}

std::unique_ptr<JwtTokens> Make(const std::string& method, const std::string& pub,
                                const std::string& priv, int64_t ttl_s = 300) {
  JwtOptions o{pub, priv, method, ttl_s};
  absl::StatusOr<std::unique_ptr<JwtTokens>> t = JwtTokens::Load(o);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new std::pair<std::string, std::string>(WriteKeys(EVP_RSA_gen(2048), "rsa"));
    rsa2_ = new std::pair<std::string, std::string>(WriteKeys(EVP_RSA_gen(2048), "rsa2"));
    ec_ = new std::pair<std::string, std::string>(WriteKeys(EVP_EC_gen("P-256"), "ec"));
  }
  static void TearDownTestSuite() {
    for (auto** k : {&rsa_, &rsa2_, &ec_}) {
      std::remove((*k)->first.c_str());
      std::remove((*k)->second.c_str());
      delete *k;
      *k = nullptr;
    }
  }
  static std::pair<std::string, std::string>* rsa_;
  static std::pair<std::string, std::string>* rsa2_;
  static std::pair<std::string, std::string>* ec_;
  static constexpr int64_t kNow = 1'800'000'000'000;  // ms
};
std::pair<std::string, std::string>* JwtTest::rsa_ = nullptr;
std::pair<std::string, std::string>* JwtTest::rsa2_ = nullptr;
std::pair<std::string, std::string>* JwtTest::ec_ = nullptr;

TEST_F(JwtTest, SignedTokensVerifyWithTheirClaims) {
  for (const std::string method : {"RS256", "RS384", "RS512", "ES256"}) {
    auto* keys = method == "ES256" ? ec_ : rsa_;
    auto t = Make(method, keys->first, keys->second);
    ASSERT_NE(t, nullptr);
    absl::StatusOr<std::string> tok = t->Sign("al\"ice\\\n", 7, kNow);
    ASSERT_TRUE(tok.ok()) << tok.status();
    absl::StatusOr<JwtTokens::Claims> c = t->Verify(*tok, kNow + 1000);
    ASSERT_TRUE(c.ok()) << method << " " << c.status();
    EXPECT_EQ(c->user, "al\"ice\\\n");
    EXPECT_EQ(c->revision, 7u);
    EXPECT_EQ(c->expires_s, kNow / 1000 + 300);
    // A member with only the public key verifies too.
    auto verifier = Make(method, keys->first, "");
    ASSERT_NE(verifier, nullptr);
    EXPECT_FALSE(verifier->can_sign());
    EXPECT_TRUE(verifier->Verify(*tok, kNow).ok());
    EXPECT_FALSE(verifier->Sign("x", 1, kNow).ok());
  }
}

TEST_F(JwtTest, ExpiredTamperedForeignAndUnsignedTokensAreRefused) {
  auto t = Make("RS256", rsa_->first, rsa_->second, 60);
  std::string tok = *t->Sign("alice", 3, kNow);
  EXPECT_TRUE(t->Verify(tok, kNow + 59'000).ok());
  EXPECT_EQ(t->Verify(tok, kNow + 60'000).status().message(), "etcdserver: invalid auth token");
  // Another user's name in the claims, the signature kept.
  std::vector<std::string> parts = absl::StrSplit(tok, '.');
  std::string forged_claims = absl::WebSafeBase64Escape(
      absl::StrCat("{\"exp\":", kNow / 1000 + 60, ",\"revision\":3,\"username\":\"root\"}"));
  EXPECT_FALSE(t->Verify(absl::StrCat(parts[0], ".", forged_claims, ".", parts[2]), kNow).ok());
  // alg "none" with no signature.
  std::string none = absl::WebSafeBase64Escape("{\"alg\":\"none\",\"typ\":\"JWT\"}");
  EXPECT_FALSE(t->Verify(absl::StrCat(none, ".", parts[1], "."), kNow).ok());
  // Signed by a key this member does not trust.
  auto other = Make("RS256", rsa2_->first, rsa2_->second);
  EXPECT_FALSE(t->Verify(*other->Sign("alice", 3, kNow), kNow).ok());
  // Garbage of every shape.
  for (const char* g : {"", ".", "..", "a.b.c", "simpletoken.12"}) {
    EXPECT_FALSE(t->Verify(g, kNow).ok()) << g;
  }
}

TEST_F(JwtTest, OptionsAndKeysAreCheckedWithClearErrors) {
  absl::StatusOr<JwtOptions> o =
      ParseJwtOptions("jwt,pub-key=/a.pub,priv-key=/a.key,sign-method=RS512,ttl=1h30m");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->ttl_s, 5400);
  EXPECT_EQ(o->sign_method, "RS512");
  EXPECT_FALSE(ParseJwtOptions("jwt,priv-key=/a.key").ok());  // no public key
  EXPECT_NE(ParseJwtOptions("jwt,pub-key=/a,sign-method=HS256").status().message().find("HS256"),
            std::string::npos);
  EXPECT_FALSE(ParseJwtOptions("jwt,pub-key=/a,ttl=5 minutes").ok());
  EXPECT_FALSE(ParseJwtOptions("jwt,pub-key=/a,colour=blue").ok());
  // An RSA key for ES256, a private key that is not the public one's.
  EXPECT_FALSE(JwtTokens::Load({rsa_->first, rsa_->second, "ES256", 300}).ok());
  absl::Status mismatch = JwtTokens::Load({rsa_->first, rsa2_->second, "RS256", 300}).status();
  EXPECT_NE(mismatch.message().find("does not match"), std::string::npos) << mismatch;
  EXPECT_FALSE(JwtTokens::Load({"/nonexistent.pem", "", "RS256", 300}).ok());
}

}  // namespace
}  // namespace bw::server
