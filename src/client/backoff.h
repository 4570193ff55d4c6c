// Retry delays: exponential backoff with full jitter (each delay uniform in
// [0, min(cap, base * multiplier^attempt)]), so clients that failed together
// do not retry together; a server's pushback (gRPC's grpc-retry-pushback-ms)
// overrides the computed delay. Pure: randomness is injected.
#pragma once

#include <cstdint>
#include <optional>

#include "core/status.h"
#include "env/env.h"

namespace bw::client {

struct BackoffOptions {
  int64_t base_us = 50'000;
  int64_t max_us = 2'000'000;
  double multiplier = 2.0;

  [[nodiscard]] absl::Status Validate() const;
};

// The ceiling of the delay before retry number `attempt` (0: the first
// retry): min(max_us, base_us * multiplier^attempt).
int64_t BackoffCeiling(const BackoffOptions& o, int attempt);

// The delay before retry number `attempt`. With `pushback_us` (the server
// asked for a pause) that pause is taken exactly; a negative pushback means
// "do not retry" and gives nullopt.
std::optional<int64_t> RetryDelay(const BackoffOptions& o, int attempt,
                                  std::optional<int64_t> pushback_us, env::Random& random);

}  // namespace bw::client
