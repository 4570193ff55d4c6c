#include "server/password.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace bw::server {
namespace {

TEST(PasswordTest, HashesAreSaltedAndCheckOnlyTheirPassword) {
  // Fewer iterations than a real hash: the property, not the cost, is tested.
  std::string a = HashPassword("correct horse", 1000);
  std::string b = HashPassword("correct horse", 1000);
  EXPECT_NE(a, b) << "each hash has its own salt";
  EXPECT_EQ(a.find("correct horse"), std::string::npos);
  EXPECT_TRUE(CheckPassword("correct horse", a));
  EXPECT_TRUE(CheckPassword("correct horse", b));
  EXPECT_FALSE(CheckPassword("correct hors", a));
  EXPECT_FALSE(CheckPassword("", a));
  EXPECT_EQ(a.rfind("pbkdf2-sha256$1000$", 0), 0u);
}

TEST(PasswordTest, ANonHashNeverMatches) {
  for (const char* stored :
       {"", "correct horse", "pbkdf2-sha256$1000$zz$zz",
        "pbkdf2-sha256$0$00000000000000000000000000000000$00", "md5$1$00$00"}) {
    EXPECT_FALSE(CheckPassword("correct horse", stored)) << stored;
    EXPECT_FALSE(CheckPassword("", stored)) << stored;
  }
}

TEST(PasswordTest, TokensAreUnpredictableAndCarryTheirSuffix) {
  std::set<std::string> seen;
  for (uint64_t i = 0; i < 1000; ++i) {
    std::string t = NewSimpleToken(i);
    EXPECT_EQ(t.substr(t.find('.') + 1), std::to_string(i));
    EXPECT_EQ(t.find('.'), 32u);
    seen.insert(t.substr(0, 32));
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace bw::server
