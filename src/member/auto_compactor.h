// etcd's automatic compaction (--auto-compaction-mode and
// --auto-compaction-retention), as etcd 3.4 runs it, on the member's clock:
//
//  - periodic, retention T: the revision is recorded every min(T, 1h) / 10;
//    once T has passed since the start (then every min(T, 1h) after the last
//    success) the member compacts at the oldest revision recorded in the
//    last T — so about T of history is kept.
//  - revision, retention N: every 5 minutes the member compacts at the
//    current revision - N (when that is positive and moved on).
//
// Only the leader compacts (the others keep recording, as etcd's paused
// compactors do, so a new leader has the window at hand); the compaction is
// an ordinary Compaction entry in the log, applied by every member alike.
// A compaction refused because the revision is compacted already counts as
// done, as in etcd.
//
// Pure: times are passed in. Thread: the member's loop; owned by the member.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

namespace bw::member {

struct AutoCompaction {
  enum class Mode { kPeriodic, kRevision };
  Mode mode = Mode::kPeriodic;
  // periodic: microseconds of history kept; revision: revisions kept. 0: off.
  // (Parsed from etcd's flags by server::ParseAutoCompaction.)
  int64_t retention = 0;
  bool enabled() const { return retention > 0; }
};

class AutoCompactor {
 public:
  // How often revision mode looks (etcd's revInterval).
  static constexpr int64_t kRevisionCheckUs = 5 * 60 * 1'000'000LL;
  static constexpr int64_t kHourUs = 3'600'000'000LL;

  AutoCompactor(AutoCompaction options, int64_t now_us);

  // Called often (every heartbeat) with the current revision. Returns the
  // revision to compact at when one is due on this member (a leader), at
  // most one at a time until Done.
  std::optional<int64_t> Step(int64_t now_us, int64_t revision, bool leader);
  // The compaction Step asked for was applied (or was compacted already):
  // ok; or it failed (no leader, say): retried at the next interval.
  void Done(bool ok, int64_t now_us);

 private:
  std::optional<int64_t> StepPeriodic(int64_t now_us, int64_t revision, bool leader);
  std::optional<int64_t> StepRevision(int64_t now_us, int64_t revision, bool leader);

  const AutoCompaction o_;
  bool in_flight_ = false;
  int64_t next_look_us_;
  // periodic: revisions recorded every retry interval, oldest first;
  // invariant: at most retentions_ of them.
  std::deque<int64_t> revs_;
  int64_t retry_us_ = 0;
  int64_t interval_us_ = 0;
  size_t retentions_ = 0;
  int64_t last_success_us_;
  int64_t wait_us_ = 0;  // the period first, then the interval
  // revision: the last revision compacted at by this compactor.
  int64_t last_revision_ = 0;
  int64_t asked_ = 0;
};

}  // namespace bw::member
