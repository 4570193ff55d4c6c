#include "env/real/real_env.h"

#include <chrono>
#include <random>
#include <utility>

#include "core/assert.h"

namespace bw::env {

namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t SeedFromDevice() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
}

}  // namespace

int64_t RealClock::NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

RealRandom::RealRandom() : RealRandom(SeedFromDevice()) {}

RealRandom::RealRandom(uint64_t seed) {
  for (uint64_t& word : s_)
    word = SplitMix64(seed);
  // splitmix64 is a bijection of its counter, so four consecutive outputs are
  // never all zero; keep the invariant checked anyway.
  BW_ASSERT((s_[0] | s_[1] | s_[2] | s_[3]) != 0);
}

uint64_t RealRandom::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

RealEnv::RealEnv(std::unique_ptr<Timers> timers, std::unique_ptr<Network> network)
    : timers_(std::move(timers)), network_(std::move(network)) {}

Timers& RealEnv::timers() {
  BW_ASSERT_MSG(timers_ != nullptr,
                "RealEnv::timers() called but no Timers was injected (the real event loop "
                "does not exist yet; pass one to the RealEnv constructor)");
  return *timers_;
}

Network& RealEnv::network() {
  BW_ASSERT_MSG(network_ != nullptr,
                "RealEnv::network() called but no Network was injected (the TCP transport "
                "does not exist yet; pass one to the RealEnv constructor)");
  return *network_;
}

}  // namespace bw::env
