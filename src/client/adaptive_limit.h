// An adaptive concurrency limit (AIMD, as TCP and Netflix's concurrency-
// limits do it): the number of calls allowed in flight grows by about one per
// window of calls that succeed quickly with the limit in use, and is cut by
// `backoff` (once per overload: not again for the calls already sent) when
// calls are dropped — they failed with
// overload, timed out, or took longer than `slow_us`. It finds the load a
// server can take without being told, and then saw-tooths just under it.
// Deterministic; no clock: latencies are passed in.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace bw::client {

struct AdaptiveLimitOptions {
  double initial = 20;
  double min = 1;
  double max = 1000;
  double backoff = 0.9;
  int64_t slow_us = 500'000;

  [[nodiscard]] absl::Status Validate() const;
};

class AdaptiveLimit {
 public:
  explicit AdaptiveLimit(AdaptiveLimitOptions o) : o_(o), limit_(o.initial) {}

  // False: the limit is reached; shed the call.
  bool TryAcquire();
  // The outcome of an acquired call: `dropped` for overload or timeout.
  void OnResult(int64_t latency_us, bool dropped);

  int limit() const { return static_cast<int>(limit_); }
  int in_flight() const { return in_flight_; }
  uint64_t shed() const { return shed_; }

 private:
  AdaptiveLimitOptions o_;
  double limit_;
  int in_flight_ = 0;
  // Calls still in flight that were sent before the last cut.
  int sent_before_cut_ = 0;
  uint64_t shed_ = 0;
};

}  // namespace bw::client
