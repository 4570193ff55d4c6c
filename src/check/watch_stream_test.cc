#include "check/watch_stream.h"

#include <gtest/gtest.h>

namespace bw::check {
namespace {

using Ev = WatchStreamChecker::Event;

TEST(WatchStreamCheckerTest, AcceptsEveryRevisionOnceInOrderAcrossAResume) {
  WatchStreamChecker c;
  c.OnStart(1, 2);
  c.OnEvents(1, {{2, "PUT a=1"}, {3, "PUT b=1"}, {3, "PUT c=1"}});
  c.OnStart(1, c.next(1));  // failover: resumes after its last revision
  c.OnEvents(1, {{4, "DEL a"}});
  c.OnStart(2, 3);
  c.OnEvents(2, {{3, "PUT b=1"}, {3, "PUT c=1"}, {4, "DEL a"}});
  EXPECT_TRUE(c.ok()) << c.violation();
  EXPECT_EQ(c.next(1), 5);
  EXPECT_EQ(c.resumes(), 1u);
}

TEST(WatchStreamCheckerTest, CatchesAGap) {
  WatchStreamChecker c;
  c.OnStart(1, 2);
  c.OnEvents(1, {{2, "PUT a=1"}, {4, "PUT a=3"}});
  EXPECT_NE(c.violation().find("a gap (revisions 3 to 3"), std::string::npos) << c.violation();
}

TEST(WatchStreamCheckerTest, CatchesADuplicateAfterAResume) {
  WatchStreamChecker c;
  c.OnStart(1, 2);
  c.OnEvents(1, {{2, "PUT a=1"}, {3, "PUT a=2"}});
  c.OnStart(1, 3);  // a resume: the server must send 4 on
  c.OnEvents(1, {{3, "PUT a=2"}});
  EXPECT_NE(c.violation().find("got revision 3 again"), std::string::npos) << c.violation();
}

TEST(WatchStreamCheckerTest, CatchesEventsThatDisagree) {
  WatchStreamChecker c;
  c.OnStart(1, 2);
  c.OnStart(2, 2);
  c.OnEvents(1, {{2, "PUT a=1"}});
  c.OnEvents(2, {{2, "PUT a=9"}});
  EXPECT_NE(c.violation().find("other events for revision 2"), std::string::npos);
}

TEST(WatchStreamCheckerTest, CompactionMaySkipOnlyWhatWasCompacted) {
  WatchStreamChecker c;
  c.OnStart(1, 2);
  c.OnCompacted(1, 5);  // it needed 2, and 2..4 are gone: fine
  c.OnStart(1, 5);
  EXPECT_EQ(c.next(1), 5);
  c.OnEvents(1, {{5, "PUT a=1"}});
  EXPECT_TRUE(c.ok()) << c.violation();
  c.OnCompacted(1, 6);  // it needs 6, which is still there
  EXPECT_NE(c.violation().find("which is not compacted"), std::string::npos) << c.violation();
}

}  // namespace
}  // namespace bw::check
