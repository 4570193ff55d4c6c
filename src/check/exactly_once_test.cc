#include "check/exactly_once.h"

#include <gtest/gtest.h>

namespace bw::check {
namespace {

KeyedRequest Unanswered(std::string key, std::string value, bool reuse = false) {
  KeyedRequest k;
  k.key = std::move(key);
  k.value = std::move(value);
  k.reuse = reuse;
  return k;
}

KeyedRequest Answered(std::string key, std::string value, int64_t rev, int answers = 1) {
  KeyedRequest k = Unanswered(std::move(key), std::move(value));
  k.answered = true;
  for (int i = 0; i < answers; ++i)
    k.answers.emplace_back("resp@" + std::to_string(rev), rev);
  return k;
}

TEST(ExactlyOnceCheckTest, OnceAppliedAndReplayedIdenticallyPasses) {
  std::vector<KeyedRequest> reqs = {Answered("a", "va", 2, 3), Answered("b", "vb", 3)};
  reqs.push_back(Unanswered("c", "vc"));                   // never answered, never applied: allowed
  reqs.push_back(Unanswered("a", "va2", /*reuse=*/true));  // refused, never applied
  EXPECT_TRUE(CheckExactlyOnce(reqs, {{"va", {2}}, {"vb", {3}}}).ok());
}

TEST(ExactlyOnceCheckTest, AppliedTwiceIsCaught) {
  absl::Status s = CheckExactlyOnce({Answered("a", "va", 2)}, {{"va", {2, 5}}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(s.message()).find("applied 2 times (revisions 2, 5)"), std::string::npos);
}

TEST(ExactlyOnceCheckTest, UnansweredButAppliedTwiceIsCaught) {
  EXPECT_FALSE(CheckExactlyOnce({Unanswered("a", "va")}, {{"va", {2, 3}}}).ok());
}

TEST(ExactlyOnceCheckTest, AnsweredButNeverAppliedIsLost) {
  absl::Status s = CheckExactlyOnce({Answered("a", "va", 2)}, {});
  EXPECT_NE(std::string(s.message()).find("lost write"), std::string::npos);
}

TEST(ExactlyOnceCheckTest, ReplayWithAnotherRevisionIsCaught) {
  KeyedRequest k = Answered("a", "va", 2);
  k.answers.emplace_back("resp@2", 4);
  EXPECT_FALSE(CheckExactlyOnce({k}, {{"va", {2}}}).ok());
}

TEST(ExactlyOnceCheckTest, ReplayWithAnotherResponseIsCaught) {
  KeyedRequest k = Answered("a", "va", 2);
  k.answers.emplace_back("other prev_kv", 2);
  absl::Status s = CheckExactlyOnce({k}, {{"va", {2}}});
  EXPECT_NE(std::string(s.message()).find("different response"), std::string::npos);
}

TEST(ExactlyOnceCheckTest, AnswerNamingTheWrongRevisionIsCaught) {
  EXPECT_FALSE(CheckExactlyOnce({Answered("a", "va", 3)}, {{"va", {2}}}).ok());
}

TEST(ExactlyOnceCheckTest, ReusedKeyAppliedIsCaught) {
  absl::Status s = CheckExactlyOnce({Answered("a", "va", 2), Unanswered("a", "va2", true)},
                                    {{"va", {2}}, {"va2", {3}}});
  EXPECT_NE(std::string(s.message()).find("reused"), std::string::npos);
}

}  // namespace
}  // namespace bw::check
