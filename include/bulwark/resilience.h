// The resilience policies of libbulwark, for any call — a bulwark RPC (the
// Client uses them on every call) or a program's own call to another
// service, such as a payment gateway over HTTP.
//
// Each policy is a deterministic state machine (src/client/): time and
// randomness come from outside, so the same code runs in a real program, in
// the simulator and under property tests. The Pipeline composes them around
// one asynchronous call on a single thread (see client/pipeline.h for the
// order and the contracts); Guard runs the same pipeline around a blocking
// call made on the caller's thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "client/pipeline.h"

namespace bulwark {

using bw::client::AdaptiveLimitOptions;
using bw::client::Attempt;
using bw::client::AttemptResult;
using bw::client::BackoffOptions;
using bw::client::BreakerState;
using bw::client::BulkheadOptions;
using bw::client::CallKind;
using bw::client::CallResult;
using bw::client::CallSpec;
using bw::client::CircuitBreakerOptions;
using bw::client::Event;
using bw::client::EventType;
using bw::client::EventTypeName;
using bw::client::IsTransient;
using bw::client::Outcome;
using bw::client::OutcomeName;
using bw::client::OutlierOptions;
using bw::client::Pipeline;
using bw::client::PipelineMetrics;
using bw::client::PipelineOptions;
using bw::client::RetryBudgetOptions;

// The pipeline around a blocking call. Run() calls `fn` on the calling
// thread once per attempt (retries after their backoff); the policies'
// state lives on a thread of the Guard's own, so one Guard may be shared by
// many calling threads (its breakers, bulkheads and budget then see all of
// their calls). `fn` should give up by the attempt's deadline
// (Remaining()); a call that outlives it cannot be interrupted, but its
// result no longer counts. Hedging needs concurrent attempts and is not
// done by a Guard.
class Guard {
 public:
  explicit Guard(PipelineOptions o, int endpoints = 1,
                 std::function<void(const Event&)> on_event = nullptr);
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  CallResult Run(const CallSpec& spec, const std::function<AttemptResult(const Attempt&)>& fn);
  // Time left before `a`'s deadline (never negative).
  std::chrono::microseconds Remaining(const Attempt& a) const;
  // The deadline `timeout` from now, for CallSpec::deadline_us.
  int64_t DeadlineAfter(std::chrono::microseconds timeout) const;
  PipelineMetrics metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulwark
