#include "client/bulkhead.h"

#include <algorithm>

namespace bw::client {

absl::Status BulkheadOptions::Validate() const {
  if (max_concurrent < 1 || max_queue < 0 || max_wait_us < 0) {
    return absl::InvalidArgumentError(
        "bulkhead: max_concurrent must be at least 1, max_queue and max_wait_us not negative");
  }
  return absl::OkStatus();
}

void Bulkhead::ExpireUpTo(int64_t now_us) {
  // Deadlines are in arrival order (one max_wait for all): the front expires first.
  while (!queue_.empty() && queue_.front().deadline_us <= now_us) {
    expired_.push_back(queue_.front().id);
    queue_.pop_front();
  }
}

Bulkhead::Outcome Bulkhead::Acquire(uint64_t id, int64_t now_us) {
  ExpireUpTo(now_us);
  if (active_ < o_.max_concurrent && queue_.empty()) {
    ++active_;
    return Outcome::kGranted;
  }
  if (o_.max_wait_us > 0 && static_cast<int>(queue_.size()) < o_.max_queue) {
    queue_.push_back(Waiter{id, now_us + o_.max_wait_us});
    return Outcome::kQueued;
  }
  ++rejected_;
  return Outcome::kRejected;
}

std::optional<uint64_t> Bulkhead::Release(int64_t now_us) {
  if (active_ > 0) --active_;
  ExpireUpTo(now_us);
  if (queue_.empty() || active_ >= o_.max_concurrent) return std::nullopt;
  uint64_t id = queue_.front().id;
  queue_.pop_front();
  ++active_;
  return id;
}

std::vector<uint64_t> Bulkhead::TakeExpired(int64_t now_us) {
  ExpireUpTo(now_us);
  std::vector<uint64_t> out = std::move(expired_);
  expired_.clear();
  return out;
}

void Bulkhead::Cancel(uint64_t id) {
  queue_.erase(
      std::remove_if(queue_.begin(), queue_.end(), [id](const Waiter& w) { return w.id == id; }),
      queue_.end());
}

}  // namespace bw::client
