// A bulkhead: at most `max_concurrent` calls at once (per endpoint or per
// operation, one bulkhead each), with a bounded FIFO of waiters who give up
// after `max_wait_us`. A full queue, or a zero wait, refuses at once: load
// that cannot be served soon is shed instead of piling up.
//
// Deterministic: time is passed in; waiters are numbered by the caller and
// told when they are granted or expired, so a synchronous wrapper (a condition
// variable) and an asynchronous one (timers) can both sit on top.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "core/status.h"

namespace bw::client {

struct BulkheadOptions {
  int max_concurrent = 25;
  int max_queue = 100;
  int64_t max_wait_us = 0;  // 0: never wait

  [[nodiscard]] absl::Status Validate() const;
};

class Bulkhead {
 public:
  enum class Outcome { kGranted, kQueued, kRejected };

  explicit Bulkhead(BulkheadOptions o) : o_(o) {}

  // Asks for a slot for waiter `id` now: granted, queued (it will be named
  // by Release or Expire), or rejected.
  Outcome Acquire(uint64_t id, int64_t now_us);
  // A granted call ended. Returns the waiter granted the freed slot, if any
  // (waiters past their deadline are expired first, see TakeExpired).
  std::optional<uint64_t> Release(int64_t now_us);
  // Waiters whose deadline passed (now or during Release), oldest first;
  // they were not granted and must be told so.
  std::vector<uint64_t> TakeExpired(int64_t now_us);
  // A queued waiter gave up on its own (cancelled).
  void Cancel(uint64_t id);

  int active() const { return active_; }
  size_t queued() const { return queue_.size(); }
  uint64_t rejected() const { return rejected_; }

 private:
  struct Waiter {
    uint64_t id;
    int64_t deadline_us;
  };
  void ExpireUpTo(int64_t now_us);

  BulkheadOptions o_;
  int active_ = 0;
  std::deque<Waiter> queue_;
  std::vector<uint64_t> expired_;
  uint64_t rejected_ = 0;
};

}  // namespace bw::client
