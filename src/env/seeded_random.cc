#include "env/seeded_random.h"

#include "core/assert.h"
#include "core/splitmix.h"

namespace bw::env {

namespace {
uint64_t Rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}
}  // namespace

SeededRandom::SeededRandom(uint64_t seed) {
  for (uint64_t& word : s_)
    word = core::SplitMix64(seed);
  // SplitMix64 is a bijection of its counter, so four consecutive outputs
  // are never all zero; keep the invariant checked anyway.
  BW_ASSERT((s_[0] | s_[1] | s_[2] | s_[3]) != 0);
}

uint64_t SeededRandom::Next() {
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

}  // namespace bw::env
