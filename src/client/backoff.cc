#include "client/backoff.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace bw::client {

absl::Status BackoffOptions::Validate() const {
  if (base_us <= 0 || max_us < base_us) {
    return absl::InvalidArgumentError(
        absl::StrCat("backoff: base must be positive and max at least base (base ", base_us,
                     " us, max ", max_us, " us)"));
  }
  if (!(multiplier >= 1.0)) {
    return absl::InvalidArgumentError("backoff: the multiplier must be at least 1");
  }
  return absl::OkStatus();
}

int64_t BackoffCeiling(const BackoffOptions& o, int attempt) {
  double ceiling = static_cast<double>(o.base_us) * std::pow(o.multiplier, std::max(attempt, 0));
  if (!(ceiling < static_cast<double>(o.max_us))) return o.max_us;  // also catches inf
  return std::max<int64_t>(1, static_cast<int64_t>(ceiling));
}

std::optional<int64_t> RetryDelay(const BackoffOptions& o, int attempt,
                                  std::optional<int64_t> pushback_us, env::Random& random) {
  if (pushback_us.has_value()) {
    if (*pushback_us < 0) return std::nullopt;
    return *pushback_us;
  }
  int64_t ceiling = BackoffCeiling(o, attempt);
  return static_cast<int64_t>(random.Below(static_cast<uint64_t>(ceiling) + 1));
}

}  // namespace bw::client
