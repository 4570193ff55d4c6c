#include "client/retry_budget.h"

#include <algorithm>

namespace bw::client {

absl::Status RetryBudgetOptions::Validate() const {
  if (!(ratio >= 0) || !(min_per_second >= 0) || !(max_tokens >= 1)) {
    return absl::InvalidArgumentError(
        "retry budget: ratio and min_per_second must be at least 0, max_tokens at least 1");
  }
  return absl::OkStatus();
}

RetryBudget::RetryBudget(RetryBudgetOptions o, int64_t now_us)
    : o_(o), tokens_(std::min(o.max_tokens, o.min_per_second)), last_us_(now_us) {}

void RetryBudget::Refill(int64_t now_us) {
  if (now_us > last_us_) {
    tokens_ = std::min(o_.max_tokens,
                       tokens_ + o_.min_per_second * static_cast<double>(now_us - last_us_) / 1e6);
    last_us_ = now_us;
  }
}

void RetryBudget::OnRequest(int64_t now_us) {
  Refill(now_us);
  ++requests_;
  tokens_ = std::min(o_.max_tokens, tokens_ + o_.ratio);
}

bool RetryBudget::TryRetry(int64_t now_us) {
  Refill(now_us);
  if (tokens_ < 1.0) {
    ++refused_;
    return false;
  }
  tokens_ -= 1.0;
  ++retries_;
  return true;
}

double RetryBudget::tokens(int64_t now_us) {
  Refill(now_us);
  return tokens_;
}

}  // namespace bw::client
