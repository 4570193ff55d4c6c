// AutoCompactor against etcd 3.4's schedule, in simulated time (a step each
// 100 ms heartbeat, one revision each): periodic mode compacts first once
// its retention has passed, then every min(retention, 1 h), each time at the
// revision of about one retention before; revision mode every 5 minutes at
// the current revision minus the retention, never at the same revision
// twice and never at 0 or below. Only a leader compacts, one at a time; a
// failed compaction is asked again at the next look; a follower that
// becomes leader has the window at hand.
#include "member/auto_compactor.h"

#include <vector>

#include <gtest/gtest.h>

namespace bw::member {
namespace {

constexpr int64_t kSecond = 1'000'000;

struct Asked {
  int64_t at_us;
  int64_t revision;
};

// Steps every 100 ms from 0 to end_us; the revision is the time in 100 ms
// units (one write per step). Answers every request at once with `ok`.
std::vector<Asked> Drive(AutoCompactor& c, int64_t end_us, bool leader = true, bool ok = true) {
  std::vector<Asked> out;
  for (int64_t t = 0; t <= end_us; t += 100'000) {
    const int64_t revision = t / 100'000 + 1;
    if (std::optional<int64_t> rev = c.Step(t, revision, leader)) {
      out.push_back({t, *rev});
      c.Done(ok, t);
    }
  }
  return out;
}

TEST(AutoCompactorTest, PeriodicKeepsAboutItsRetentionAndCompactsEveryPeriod) {
  AutoCompactor c({AutoCompaction::Mode::kPeriodic, 10 * kSecond}, 0);
  std::vector<Asked> asked = Drive(c, 45 * kSecond);
  ASSERT_EQ(asked.size(), 4u);  // at 10, 20, 30 and 40 s
  for (size_t i = 0; i < asked.size(); ++i) {
    EXPECT_EQ(asked[i].at_us, static_cast<int64_t>(i + 1) * 10 * kSecond) << i;
    // The revision of about 10 s before (recorded every 1 s; 11 kept).
    const int64_t revision_then = (asked[i].at_us - 10 * kSecond) / 100'000 + 1;
    EXPECT_EQ(asked[i].revision, revision_then) << i;
  }
}

TEST(AutoCompactorTest, PeriodicPastAnHourCompactsHourly) {
  AutoCompactor c({AutoCompaction::Mode::kPeriodic, 3 * AutoCompactor::kHourUs}, 0);
  std::vector<Asked> asked = Drive(c, 5 * AutoCompactor::kHourUs + kSecond);
  ASSERT_EQ(asked.size(), 3u);  // at 3 h, then 4 h and 5 h
  EXPECT_EQ(asked[0].at_us, 3 * AutoCompactor::kHourUs);
  EXPECT_EQ(asked[1].at_us, 4 * AutoCompactor::kHourUs);
  EXPECT_EQ(asked[2].at_us, 5 * AutoCompactor::kHourUs);
  // Recorded every 6 minutes; 31 kept: the front is 3 h old.
  EXPECT_EQ(asked[1].revision, AutoCompactor::kHourUs / 100'000 + 1);
}

TEST(AutoCompactorTest, OnlyALeaderCompactsAndAFailureIsAskedAgain) {
  AutoCompactor follower({AutoCompaction::Mode::kPeriodic, 10 * kSecond}, 0);
  EXPECT_TRUE(Drive(follower, 60 * kSecond, /*leader=*/false).empty());
  // It kept recording: as leader it compacts at once, at 10 s before.
  std::optional<int64_t> rev = follower.Step(61 * kSecond, 700, /*leader=*/true);
  ASSERT_TRUE(rev.has_value());
  EXPECT_EQ(*rev, 511);  // recorded at 51 s
  // One at a time: nothing more until Done.
  EXPECT_FALSE(follower.Step(62 * kSecond, 720, true).has_value());
  follower.Done(/*ok=*/false, 62 * kSecond);
  // Failed: asked again at the next look (1 s later), not a period later.
  EXPECT_TRUE(follower.Step(63 * kSecond, 730, true).has_value());
}

TEST(AutoCompactorTest, RevisionModeEveryFiveMinutesAtTheRevisionMinusItsRetention) {
  AutoCompactor c({AutoCompaction::Mode::kRevision, 1000}, 0);
  std::vector<Asked> asked = Drive(c, 16 * 60 * kSecond);
  // Looks at 0, 5, 10 and 15 min; at 0 the revision is 1 (1 - 1000 <= 0).
  ASSERT_EQ(asked.size(), 3u);
  for (size_t i = 0; i < asked.size(); ++i) {
    EXPECT_EQ(asked[i].at_us, static_cast<int64_t>(i + 1) * AutoCompactor::kRevisionCheckUs);
    EXPECT_EQ(asked[i].revision, asked[i].at_us / 100'000 + 1 - 1000);
  }
  // No writes since: the same revision is not asked twice.
  AutoCompactor idle({AutoCompaction::Mode::kRevision, 10}, 0);
  ASSERT_TRUE(idle.Step(0, 50, true).has_value());
  idle.Done(true, 0);
  EXPECT_FALSE(idle.Step(AutoCompactor::kRevisionCheckUs, 50, true).has_value());
  EXPECT_TRUE(idle.Step(2 * AutoCompactor::kRevisionCheckUs, 51, true).has_value());
}

}  // namespace
}  // namespace bw::member
