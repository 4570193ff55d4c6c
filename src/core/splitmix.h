// SplitMix64: a tiny, fast generator whose whole state is one counter. Used
// to seed larger generators and where a pure function of a seed is needed.
#pragma once

#include <cstdint>

namespace bw::core {

// Advances `state` and returns the next output.
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace bw::core
