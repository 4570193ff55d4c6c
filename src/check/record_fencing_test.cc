#include "check/record_fencing.h"

#include <gtest/gtest.h>

namespace bw::check {
namespace {

TEST(RecordFencingCheckerTest, AcceptsAHolderATakeoverAfterItsLockAndOneCompletion) {
  RecordFencingChecker c;
  c.OnApplied(1, 1'000);
  c.OnStarted("job", 1, false, 500, 0, 2'000);
  c.OnCheckpointed("job", 1, 100'000);
  // Lock renewed by the checkpoint sent at 0.1 s: 500 ms later at least.
  c.OnApplied(2, 700'000);
  c.OnStarted("job", 2, true, 500, 650'000, 710'000);
  c.OnCompleted("job", 2, "done", 720'000, 730'000);
  c.OnSawCompleted("job", "done", 800'000);
  EXPECT_TRUE(c.ok()) << c.violation();
  EXPECT_EQ(c.takeovers(), 1u);
  EXPECT_EQ(c.completions(), 1u);
}

TEST(RecordFencingCheckerTest, CatchesAnOldHolderHonouredAfterANewerStarted) {
  RecordFencingChecker c;
  c.OnStarted("job", 1, false, 500, 0, 1'000);
  c.OnStarted("job", 2, true, 500, 600'000, 610'000);
  c.OnCompleted("job", 1, "late", 620'000, 630'000);
  EXPECT_NE(c.violation().find("token 1 sent after token 2 had started was honoured"),
            std::string::npos)
      << c.violation();
}

TEST(RecordFencingCheckerTest, CatchesAnEarlyTakeover) {
  RecordFencingChecker c;
  c.OnStarted("job", 1, false, 500, 0, 1'000);
  c.OnCheckpointed("job", 1, 300'000);
  c.OnApplied(2, 500'000);  // 0.3 s + 0.5 s is 0.8 s
  c.OnStarted("job", 2, true, 500, 450'000, 520'000);
  EXPECT_NE(c.violation().find("taken over (token 2)"), std::string::npos) << c.violation();
}

// A released lock may be taken at once — but only after the Release was sent:
// before that, the holder's lock still ran.
TEST(RecordFencingCheckerTest, AReleasedLockMayBeTakenAtOnceButNotBeforeTheRelease) {
  RecordFencingChecker ok;
  ok.OnStarted("job", 1, false, 500, 0, 1'000);
  ok.OnReleased("job", 1, 100'000);
  ok.OnApplied(2, 150'000);  // within the TTL, after the Release was sent
  ok.OnStarted("job", 2, true, 500, 120'000, 160'000);
  EXPECT_TRUE(ok.ok()) << ok.violation();

  RecordFencingChecker early;
  early.OnStarted("job", 1, false, 500, 0, 1'000);
  early.OnReleased("job", 1, 300'000);
  early.OnApplied(2, 200'000);  // before the Release was sent
  early.OnStarted("job", 2, true, 500, 150'000, 210'000);
  EXPECT_NE(early.violation().find("taken over (token 2)"), std::string::npos) << early.violation();
}

TEST(RecordFencingCheckerTest, CatchesTokensGoingBackAndGivenTwice) {
  RecordFencingChecker c;
  c.OnStarted("a", 5, false, 500, 0, 1'000);
  c.OnStarted("a", 4, false, 500, 2'000, 3'000);
  EXPECT_NE(c.violation().find("went backwards"), std::string::npos) << c.violation();
  RecordFencingChecker d;
  d.OnStarted("a", 5, false, 500, 0, 1'000);
  d.OnStarted("b", 5, false, 500, 0, 1'000);
  EXPECT_NE(d.violation().find("given twice"), std::string::npos) << d.violation();
}

TEST(RecordFencingCheckerTest, CatchesACompletedJobStartedAgainOrAnsweredOtherwise) {
  RecordFencingChecker c;
  c.OnStarted("job", 1, false, 500, 0, 1'000);
  c.OnCompleted("job", 1, "done", 2'000, 3'000);
  c.OnStarted("job", 2, false, 500, 4'000, 5'000);
  EXPECT_NE(c.violation().find("started it again"), std::string::npos) << c.violation();
  RecordFencingChecker d;
  d.OnStarted("job", 1, false, 500, 0, 1'000);
  d.OnCompleted("job", 1, "done", 2'000, 3'000);
  d.OnSawCompleted("job", "other", 4'000);
  EXPECT_NE(d.violation().find("answered COMPLETED with 'other'"), std::string::npos);
}

}  // namespace
}  // namespace bw::check
