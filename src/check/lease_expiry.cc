#include "check/lease_expiry.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "core/assert.h"

namespace bw::check {

void LeaseExpiryChecker::OnExtended(int64_t lease, int64_t ttl_s, int64_t sent_us) {
  BW_ASSERT_GT(ttl_s, 0);
  extensions_[lease].push_back({ttl_s, sent_us});
}

void LeaseExpiryChecker::OnRevoked(int64_t lease, int64_t at_us) {
  ++revocations_;
  auto it = extensions_.find(lease);
  if (it == extensions_.end()) return;
  for (const Extension& e : it->second) {
    if (e.sent_us > at_us) continue;  // sent after the revocation: it found no lease
    const double must_us = static_cast<double>(e.ttl_s) * 1e6 / max_rate_;
    const double lived_us = static_cast<double>(at_us - e.sent_us);
    const double ratio = lived_us / must_us;
    if (tightest_ == 0 || ratio < tightest_) tightest_ = ratio;
    if (lived_us < must_us && violation_.empty()) {
      violation_ = absl::StrFormat(
          "lease %d revoked early: extended to %d s by a request sent at %.3f s, revoked at "
          "%.3f s (%.3f s later; at least %.3f s with clocks up to %.2fx)",
          lease, e.ttl_s, e.sent_us / 1e6, at_us / 1e6, lived_us / 1e6, must_us / 1e6, max_rate_);
    }
  }
  extensions_.erase(it);
}

}  // namespace bw::check
