#include "check/auth_revocation.h"

#include <gtest/gtest.h>

namespace bw::check {
namespace {

TEST(AuthRevocationTest, HonouredAfterAnAcknowledgedRevocationIsAViolation) {
  AuthRevocationChecker c;
  uint64_t r = c.OnChangeInvoked("u1", /*grant=*/false, 100);
  c.OnChangeAnswered(r, true, 200);
  c.OnHonoured("u1", "put a/1", 250, 300);
  EXPECT_FALSE(c.ok());
  EXPECT_NE(c.violation().find("put a/1 by user u1"), std::string::npos) << c.violation();
}

TEST(AuthRevocationTest, ConcurrentWithTheRevocationIsAllowed) {
  AuthRevocationChecker c;
  uint64_t r = c.OnChangeInvoked("u1", false, 100);
  c.OnHonoured("u1", "put", 150, 180);  // answered before the revocation was
  c.OnChangeAnswered(r, true, 200);
  c.OnHonoured("u1", "read", 190, 260);  // began before the answer
  EXPECT_TRUE(c.ok()) << c.violation();
}

TEST(AuthRevocationTest, OtherUsersAndRefusedRevocationsClaimNothing) {
  AuthRevocationChecker c;
  uint64_t r = c.OnChangeInvoked("u1", false, 100);
  c.OnChangeAnswered(r, true, 200);
  uint64_t refused = c.OnChangeInvoked("u2", false, 210);
  c.OnChangeAnswered(refused, false, 220);
  c.OnHonoured("u2", "put", 300, 310);
  EXPECT_TRUE(c.ok()) << c.violation();
}

TEST(AuthRevocationTest, AGrantThatMayFollowTheRevocationRestoresIt) {
  AuthRevocationChecker c;
  uint64_t r = c.OnChangeInvoked("u1", false, 100);
  c.OnChangeAnswered(r, true, 200);
  uint64_t g = c.OnChangeInvoked("u1", true, 300);
  c.OnHonoured("u1", "put", 250, 350);  // the grant may have been applied first
  c.OnChangeAnswered(g, true, 400);
  c.OnHonoured("u1", "read", 500, 510);
  EXPECT_TRUE(c.ok()) << c.violation();
}

TEST(AuthRevocationTest, AnUnansweredGrantMayTakeEffectLater) {
  AuthRevocationChecker c;
  uint64_t g = c.OnChangeInvoked("u1", true, 50);  // never answered
  uint64_t r = c.OnChangeInvoked("u1", false, 100);
  c.OnChangeAnswered(r, true, 200);
  c.OnHonoured("u1", "put", 300, 310);
  EXPECT_TRUE(c.ok()) << c.violation();
  (void)g;
}

TEST(AuthRevocationTest, AGrantAnsweredBeforeTheRevocationBeganDoesNotHelp) {
  AuthRevocationChecker c;
  uint64_t g = c.OnChangeInvoked("u1", true, 10);
  c.OnChangeAnswered(g, true, 20);
  uint64_t r = c.OnChangeInvoked("u1", false, 100);
  c.OnChangeAnswered(r, true, 200);
  // And a grant invoked only after the operation completed cannot help it.
  c.OnHonoured("u1", "read", 300, 310);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.revocations_acknowledged(), 1u);
}

}  // namespace
}  // namespace bw::check
