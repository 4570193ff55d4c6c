#include "member/log_time.h"

#include "core/assert.h"
#include "kv/mvcc.h"

namespace bw::member {

void LogTime::Observe(int64_t log_time_us) {
  BW_ASSERT_GE(log_time_us, 0);
  if (log_time_us == seen_us_) return;
  seen_us_ = log_time_us;
  seen_at_us_ = clock_.NowMicros();
}

int64_t LogTime::Now(int64_t log_time_us) {
  Observe(log_time_us);
  const int64_t now = seen_us_ + (clock_.NowMicros() - seen_at_us_);
  BW_ASSERT_GE(now, log_time_us);
  return now;
}

std::optional<int64_t> LogTime::TickDue(const kv::MvccStore& state) {
  if (tick_in_flight_ || !state.needs_log_time()) return std::nullopt;
  const int64_t now = Now(state.log_time_us());
  const int64_t local = clock_.NowMicros();
  const int64_t every_us = state.has_leases() ? kTickEveryUsWithLeases : kTickEveryUsWithRecords;
  if (now < state.next_expiry_us() && local - last_tick_at_us_ < every_us) return std::nullopt;
  tick_in_flight_ = true;
  last_tick_at_us_ = local;
  return now;
}

}  // namespace bw::member
