// Property tests (RapidCheck) of the resilience policies: each is a small
// deterministic state machine, so random sequences of calls, outcomes and
// time can be thrown at it and its promises checked after every step.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "client/adaptive_limit.h"
#include "client/backoff.h"
#include "client/bulkhead.h"
#include "client/circuit_breaker.h"
#include "client/retry_budget.h"
#include "env/seeded_random.h"

namespace bw::client {
namespace {

// --- backoff ---------------------------------------------------------------

RC_GTEST_PROP(BackoffProperty, DelaysStayWithinTheGrowingCeiling, ()) {
  BackoffOptions o;
  o.base_us = *rc::gen::inRange<int64_t>(1, 1'000'000);
  o.max_us = o.base_us + *rc::gen::inRange<int64_t>(0, 60'000'000);
  o.multiplier = 1.0 + *rc::gen::inRange(0, 300) / 100.0;
  RC_ASSERT(o.Validate().ok());
  env::SeededRandom random(*rc::gen::arbitrary<uint64_t>());
  int64_t last_ceiling = 0;
  for (int attempt = 0; attempt < 80; ++attempt) {
    int64_t ceiling = BackoffCeiling(o, attempt);
    RC_ASSERT(ceiling >= last_ceiling);  // never shrinks
    RC_ASSERT(ceiling <= o.max_us);
    RC_ASSERT(ceiling >= std::min<int64_t>(o.base_us, o.max_us));
    last_ceiling = ceiling;
    std::optional<int64_t> d = RetryDelay(o, attempt, std::nullopt, random);
    RC_ASSERT(d.has_value());
    RC_ASSERT(*d >= 0 && *d <= ceiling);  // full jitter
  }
  // Once base * multiplier^attempt passes max, the ceiling is max.
  if (static_cast<double>(o.base_us) * std::pow(o.multiplier, 79) >=
      static_cast<double>(o.max_us)) {
    RC_ASSERT(last_ceiling == o.max_us);
  }
}

TEST(BackoffTest, PushbackWinsAndNegativePushbackMeansStop) {
  BackoffOptions o;
  env::SeededRandom random(7);
  EXPECT_EQ(RetryDelay(o, 3, int64_t{1234}, random), std::optional<int64_t>(1234));
  EXPECT_EQ(RetryDelay(o, 0, int64_t{-1}, random), std::nullopt);
  BackoffOptions bad;
  bad.max_us = 1;
  EXPECT_FALSE(bad.Validate().ok());
}

TEST(BackoffTest, JitterSpreadsTheDelays) {
  // Clients that failed together must not retry together: 1,000 draws of
  // the fifth retry cover the range (each tenth of it gets some).
  BackoffOptions o;
  env::SeededRandom random(1);
  int64_t ceiling = BackoffCeiling(o, 4);
  std::vector<int> tenths(10, 0);
  for (int i = 0; i < 1000; ++i) {
    int64_t d = *RetryDelay(o, 4, std::nullopt, random);
    ++tenths[std::min<int64_t>(9, d * 10 / (ceiling + 1))];
  }
  for (int n : tenths)
    EXPECT_GT(n, 50);
}

// --- retry budget ----------------------------------------------------------

RC_GTEST_PROP(RetryBudgetProperty, RetriesNeverExceedTheBudget, ()) {
  RetryBudgetOptions o;
  o.ratio = *rc::gen::inRange(0, 100) / 100.0;
  o.min_per_second = *rc::gen::inRange(0, 50);
  o.max_tokens = *rc::gen::inRange(1, 200);
  RetryBudget b(o, 0);
  int64_t now = 0;
  const int steps = *rc::gen::inRange(1, 2000);
  for (int i = 0; i < steps; ++i) {
    switch (*rc::gen::inRange(0, 3)) {
      case 0:
        b.OnRequest(now);
        break;
      case 1:
        b.TryRetry(now);
        break;
      default:
        now += *rc::gen::inRange<int64_t>(0, 500'000);
    }
    RC_ASSERT(b.tokens(now) <= o.max_tokens + 1e-9);
    // The promise: retries <= the initial floor + ratio * requests + the
    // per-second floor over the time elapsed.
    double allowed = std::min(o.max_tokens, o.min_per_second) +
                     o.ratio * static_cast<double>(b.requests()) +
                     o.min_per_second * static_cast<double>(now) / 1e6;
    RC_ASSERT(static_cast<double>(b.retries()) <= allowed + 1e-6);
  }
}

TEST(RetryBudgetTest, AFailingClusterGetsAFractionOfRetries) {
  // Every request fails and wants a retry: in a second with 1,000 requests
  // and a 20 % budget (floor 10/s), about 210 retries pass, not 1,000.
  RetryBudget b(RetryBudgetOptions{0.2, 10, 100}, 0);
  int granted = 0;
  for (int i = 0; i < 1000; ++i) {
    int64_t now = i * 1000;
    b.OnRequest(now);
    granted += b.TryRetry(now) ? 1 : 0;
  }
  EXPECT_GE(granted, 200);
  EXPECT_LE(granted, 220);
  EXPECT_EQ(b.refused(), static_cast<uint64_t>(1000 - granted));
}

// --- circuit breaker ---------------------------------------------------------

CircuitBreakerOptions SmallBreaker() {
  CircuitBreakerOptions o;
  o.window_size = 10;
  o.minimum_calls = 5;
  o.failure_rate_threshold = 50;
  o.slow_rate_threshold = 80;
  o.slow_call_us = 100'000;
  o.wait_in_open_us = 1'000'000;
  o.half_open_calls = 3;
  return o;
}

RC_GTEST_PROP(CircuitBreakerProperty, TransitionsAndPermitsFollowTheRules, ()) {
  CircuitBreakerOptions o = SmallBreaker();
  if (*rc::gen::arbitrary<bool>()) {
    o.window = CircuitBreakerOptions::Window::kTime;
    o.window_size = 3;
  }
  std::vector<std::pair<BreakerState, BreakerState>> transitions;
  CircuitBreaker cb(
      o, [&](BreakerState from, BreakerState to) { transitions.emplace_back(from, to); });
  int64_t now = 0;
  int64_t opened_at = -1;
  int outstanding = 0;  // permitted and not yet answered
  const int steps = *rc::gen::inRange(1, 600);
  for (int i = 0; i < steps; ++i) {
    size_t seen = transitions.size();
    BreakerState before = cb.state();
    switch (*rc::gen::inRange(0, 4)) {
      case 0: {
        bool ok = cb.TryAcquire(now);
        if (before == BreakerState::kOpen && now - opened_at < o.wait_in_open_us) {
          RC_ASSERT(!ok);  // open refuses until the wait is over
        }
        if (before == BreakerState::kClosed) RC_ASSERT(ok);  // closed never refuses
        outstanding += ok ? 1 : 0;
        break;
      }
      case 1:
      case 2:
        if (outstanding > 0) {
          --outstanding;
          bool failed = *rc::gen::inRange(0, 100) < 60;
          int64_t took = *rc::gen::inRange<int64_t>(0, 200'000);
          cb.OnResult(now, took, failed);
        }
        break;
      default:
        now += *rc::gen::inRange<int64_t>(0, 700'000);
    }
    for (size_t t = seen; t < transitions.size(); ++t) {
      auto [from, to] = transitions[t];
      // The only edges: closed->open, open->half-open, half-open->open or closed.
      RC_ASSERT((from == BreakerState::kClosed && to == BreakerState::kOpen) ||
                (from == BreakerState::kOpen && to == BreakerState::kHalfOpen) ||
                (from == BreakerState::kHalfOpen && to != BreakerState::kHalfOpen));
      if (to == BreakerState::kOpen) opened_at = now;
      if (to == BreakerState::kHalfOpen) RC_ASSERT(now - opened_at >= o.wait_in_open_us);
    }
    // Closed never holds a window that should have opened it.
    if (cb.state() == BreakerState::kClosed && cb.calls_in_window() >= o.minimum_calls) {
      RC_ASSERT(cb.failure_rate() < o.failure_rate_threshold);
      RC_ASSERT(cb.slow_rate() < o.slow_rate_threshold);
    }
  }
}

RC_GTEST_PROP(CircuitBreakerProperty, HalfOpenLetsThroughAtMostItsProbes, ()) {
  CircuitBreakerOptions o = SmallBreaker();
  CircuitBreaker cb(o);
  for (int i = 0; i < 5; ++i) {
    RC_ASSERT(cb.TryAcquire(0));
    cb.OnResult(0, 10, /*failed=*/true);
  }
  RC_ASSERT(cb.state() == BreakerState::kOpen);
  int64_t now = o.wait_in_open_us;
  int granted = 0;
  const int asks = *rc::gen::inRange(1, 50);
  for (int i = 0; i < asks; ++i)
    granted += cb.TryAcquire(now) ? 1 : 0;
  RC_ASSERT(cb.state() == BreakerState::kHalfOpen);
  RC_ASSERT(granted == std::min(asks, o.half_open_calls));
}

TEST(CircuitBreakerTest, OpensOnFailuresThenProbesAndCloses) {
  CircuitBreakerOptions o = SmallBreaker();
  std::vector<std::string> log;
  CircuitBreaker cb(o, [&](BreakerState from, BreakerState to) {
    log.push_back(std::string(BreakerStateName(from)) + "->" + BreakerStateName(to));
  });
  // Four failures: below the minimum number of calls, still closed.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(cb.TryAcquire(0));
    cb.OnResult(0, 1000, true);
  }
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
  ASSERT_TRUE(cb.TryAcquire(0));
  cb.OnResult(0, 1000, true);
  EXPECT_EQ(cb.state(), BreakerState::kOpen);
  EXPECT_FALSE(cb.TryAcquire(999'999));
  // The wait is over: three probes, all fine: closed again.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(cb.TryAcquire(1'000'000));
  EXPECT_FALSE(cb.TryAcquire(1'000'000));
  for (int i = 0; i < 3; ++i)
    cb.OnResult(1'000'100, 1000, false);
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
  EXPECT_EQ(log,
            (std::vector<std::string>{"closed->open", "open->half-open", "half-open->closed"}));
  EXPECT_EQ(cb.opened(), 1u);
  EXPECT_EQ(cb.refused(), 2u);
}

TEST(CircuitBreakerTest, SlowCallsOpenItAndAFailedProbeReopens) {
  CircuitBreakerOptions o = SmallBreaker();
  CircuitBreaker cb(o);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(cb.TryAcquire(0));
    cb.OnResult(0, 150'000, false);  // successful but slow
  }
  EXPECT_EQ(cb.state(), BreakerState::kOpen);
  ASSERT_TRUE(cb.TryAcquire(2'000'000));
  cb.OnResult(2'000'000, 10, true);
  ASSERT_TRUE(cb.TryAcquire(2'000'000));
  cb.OnResult(2'000'000, 10, true);
  ASSERT_TRUE(cb.TryAcquire(2'000'000));
  cb.OnResult(2'000'000, 10, false);
  EXPECT_EQ(cb.state(), BreakerState::kOpen);  // 2 of 3 probes failed
  EXPECT_EQ(cb.opened(), 2u);
}

TEST(CircuitBreakerTest, TimeWindowForgetsOldFailures) {
  CircuitBreakerOptions o = SmallBreaker();
  o.window = CircuitBreakerOptions::Window::kTime;
  o.window_size = 2;  // seconds
  CircuitBreaker cb(o);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(cb.TryAcquire(0));
    cb.OnResult(0, 10, true);
  }
  // Three seconds later the old failures are out of the window: one more
  // failure among fresh successes does not open it.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(cb.TryAcquire(3'000'000));
    cb.OnResult(3'000'000, 10, false);
  }
  ASSERT_TRUE(cb.TryAcquire(3'000'000));
  cb.OnResult(3'000'000, 10, true);
  EXPECT_EQ(cb.state(), BreakerState::kClosed);
  EXPECT_DOUBLE_EQ(cb.failure_rate(), 20.0);
}

// --- bulkhead --------------------------------------------------------------

RC_GTEST_PROP(BulkheadProperty, NeverOverItsLimitAndNoWaiterServedLate, ()) {
  BulkheadOptions o;
  o.max_concurrent = *rc::gen::inRange(1, 8);
  o.max_queue = *rc::gen::inRange(0, 8);
  o.max_wait_us = *rc::gen::inRange<int64_t>(0, 1'000'000);
  Bulkhead b(o);
  int64_t now = 0;
  uint64_t next_id = 1;
  int holders = 0;
  std::map<uint64_t, int64_t> waiting;  // id -> deadline
  std::vector<uint64_t> order;          // queue order
  std::set<uint64_t> ended;             // granted, expired or cancelled: once each
  auto end = [&](uint64_t id) {
    RC_ASSERT(ended.insert(id).second);
    waiting.erase(id);
    order.erase(std::remove(order.begin(), order.end(), id), order.end());
  };
  const int steps = *rc::gen::inRange(1, 500);
  for (int i = 0; i < steps; ++i) {
    switch (*rc::gen::inRange(0, 4)) {
      case 0: {
        uint64_t id = next_id++;
        Bulkhead::Outcome out = b.Acquire(id, now);
        if (out == Bulkhead::Outcome::kGranted) {
          ++holders;
          ended.insert(id);
        } else if (out == Bulkhead::Outcome::kQueued) {
          waiting[id] = now + o.max_wait_us;
          order.push_back(id);
        }
        break;
      }
      case 1:
        if (holders > 0) {
          --holders;
          std::optional<uint64_t> next = b.Release(now);
          if (next.has_value()) {
            RC_ASSERT(waiting.count(*next));
            RC_ASSERT(waiting[*next] > now);  // not past its deadline
            for (uint64_t id : b.TakeExpired(now))
              end(id);
            RC_ASSERT(order.front() == *next);  // first come, first served
            end(*next);
            ++holders;
          }
        }
        break;
      case 2:
        for (uint64_t id : b.TakeExpired(now)) {
          RC_ASSERT(waiting.count(id) && waiting[id] <= now);
          end(id);
        }
        break;
      default:
        now += *rc::gen::inRange<int64_t>(0, 300'000);
    }
    RC_ASSERT(b.active() == holders);
    RC_ASSERT(b.active() <= o.max_concurrent);
    RC_ASSERT(static_cast<int>(b.queued()) <= o.max_queue);
  }
}

TEST(BulkheadTest, AFullBulkheadShedsInsteadOfQueueingForEver) {
  Bulkhead b(BulkheadOptions{2, 1, 100'000});
  EXPECT_EQ(b.Acquire(1, 0), Bulkhead::Outcome::kGranted);
  EXPECT_EQ(b.Acquire(2, 0), Bulkhead::Outcome::kGranted);
  EXPECT_EQ(b.Acquire(3, 0), Bulkhead::Outcome::kQueued);
  EXPECT_EQ(b.Acquire(4, 0), Bulkhead::Outcome::kRejected);  // the queue is full
  EXPECT_EQ(b.TakeExpired(100'000), std::vector<uint64_t>{3});
  EXPECT_EQ(b.Release(100'000), std::nullopt);
  EXPECT_EQ(b.rejected(), 1u);
}

// --- adaptive limit ----------------------------------------------------------

// A server that takes `capacity` calls at once: more than that and every
// call of the round is dropped. Each round the client sends as many calls as
// its limit allows (demand is unbounded), then all of them answer.
RC_GTEST_PROP(AdaptiveLimitProperty, ConvergesToTheServersCapacity, ()) {
  const int capacity = *rc::gen::inRange(5, 200);
  AdaptiveLimitOptions o;
  o.initial = *rc::gen::inRange(1, 400);
  o.max = 1000;
  RC_ASSERT(o.Validate().ok());
  AdaptiveLimit limit(o);
  for (int round = 0; round < 4000; ++round) {
    int sent = 0;
    while (sent < 5000 && limit.TryAcquire())
      ++sent;
    RC_ASSERT(sent == limit.in_flight());
    bool overloaded = sent > capacity;
    for (int i = 0; i < sent; ++i)
      limit.OnResult(overloaded ? 900'000 : 1000, overloaded);
    if (round >= 3000) {
      // Settled: a saw-tooth just under the capacity.
      RC_ASSERT(limit.limit() <= capacity + 1);
      RC_ASSERT(limit.limit() >= static_cast<int>(o.backoff * capacity) - 1);
    }
  }
}

}  // namespace
}  // namespace bw::client
