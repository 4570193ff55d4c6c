#include "check/append.h"

#include <gtest/gtest.h>

namespace bw::check {
namespace {

using Lists = std::map<std::string, std::vector<uint64_t>>;

std::vector<AppendTxn> Txns() {
  return {{1, {"a", "b"}, Outcome::kOk},
          {2, {"b", "c"}, Outcome::kOk},
          {3, {"a", "c"}, Outcome::kUnknown},
          {4, {"a"}, Outcome::kFailed}};
}

void ExpectAnomaly(const std::vector<AppendTxn>& txns, const std::vector<ListRead>& reads,
                   const Lists& lists, const std::string& words) {
  absl::Status s = CheckAppends(txns, reads, lists, nullptr);
  ASSERT_FALSE(s.ok()) << "expected: " << words;
  EXPECT_NE(s.message().find(words), std::string::npos) << s;
}

TEST(AppendCheckTest, ASerialHistoryPasses) {
  Lists lists = {{"a", {1, 3}}, {"b", {1, 2}}, {"c", {2, 3}}};
  std::vector<ListRead> reads = {{{"a", {1}}, {"b", {1}}}, {{"b", {1, 2}}, {"c", {2, 3}}}, {}};
  AppendSummary s;
  ASSERT_TRUE(CheckAppends(Txns(), reads, lists, &s).ok());
  EXPECT_EQ(s.appends, 6u);
  EXPECT_EQ(s.unknown_applied, 1u);
  EXPECT_EQ(s.reads, 3u);
  // An unknown txn may also be absent.
  Lists without3 = {{"a", {1}}, {"b", {1, 2}}, {"c", {2}}};
  ASSERT_TRUE(CheckAppends(Txns(), {}, without3, &s).ok());
  EXPECT_EQ(s.unknown_absent, 1u);
}

TEST(AppendCheckTest, AppliedTwiceIsCaught) {
  ExpectAnomaly(Txns(), {}, {{"a", {1, 1}}, {"b", {1, 2}}, {"c", {2}}}, "twice");
}

TEST(AppendCheckTest, LostAcknowledgedTxnIsCaught) {
  ExpectAnomaly(Txns(), {}, {{"a", {1}}, {"b", {1}}, {"c", {}}}, "lost");
}

TEST(AppendCheckTest, HalfAppliedTxnIsCaught) {
  ExpectAnomaly(Txns(), {}, {{"a", {1, 3}}, {"b", {1, 2}}, {"c", {2}}}, "not atomic");
}

TEST(AppendCheckTest, RefusedTxnThatWasAppliedIsCaught) {
  ExpectAnomaly(Txns(), {}, {{"a", {1, 4}}, {"b", {1, 2}}, {"c", {2}}}, "refused");
}

TEST(AppendCheckTest, WrongKeyIsCaught) {
  ExpectAnomaly(Txns(), {}, {{"a", {1}}, {"b", {1, 2}}, {"c", {2, 1}}}, "wrote only");
}

TEST(AppendCheckTest, ReadOfAStateThatNeverHappenedIsCaught) {
  Lists lists = {{"a", {1, 3}}, {"b", {1, 2}}, {"c", {2, 3}}};
  ExpectAnomaly(Txns(), {{{"a", {3}}}}, lists, "not a prefix");
}

TEST(AppendCheckTest, FracturedReadIsCaught) {
  Lists lists = {{"a", {1, 3}}, {"b", {1, 2}}, {"c", {2, 3}}};
  // Saw txn 1 on a, but b (which it also wrote) without it.
  ExpectAnomaly(Txns(), {{{"a", {1}}, {"b", {}}}}, lists, "fractured");
}

TEST(AppendCheckTest, CycleIsCaught) {
  // a says 1 before 3, c says 3 before 2, b says 2 before 1: a cycle.
  std::vector<AppendTxn> txns = {
      {1, {"a", "b"}, Outcome::kOk}, {2, {"b", "c"}, Outcome::kOk}, {3, {"a", "c"}, Outcome::kOk}};
  ExpectAnomaly(txns, {}, {{"a", {1, 3}}, {"b", {2, 1}}, {"c", {3, 2}}}, "cycle");
}

}  // namespace
}  // namespace bw::check
