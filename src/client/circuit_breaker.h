// A circuit breaker per endpoint, with resilience4j's semantics:
//
//   CLOSED     calls pass; outcomes go into a sliding window (the last N
//              calls, or the calls of the last N seconds). Once the window
//              holds at least `minimum_calls`, a failure rate or a slow-call
//              rate at or above its threshold opens the breaker.
//   OPEN       calls are refused at once, for `wait_in_open_us`.
//   HALF_OPEN  then up to `half_open_calls` probes pass (more are refused);
//              when all of them have answered, their failure and slow rates
//              decide: below both thresholds closes, otherwise it opens again.
//
// A call is slow when it takes at least `slow_call_us`, whether it failed
// or not. Deterministic: time is passed in; transitions are reported to a
// listener and counted.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "core/status.h"

namespace bw::client {

enum class BreakerState { kClosed, kOpen, kHalfOpen };
const char* BreakerStateName(BreakerState s);

struct CircuitBreakerOptions {
  enum class Window { kCount, kTime };
  Window window = Window::kCount;
  // Calls (kCount) or seconds (kTime).
  int window_size = 100;
  int minimum_calls = 20;
  double failure_rate_threshold = 50;  // percent
  double slow_rate_threshold = 100;    // percent (100: slow calls alone never open)
  int64_t slow_call_us = 2'000'000;
  int64_t wait_in_open_us = 5'000'000;
  int half_open_calls = 5;

  [[nodiscard]] absl::Status Validate() const;
};

class CircuitBreaker {
 public:
  using Listener = std::function<void(BreakerState from, BreakerState to)>;

  explicit CircuitBreaker(CircuitBreakerOptions o, Listener listener = nullptr);

  // Asks to make a call now. False: refused (open, or half-open with every
  // probe out); the call must not be made and nothing is recorded.
  bool TryAcquire(int64_t now_us);
  // The outcome of a call that was permitted.
  void OnResult(int64_t now_us, int64_t duration_us, bool failed);
  // A permitted call that was never made (cancelled before it started).
  void Release();

  BreakerState state() const { return state_; }
  // Over the current window (closed) or the probes so far (half-open).
  double failure_rate() const;
  double slow_rate() const;
  // Calls in the current window (closed) or probes answered (half-open).
  int calls_in_window() const;
  uint64_t refused() const { return refused_; }
  uint64_t opened() const { return opened_; }

 private:
  struct Bucket {
    int64_t second = 0;
    int calls = 0;
    int failures = 0;
    int slow = 0;
  };

  void Transition(BreakerState to, int64_t now_us);
  void Trim(int64_t now_us);
  void Totals(int* calls, int* failures, int* slow) const;

  CircuitBreakerOptions o_;
  Listener listener_;
  BreakerState state_ = BreakerState::kClosed;
  int64_t opened_at_us_ = 0;
  // Closed: one bucket per call (kCount) or per second (kTime).
  std::deque<Bucket> window_;
  // Half-open: probes let through, and their outcomes.
  int probes_out_ = 0;
  Bucket probes_;
  uint64_t refused_ = 0;
  uint64_t opened_ = 0;
};

}  // namespace bw::client
