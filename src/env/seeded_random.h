// xoshiro256** seeded through SplitMix64: the random stream of every Env.
// The simulator seeds it from the run's seed; RealEnv from the OS once.
#pragma once

#include <cstdint>

#include "env/env.h"

namespace bw::env {

class SeededRandom : public Random {
 public:
  explicit SeededRandom(uint64_t seed);
  uint64_t Next() override;

 private:
  // Invariant: not all zero.
  uint64_t s_[4];
};

}  // namespace bw::env
