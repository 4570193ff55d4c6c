// UUIDv7 idempotency keys (RFC 9562): the layout (version 7, variant 10),
// the time prefix in Unix milliseconds, uniqueness over many draws and
// threads, and order by creation time across milliseconds.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/client.h"
#include "env/real/deadline.h"

namespace {

uint64_t MillisOf(const std::string& k) {
  return std::stoull(k.substr(0, 8) + k.substr(9, 4), nullptr, 16);
}

TEST(IdempotencyKeyTest, IsAUuidV7WithTheTimeInFront) {
  int64_t before = bw::env::UnixMillisNow();
  std::string k = bulwark::NewIdempotencyKey();
  int64_t after = bw::env::UnixMillisNow();
  ASSERT_EQ(k.size(), 36u) << k;
  for (int dash : {8, 13, 18, 23})
    EXPECT_EQ(k[dash], '-') << k;
  EXPECT_EQ(k[14], '7') << k;                                          // version
  EXPECT_NE(std::string("89ab").find(k[19]), std::string::npos) << k;  // variant 10
  uint64_t ms = MillisOf(k);
  EXPECT_GE(ms, static_cast<uint64_t>(before));
  EXPECT_LE(ms, static_cast<uint64_t>(after));
}

TEST(IdempotencyKeyTest, NeverRepeatsAcrossThreads) {
  std::vector<std::vector<std::string>> per(4);
  std::vector<std::thread> threads;
  for (auto& v : per) {
    threads.emplace_back([&v] {
      for (int i = 0; i < 50'000; ++i)
        v.push_back(bulwark::NewIdempotencyKey());
    });
  }
  for (auto& t : threads)
    t.join();
  std::set<std::string> all;
  for (auto& v : per)
    all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 200'000u);
}

TEST(IdempotencyKeyTest, LaterMillisecondsSortLater) {
  std::string a = bulwark::NewIdempotencyKey();
  int64_t t = bw::env::UnixMillisNow();
  while (bw::env::UnixMillisNow() < t + 2)
    std::this_thread::yield();
  std::string b = bulwark::NewIdempotencyKey();
  EXPECT_LT(a, b);
}

}  // namespace
