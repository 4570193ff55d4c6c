#include "env/real/real_env.h"

#include <chrono>
#include <random>
#include <utility>

#include "core/assert.h"

namespace bw::env {

namespace {

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
