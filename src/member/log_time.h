// A member's view of log time, the clock the state machine decides lease
// and idempotency-record expiry by, and the leader's decision of when to
// move it on. Production (server::EtcdServer) and the simulator's tests use
// this one class, on env::Clock alone.
//
// Log time advances only through the log: the leader proposes Tick entries,
// and every entry is stamped with the leader's cluster time when it is
// appended (raft::Entry::time_us), which the state machine takes as the
// entry's time. Between ticks a member reckons log time as the log time it
// last saw advance plus what its own monotonic clock measured since: that
// reckoning only fills in remaining TTLs for clients and decides when the
// leader ticks; no expiry depends on it.
//
// Thread: the member's loop thread only. Owned by the member.
#pragma once

#include <cstdint>
#include <optional>

#include "env/env.h"

namespace bw::kv {
class MvccStore;
}

namespace bw::member {

class LogTime {
 public:
  explicit LogTime(env::Clock& clock) : clock_(clock) {}

  // Called when an entry or a snapshot was applied: `log_time_us` is the
  // state's log time now. Notes when it moved.
  void Observe(int64_t log_time_us);
  // Log time now, as this member reckons it (see above). Only durations of
  // this member's clock are used, never its reading against another's.
  int64_t Now(int64_t log_time_us);

  // On the leader, once a heartbeat: the time to put in a Tick entry when
  // one is due — a lease's expiry has passed, or a second went by since the
  // last tick while leases exist (ten seconds with only idempotency answers
  // kept) — and none is in flight. The caller proposes it and calls
  // TickDone when the proposal is answered.
  std::optional<int64_t> TickDue(const kv::MvccStore& state);
  void TickDone() { tick_in_flight_ = false; }

  static constexpr int64_t kTickEveryUsWithLeases = 1'000'000;
  static constexpr int64_t kTickEveryUsWithRecords = 10'000'000;

 private:
  env::Clock& clock_;
  // Invariant: seen_at_us_ is this member's clock when seen_us_ was first
  // observed; -1 before anything was.
  int64_t seen_us_ = -1;
  int64_t seen_at_us_ = 0;
  int64_t last_tick_at_us_ = 0;  // this member's clock
  bool tick_in_flight_ = false;
};

}  // namespace bw::member
