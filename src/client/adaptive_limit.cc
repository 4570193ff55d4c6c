#include "client/adaptive_limit.h"

#include <algorithm>

namespace bw::client {

absl::Status AdaptiveLimitOptions::Validate() const {
  if (!(min >= 1) || !(max >= min) || !(initial >= min && initial <= max) ||
      !(backoff > 0 && backoff < 1) || slow_us <= 0) {
    return absl::InvalidArgumentError(
        "adaptive limit: need 1 <= min <= initial <= max, 0 < backoff < 1, slow_us > 0");
  }
  return absl::OkStatus();
}

bool AdaptiveLimit::TryAcquire() {
  if (in_flight_ >= static_cast<int>(limit_)) {
    ++shed_;
    return false;
  }
  ++in_flight_;
  return true;
}

void AdaptiveLimit::OnResult(int64_t latency_us, bool dropped) {
  // The limit is judged by how full it was while this call ran.
  const int in_flight = in_flight_;
  if (in_flight_ > 0) --in_flight_;
  // Calls sent before the last cut answer with what the old limit did to
  // the server: one cut per overload, not one per dropped call.
  const bool sent_before_cut = sent_before_cut_ > 0;
  if (sent_before_cut_ > 0) --sent_before_cut_;
  if (dropped || latency_us >= o_.slow_us) {
    if (!sent_before_cut) {
      limit_ = std::max(o_.min, limit_ * o_.backoff);
      sent_before_cut_ = in_flight_;
    }
  } else if (in_flight * 2 >= static_cast<int>(limit_)) {
    // Additive increase, about one per window of successful calls; only a
    // limit in use is raised (idle capacity proves nothing).
    limit_ = std::min(o_.max, limit_ + 1.0 / limit_);
  }
}

}  // namespace bw::client
