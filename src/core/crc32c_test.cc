// Proves CRC-32C correct against published check values (the standard
// "123456789" check and the RFC 3720 iSCSI vectors), that it extends across
// split points, and that the SSE4.2 and table implementations agree on random
// inputs of every length and alignment.
#include "core/crc32c.h"

#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace bw::core {
namespace {

TEST(Crc32cTest, CheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(internal::Crc32cSoftware("123456789", 0), 0xE3069283u);
  if (internal::Crc32cHardwareAvailable()) {
    EXPECT_EQ(internal::Crc32cHardware("123456789", 0), 0xE3069283u);
  }
}

TEST(Crc32cTest, Empty) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("", 0x12345678u), 0x12345678u);
}

// RFC 3720, appendix B.4.
TEST(Crc32cTest, Rfc3720Vectors) {
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s)
    c = static_cast<char>(rng());
  return s;
}

TEST(Crc32cTest, Extends) {
  std::mt19937_64 rng(1);
  for (int iter = 0; iter < 200; ++iter) {
    const std::string s = RandomBytes(rng, rng() % 100);
    const size_t split = s.empty() ? 0 : rng() % (s.size() + 1);
    const std::string_view a = std::string_view(s).substr(0, split);
    const std::string_view b = std::string_view(s).substr(split);
    EXPECT_EQ(Crc32c(b, Crc32c(a)), Crc32c(s));
    EXPECT_EQ(internal::Crc32cSoftware(b, internal::Crc32cSoftware(a, 0)),
              internal::Crc32cSoftware(s, 0));
  }
}

TEST(Crc32cTest, DetectsSingleBitFlip) {
  std::mt19937_64 rng(2);
  const std::string s = RandomBytes(rng, 1000);
  const uint32_t crc = Crc32c(s);
  for (size_t bit = 0; bit < s.size() * 8; bit += 7) {
    std::string t = s;
    t[bit / 8] = static_cast<char>(t[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_NE(Crc32c(t), crc) << bit;
  }
}

TEST(Crc32cTest, HardwareMatchesSoftware) {
  if (!internal::Crc32cHardwareAvailable()) GTEST_SKIP() << "no SSE4.2";
  std::mt19937_64 rng(3);
  const std::string buf = RandomBytes(rng, 4096 + 16);
  for (int iter = 0; iter < 2000; ++iter) {
    // Every length up to 300, then random ones; random alignment and seed.
    const size_t len = iter < 300 ? iter : rng() % 4096;
    const size_t offset = rng() % 16;
    const auto init = static_cast<uint32_t>(rng());
    const std::string_view s = std::string_view(buf).substr(offset, len);
    ASSERT_EQ(internal::Crc32cHardware(s, init), internal::Crc32cSoftware(s, init))
        << "len=" << len << " offset=" << offset;
  }
}

}  // namespace
}  // namespace bw::core
