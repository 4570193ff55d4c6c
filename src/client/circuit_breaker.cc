#include "client/circuit_breaker.h"

#include "absl/strings/str_cat.h"

namespace bw::client {

const char* BreakerStateName(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
  }
  return "?";
}

absl::Status CircuitBreakerOptions::Validate() const {
  if (window_size < 1 || minimum_calls < 1 || half_open_calls < 1) {
    return absl::InvalidArgumentError(
        "circuit breaker: window_size, minimum_calls and half_open_calls must be at least 1");
  }
  if (!(failure_rate_threshold > 0 && failure_rate_threshold <= 100) ||
      !(slow_rate_threshold > 0 && slow_rate_threshold <= 100)) {
    return absl::InvalidArgumentError(
        "circuit breaker: rate thresholds are percentages in (0, 100]");
  }
  if (slow_call_us <= 0 || wait_in_open_us < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("circuit breaker: slow_call_us must be positive and wait_in_open_us not "
                     "negative (got ",
                     slow_call_us, ", ", wait_in_open_us, ")"));
  }
  return absl::OkStatus();
}

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions o, Listener listener)
    : o_(o), listener_(std::move(listener)) {}

void CircuitBreaker::Transition(BreakerState to, int64_t now_us) {
  BreakerState from = state_;
  state_ = to;
  window_.clear();
  probes_ = Bucket{};
  probes_out_ = 0;
  if (to == BreakerState::kOpen) {
    opened_at_us_ = now_us;
    ++opened_;
  }
  if (listener_) listener_(from, to);
}

bool CircuitBreaker::TryAcquire(int64_t now_us) {
  if (state_ == BreakerState::kOpen) {
    if (now_us - opened_at_us_ < o_.wait_in_open_us) {
      ++refused_;
      return false;
    }
    Transition(BreakerState::kHalfOpen, now_us);
  }
  if (state_ == BreakerState::kHalfOpen) {
    if (probes_out_ + probes_.calls >= o_.half_open_calls) {
      ++refused_;
      return false;
    }
    ++probes_out_;
  }
  return true;
}

void CircuitBreaker::Release() {
  if (state_ == BreakerState::kHalfOpen && probes_out_ > 0) --probes_out_;
}

void CircuitBreaker::Trim(int64_t now_us) {
  if (o_.window == CircuitBreakerOptions::Window::kCount) {
    while (static_cast<int>(window_.size()) > o_.window_size)
      window_.pop_front();
  } else {
    int64_t second = now_us / 1'000'000;
    while (!window_.empty() && window_.front().second <= second - o_.window_size)
      window_.pop_front();
  }
}

void CircuitBreaker::Totals(int* calls, int* failures, int* slow) const {
  *calls = *failures = *slow = 0;
  if (state_ == BreakerState::kHalfOpen) {
    *calls = probes_.calls;
    *failures = probes_.failures;
    *slow = probes_.slow;
    return;
  }
  for (const Bucket& b : window_) {
    *calls += b.calls;
    *failures += b.failures;
    *slow += b.slow;
  }
}

double CircuitBreaker::failure_rate() const {
  int calls, failures, slow;
  Totals(&calls, &failures, &slow);
  return calls == 0 ? 0 : 100.0 * failures / calls;
}

int CircuitBreaker::calls_in_window() const {
  int calls, failures, slow;
  Totals(&calls, &failures, &slow);
  return calls;
}

double CircuitBreaker::slow_rate() const {
  int calls, failures, slow;
  Totals(&calls, &failures, &slow);
  return calls == 0 ? 0 : 100.0 * slow / calls;
}

void CircuitBreaker::OnResult(int64_t now_us, int64_t duration_us, bool failed) {
  const bool slow = duration_us >= o_.slow_call_us;
  switch (state_) {
    case BreakerState::kOpen:
      // A call permitted before the breaker opened: it no longer counts.
      return;
    case BreakerState::kHalfOpen: {
      if (probes_out_ > 0) --probes_out_;
      ++probes_.calls;
      probes_.failures += failed ? 1 : 0;
      probes_.slow += slow ? 1 : 0;
      if (probes_.calls < o_.half_open_calls) return;
      bool bad =
          failure_rate() >= o_.failure_rate_threshold || slow_rate() >= o_.slow_rate_threshold;
      Transition(bad ? BreakerState::kOpen : BreakerState::kClosed, now_us);
      return;
    }
    case BreakerState::kClosed: {
      int64_t second = now_us / 1'000'000;
      if (o_.window == CircuitBreakerOptions::Window::kCount || window_.empty() ||
          window_.back().second != second) {
        window_.push_back(Bucket{second, 0, 0, 0});
      }
      Bucket& b = window_.back();
      ++b.calls;
      b.failures += failed ? 1 : 0;
      b.slow += slow ? 1 : 0;
      Trim(now_us);
      int calls, failures, slow_calls;
      Totals(&calls, &failures, &slow_calls);
      if (calls >= o_.minimum_calls &&
          (failure_rate() >= o_.failure_rate_threshold || slow_rate() >= o_.slow_rate_threshold)) {
        Transition(BreakerState::kOpen, now_us);
      }
      return;
    }
  }
}

}  // namespace bw::client
