#include "server/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdint>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/assert.h"
#include "env/real/secure_random.h"

namespace bw::server {

namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;

std::string Derive(std::string_view password, const std::string& salt, int iterations) {
  std::string out(kHashBytes, '\0');
  BW_ASSERT(PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                              reinterpret_cast<const unsigned char*>(salt.data()),
                              static_cast<int>(salt.size()), iterations, EVP_sha256(),
                              static_cast<int>(out.size()),
                              reinterpret_cast<unsigned char*>(out.data())) == 1);
  return out;
}

}  // namespace

std::string HashPassword(std::string_view password, int iterations) {
  std::string salt = env::SecureRandomBytes(kSaltBytes);
  return absl::StrCat("pbkdf2-sha256$", iterations, "$", absl::BytesToHexString(salt), "$",
                      absl::BytesToHexString(Derive(password, salt, iterations)));
}

bool CheckPassword(std::string_view password, std::string_view stored) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(stored.data(), stored.size()), '$');
  int iterations = 0;
  if (parts.size() != 4 || parts[0] != "pbkdf2-sha256" ||
      !absl::SimpleAtoi(parts[1], &iterations) || iterations <= 0 || iterations > 10'000'000 ||
      parts[2].size() != 2 * kSaltBytes || parts[3].size() != 2 * kHashBytes) {
    return false;
  }
  std::string salt = absl::HexStringToBytes(parts[2]);
  std::string want = absl::HexStringToBytes(parts[3]);
  std::string got = Derive(password, salt, iterations);
  return want.size() == got.size() && CRYPTO_memcmp(want.data(), got.data(), got.size()) == 0;
}

std::string NewSimpleToken(uint64_t suffix) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string raw = env::SecureRandomBytes(32);
  std::string t;
  for (unsigned char c : raw)
    t.push_back(kAlphabet[c % 62]);
  return absl::StrCat(t, ".", suffix);
}

}  // namespace bw::server
