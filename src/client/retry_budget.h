// A retry budget (after Finagle and gRPC's retry throttling): retries may be
// at most a fraction of requests, plus a small floor per second, so a failing
// cluster sees a bounded amount of extra load instead of a retry storm.
//
// A token bucket: every request deposits `ratio` tokens, time deposits
// `min_per_second` tokens per second, a retry (or a hedge) takes one, and the
// bucket holds at most `max_tokens`. It starts holding the one-second floor.
// Deterministic: time is passed in.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace bw::client {

struct RetryBudgetOptions {
  double ratio = 0.2;
  double min_per_second = 10;
  double max_tokens = 100;

  [[nodiscard]] absl::Status Validate() const;
};

class RetryBudget {
 public:
  RetryBudget(RetryBudgetOptions o, int64_t now_us);

  // A first attempt is being sent.
  void OnRequest(int64_t now_us);
  // Takes a token for a retry or a hedge; false: the budget is spent, do
  // not retry.
  bool TryRetry(int64_t now_us);

  double tokens(int64_t now_us);
  uint64_t requests() const { return requests_; }
  uint64_t retries() const { return retries_; }
  uint64_t refused() const { return refused_; }

 private:
  void Refill(int64_t now_us);

  RetryBudgetOptions o_;
  double tokens_;
  int64_t last_us_;
  uint64_t requests_ = 0;
  uint64_t retries_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace bw::client
