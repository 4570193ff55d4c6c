#include "check/lock_fencing.h"

#include <gtest/gtest.h>

namespace bw::check {
namespace {

FencedWrite W(uint64_t client, int64_t token, int64_t revision, int64_t invoke, int64_t done) {
  return FencedWrite{client, token, revision, invoke, done};
}

TEST(LockFencingTest, HoldersOneAfterAnotherPass) {
  // Client 1 holds token 5 and writes twice; client 2 takes over with 9.
  EXPECT_TRUE(CheckLockFencing({W(1, 5, 6, 0, 10), W(1, 5, 7, 11, 20), W(2, 9, 10, 30, 40)}).ok());
  EXPECT_TRUE(CheckLockFencing({}).ok());
}

TEST(LockFencingTest, OverlappingInRealTimeIsFineWhenTheStoreOrdersThem) {
  // Concurrent calls may be applied in either order.
  EXPECT_TRUE(CheckLockFencing({W(2, 9, 10, 0, 50), W(1, 5, 8, 5, 60)}).ok());
}

TEST(LockFencingTest, AnOlderHolderWritingAfterANewerOneIsCaught) {
  absl::Status s = CheckLockFencing({W(1, 5, 6, 0, 10), W(2, 9, 10, 20, 30), W(1, 5, 11, 40, 50)});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("two holders at once"), std::string::npos) << s;
}

TEST(LockFencingTest, OneTokenTwoClientsIsCaught) {
  EXPECT_FALSE(CheckLockFencing({W(1, 5, 6, 0, 10), W(2, 5, 7, 20, 30)}).ok());
}

TEST(LockFencingTest, TwoWritesAtOneRevisionAreCaught) {
  EXPECT_FALSE(CheckLockFencing({W(1, 5, 6, 0, 10), W(1, 5, 6, 20, 30)}).ok());
}

TEST(LockFencingTest, AWriteAppliedBeforeOneAnsweredEarlierIsCaught) {
  // Revision order says 2 then 1, but 1 was answered before 2 was sent.
  absl::Status s = CheckLockFencing({W(1, 5, 8, 0, 10), W(2, 5 + 0, 7, 20, 30)});
  EXPECT_FALSE(s.ok());
  s = CheckLockFencing({W(1, 5, 8, 0, 10), W(1, 5, 7, 20, 30)});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("applied after"), std::string::npos) << s;
}

}  // namespace
}  // namespace bw::check
