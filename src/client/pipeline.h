// The resilience pipeline: the policies of this directory composed around
// one call, in this order (outermost first):
//
//   deadline -> adaptive limit -> retries (backoff, budget, idempotency)
//            -> hedging -> endpoint choice (outlier ejection, breaker)
//            -> bulkhead -> the attempt
//
// The attempt itself is the caller's: a function that is handed an Attempt
// (which endpoint, which deadline) and reports an AttemptResult. It may be
// a bulwark RPC or anything else (a payment gateway over HTTP). The
// pipeline owns no thread: it runs on one thread with the Clock, Timers
// and Random it is given, so the same code runs in a real client (an
// EventLoop) and in the simulator (simulated time). Every method, the
// attempt function and the done callback run on that thread.
//
// Writes: an attempt that may have reached the server and failed without an
// answer leaves the write's outcome unknown. Such a write is retried only
// when it is idempotent (it carries an idempotency key); otherwise the call
// ends at once with Outcome::kUnknown, never a plain failure, so the caller
// knows to check before doing anything twice.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/adaptive_limit.h"
#include "client/backoff.h"
#include "client/bulkhead.h"
#include "client/circuit_breaker.h"
#include "client/retry_budget.h"
#include "core/status.h"
#include "env/env.h"

namespace bw::client {

struct OutlierOptions {
  // Consecutive transport failures (unavailable, timed out, or beaten by a
  // hedge to another endpoint) that eject an endpoint; 0 turns ejection off.
  int consecutive_failures = 5;
  // An ejected endpoint is skipped for base_ejection_us times the number of
  // times it has been ejected (capped at max_ejection_us).
  int64_t base_ejection_us = 1'000'000;
  int64_t max_ejection_us = 30'000'000;
  // Never more than this share of the endpoints ejected at once.
  double max_ejection_percent = 50;

  [[nodiscard]] absl::Status Validate() const;
};

struct PipelineOptions {
  // A call without a deadline of its own gets this one.
  int64_t default_timeout_us = 5'000'000;
  // Each attempt gets at most this long (0: up to the call's deadline).
  int64_t attempt_timeout_us = 0;
  // Attempts per call, the first included.
  int max_attempts = 10;
  BackoffOptions backoff;
  RetryBudgetOptions budget;
  // Per endpoint.
  CircuitBreakerOptions breaker;
  bool breaker_enabled = true;
  BulkheadOptions bulkhead{.max_concurrent = 256, .max_queue = 1024, .max_wait_us = 100'000};
  bool bulkhead_enabled = true;
  AdaptiveLimitOptions limit{
      .initial = 100, .min = 4, .max = 2000, .backoff = 0.9, .slow_us = 1'000'000};
  bool limit_enabled = false;
  OutlierOptions outlier;
  // With several endpoints: when every one is ejected or refused by its
  // breaker, try one anyway, ignoring both (Envoy's panic routing). In a
  // cluster, every member failing at once is an election far more often
  // than three dead machines; failing fast would turn a one-second election
  // into errors for every caller.
  bool panic_routing = true;
  // Hedged calls: a second attempt goes to another endpoint when the first
  // has not answered within this delay (paid from the retry budget).
  int64_t hedge_delay_us = 20'000;
  // Planted bug, honoured only in BW_PLANTED_BUGS builds (the simulator's
  // checker tests): a write that may have been applied ends as failed, not
  // unknown, when its deadline passes or its retries run out.
  bool planted_unknown_as_failed = false;

  [[nodiscard]] absl::Status Validate() const;
};

enum class CallKind { kRead, kWrite };

struct CallSpec {
  CallKind kind = CallKind::kRead;
  // Safe to send more than once: every read, and a write with an
  // idempotency key.
  bool idempotent = true;
  // Absolute, on the pipeline's clock; 0: now + default_timeout_us.
  int64_t deadline_us = 0;
  // Send a second attempt to another endpoint if the first is slow.
  bool hedge = false;
  // The endpoint to try first (the leader, for a write); -1: any.
  int preferred_endpoint = -1;
};

struct Attempt {
  int number = 0;  // 0 for the first
  int endpoint = 0;
  int64_t deadline_us = 0;  // absolute, on the pipeline's clock
  bool hedge = false;
};

struct AttemptResult {
  absl::Status status;
  // The request may have reached the other side: it was sent and no answer
  // came back (a timeout, a broken connection). False when the failure
  // proves it was not acted on (refused before sending, or an answer that
  // says so).
  bool maybe_applied = false;
  // The server asked for this pause before a retry (negative: no retry).
  std::optional<int64_t> pushback_us;
  // The error is the other side's answer ("no leader", "too many
  // requests"): worth a retry, but the endpoint itself works, so it does
  // not count against its breaker or towards its ejection (a cluster in an
  // election must not open every member's breaker).
  bool answered = false;
};

enum class Outcome { kOk, kFailed, kUnknown };
const char* OutcomeName(Outcome o);

struct CallResult {
  Outcome outcome = Outcome::kFailed;
  // OK, the last error, or (kUnknown) why the outcome is unknown.
  absl::Status status;
  int attempts = 0;
  int hedges = 0;
  // The endpoint whose answer ended the call (-1: none answered).
  int endpoint = -1;
};

// What the policies did, for logs and metrics.
enum class EventType {
  kRetry,
  kHedge,
  kBudgetExhausted,
  kShed,              // the adaptive limit refused a call
  kBulkheadRejected,  // no slot, and the queue full or the wait over
  kBreakerOpened,
  kBreakerHalfOpen,
  kBreakerClosed,
  kBreakerRefused,
  kEjected,
  kUnejected,
  kDeadlineExceeded,
  kOutcomeUnknown,
  kPanic,  // every endpoint refused; one was tried anyway
  kCount_,
};
const char* EventTypeName(EventType t);

struct Event {
  EventType type;
  int endpoint = -1;
  int64_t at_us = 0;
};

struct PipelineMetrics {
  uint64_t calls = 0;
  uint64_t attempts = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t unknown = 0;
  std::array<uint64_t, static_cast<size_t>(EventType::kCount_)> events{};
  uint64_t count(EventType t) const { return events[static_cast<size_t>(t)]; }
};

// The status classes the pipeline treats as transient: worth another
// attempt (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,
// UNKNOWN, INTERNAL). Others (INVALID_ARGUMENT, NOT_FOUND,
// FAILED_PRECONDITION, ...) are answers and end the call.
bool IsTransient(const absl::Status& s);

class Pipeline {
 public:
  using AttemptDone = std::function<void(AttemptResult)>;
  using AttemptFn = std::function<void(const Attempt&, AttemptDone)>;
  using Done = std::function<void(CallResult)>;
  using Listener = std::function<void(const Event&)>;

  // `endpoints` >= 1. Clock, timers and random must outlive the pipeline.
  Pipeline(PipelineOptions o, int endpoints, env::Clock& clock, env::Timers& timers,
           env::Random& random, Listener listener = nullptr);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Runs one call. `attempt` is called once per attempt; `done` exactly once.
  // Results of attempts that arrive after the call ended (a slower hedge, a
  // reply after the deadline) still feed the breakers and the ejection.
  void Execute(const CallSpec& spec, AttemptFn attempt, Done done);

  const PipelineMetrics& metrics() const { return metrics_; }
  BreakerState breaker_state(int endpoint) const;
  bool ejected(int endpoint) const;
  int limit() const { return limit_.limit(); }
  int endpoints() const { return static_cast<int>(endpoints_.size()); }
  env::Clock& clock() { return clock_; }

 private:
  struct Call;
  struct Endpoint;

  void Emit(EventType t, int endpoint);
  void StartAttempt(const std::shared_ptr<Call>& call, bool hedge);
  // The endpoint for the next attempt of `call`, or -1 if every one
  // refuses (breakers open). `*permit`: a breaker permit was taken (not in
  // panic routing), to be answered with OnResult or Release.
  int PickEndpoint(Call& call, bool hedge, bool* permit);
  void Launch(const std::shared_ptr<Call>& call, int endpoint, bool hedge, bool permit);
  void OnAttemptDone(const std::shared_ptr<Call>& call, int endpoint, int64_t started_us,
                     bool permit, AttemptResult r);
  void ReleaseSlot(int endpoint);
  // `sent`: the failed attempt reached the wire; retries after local
  // refusals (nothing sent) back off but do not spend the retry budget.
  void AfterFailure(const std::shared_ptr<Call>& call, const AttemptResult& r, bool sent = true);
  void Finish(const std::shared_ptr<Call>& call, Outcome o, absl::Status s, int endpoint);
  void NoteTransport(int endpoint, bool failed);

  PipelineOptions o_;
  env::Clock& clock_;
  env::Timers& timers_;
  env::Random& random_;
  Listener listener_;
  RetryBudget budget_;
  AdaptiveLimit limit_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  int next_endpoint_ = 0;
  uint64_t next_waiter_ = 1;
  PipelineMetrics metrics_;
  // Set while destroying: late callbacks do nothing.
  std::shared_ptr<bool> alive_;
};

}  // namespace bw::client
