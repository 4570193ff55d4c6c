// The lease checker accepts revocations that come the TTL (scaled by the
// fastest clock) after the last answered extension, and names one that
// comes earlier; an extension sent after the revocation claims nothing.
#include "check/lease_expiry.h"

#include <gtest/gtest.h>

namespace bw::check {
namespace {

TEST(LeaseExpiryCheckerTest, ALeaseThatLivesItsTtlPasses) {
  LeaseExpiryChecker c;
  c.OnExtended(7, 3, 1'000'000);
  c.OnExtended(7, 3, 2'500'000);  // a keep-alive: now until 5.5 s
  c.OnRevoked(7, 5'600'000);
  EXPECT_TRUE(c.ok()) << c.violation();
  EXPECT_EQ(c.revocations(), 1u);
  EXPECT_GE(c.tightest(), 1.0);
}

TEST(LeaseExpiryCheckerTest, AnEarlyRevocationIsNamed) {
  LeaseExpiryChecker c;
  c.OnExtended(7, 3, 1'000'000);
  c.OnExtended(7, 3, 2'500'000);
  c.OnRevoked(7, 5'000'000);  // the keep-alive's TTL ran to 5.5 s
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.violation().find("lease 7 revoked early"), std::string::npos) << c.violation();
}

TEST(LeaseExpiryCheckerTest, AFastClockIsAllowedForAndAKeepAliveAfterTheEndClaimsNothing) {
  LeaseExpiryChecker c(1.2);
  c.OnExtended(1, 3, 0);
  c.OnRevoked(1, 2'600'000);  // 3 s / 1.2 = 2.5 s
  EXPECT_TRUE(c.ok()) << c.violation();
  c.OnExtended(2, 3, 0);
  c.OnExtended(2, 3, 4'000'000);  // sent after the lease was gone
  c.OnRevoked(2, 3'000'000);
  EXPECT_TRUE(c.ok()) << c.violation();
  c.OnExtended(3, 3, 0);
  c.OnRevoked(3, 2'400'000);
  EXPECT_FALSE(c.ok());
}

}  // namespace
}  // namespace bw::check
