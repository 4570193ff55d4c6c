#include "client/pipeline.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace bw::client {

absl::Status OutlierOptions::Validate() const {
  if (consecutive_failures < 0 || base_ejection_us < 0 || max_ejection_us < base_ejection_us ||
      max_ejection_percent < 0 || max_ejection_percent > 100) {
    return absl::InvalidArgumentError(
        "outlier ejection: consecutive_failures and base_ejection_us not negative, "
        "max_ejection_us at least base_ejection_us, max_ejection_percent in [0, 100]");
  }
  return absl::OkStatus();
}

absl::Status PipelineOptions::Validate() const {
  if (default_timeout_us <= 0 || attempt_timeout_us < 0 || max_attempts < 1 || hedge_delay_us < 0) {
    return absl::InvalidArgumentError(
        "pipeline: default_timeout_us must be positive, max_attempts at least 1, "
        "attempt_timeout_us and hedge_delay_us not negative");
  }
  BW_RETURN_IF_ERROR(backoff.Validate());
  BW_RETURN_IF_ERROR(budget.Validate());
  BW_RETURN_IF_ERROR(breaker.Validate());
  BW_RETURN_IF_ERROR(bulkhead.Validate());
  BW_RETURN_IF_ERROR(limit.Validate());
  return outlier.Validate();
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "outcome unknown";
  }
  return "?";
}

const char* EventTypeName(EventType t) {
  switch (t) {
    case EventType::kRetry:
      return "retry";
    case EventType::kHedge:
      return "hedge";
    case EventType::kBudgetExhausted:
      return "budget_exhausted";
    case EventType::kShed:
      return "shed";
    case EventType::kBulkheadRejected:
      return "bulkhead_rejected";
    case EventType::kBreakerOpened:
      return "breaker_opened";
    case EventType::kBreakerHalfOpen:
      return "breaker_half_open";
    case EventType::kBreakerClosed:
      return "breaker_closed";
    case EventType::kBreakerRefused:
      return "breaker_refused";
    case EventType::kEjected:
      return "ejected";
    case EventType::kUnejected:
      return "unejected";
    case EventType::kDeadlineExceeded:
      return "deadline_exceeded";
    case EventType::kOutcomeUnknown:
      return "outcome_unknown";
    case EventType::kPanic:
      return "panic";
    case EventType::kCount_:
      break;
  }
  return "?";
}

bool IsTransient(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

namespace {
// Failures that say the endpoint itself is in trouble (as opposed to an
// overloaded or refusing one): these count towards ejection.
bool IsTransportFailure(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}
}  // namespace

struct Pipeline::Endpoint {
  Endpoint(const PipelineOptions& o, CircuitBreaker::Listener l)
      : breaker(o.breaker, std::move(l)), bulkhead(o.bulkhead) {}
  CircuitBreaker breaker;
  Bulkhead bulkhead;
  int consecutive_failures = 0;
  int times_ejected = 0;
  int64_t ejected_until_us = 0;
  bool ejected = false;
  // Attempts waiting for a bulkhead slot, by waiter id.
  absl::flat_hash_map<uint64_t, std::function<void(bool granted)>> waiters;
};

struct Pipeline::Call {
  CallSpec spec;
  AttemptFn fn;
  Done done;
  int64_t deadline_us = 0;
  int64_t started_us = 0;
  int attempts = 0;  // sent
  int retries = 0;
  int hedges = 0;
  int outstanding = 0;
  bool finished = false;
  bool maybe_applied = false;
  absl::Status last_error;
  // Endpoints this call has used, to prefer others on a retry or hedge.
  std::vector<int> tried;
  std::vector<int> in_flight;
  env::TimerId deadline_timer = 0;
  env::TimerId hedge_timer = 0;
  env::TimerId retry_timer = 0;
  // A bulkhead wait in progress.
  int waiting_endpoint = -1;
  bool waiting_permit = false;
  uint64_t waiter_id = 0;
};

Pipeline::Pipeline(PipelineOptions o, int endpoints, env::Clock& clock, env::Timers& timers,
                   env::Random& random, Listener listener)
    : o_(std::move(o)),
      clock_(clock),
      timers_(timers),
      random_(random),
      listener_(std::move(listener)),
      budget_(o_.budget, clock.NowMicros()),
      limit_(o_.limit),
      alive_(std::make_shared<bool>(true)) {
  for (int i = 0; i < std::max(1, endpoints); ++i) {
    endpoints_.push_back(std::make_unique<Endpoint>(o_, [this, i](BreakerState, BreakerState to) {
      Emit(to == BreakerState::kOpen       ? EventType::kBreakerOpened
           : to == BreakerState::kHalfOpen ? EventType::kBreakerHalfOpen
                                           : EventType::kBreakerClosed,
           i);
    }));
  }
}

Pipeline::~Pipeline() {
  *alive_ = false;
}

BreakerState Pipeline::breaker_state(int endpoint) const {
  return endpoints_[endpoint]->breaker.state();
}

bool Pipeline::ejected(int endpoint) const {
  return endpoints_[endpoint]->ejected;
}

void Pipeline::Emit(EventType t, int endpoint) {
  ++metrics_.events[static_cast<size_t>(t)];
  if (listener_) listener_(Event{t, endpoint, clock_.NowMicros()});
}

void Pipeline::Execute(const CallSpec& spec, AttemptFn attempt, Done done) {
  ++metrics_.calls;
  int64_t now = clock_.NowMicros();
  if (o_.limit_enabled && !limit_.TryAcquire()) {
    Emit(EventType::kShed, -1);
    ++metrics_.failed;
    done(CallResult{Outcome::kFailed,
                    absl::ResourceExhaustedError(
                        absl::StrCat("bulwark client: shed by the adaptive concurrency limit (",
                                     limit_.limit(), " calls in flight); nothing was sent")),
                    0, 0, -1});
    return;
  }
  auto call = std::make_shared<Call>();
  call->spec = spec;
  call->fn = std::move(attempt);
  call->done = std::move(done);
  call->started_us = now;
  call->deadline_us = spec.deadline_us > 0 ? spec.deadline_us : now + o_.default_timeout_us;
  budget_.OnRequest(now);
  std::weak_ptr<bool> alive = alive_;
  call->deadline_timer =
      timers_.Schedule(std::max<int64_t>(0, call->deadline_us - now), [this, alive, call] {
        if (alive.expired() || call->finished) return;
        call->deadline_timer = 0;
        Emit(EventType::kDeadlineExceeded, -1);
        bool unknown =
            call->spec.kind == CallKind::kWrite && (call->maybe_applied || call->outstanding > 0);
#ifdef BW_PLANTED_BUGS
        if (o_.planted_unknown_as_failed) unknown = false;
#endif
        std::string last =
            call->last_error.ok() ? "" : absl::StrCat("; last error: ", call->last_error.message());
        Finish(call, unknown ? Outcome::kUnknown : Outcome::kFailed,
               absl::DeadlineExceededError(absl::StrCat("bulwark client: deadline exceeded after ",
                                                        call->attempts, " attempt(s)", last)),
               -1);
      });
  StartAttempt(call, /*hedge=*/false);
}

int Pipeline::PickEndpoint(Call& call, bool hedge, bool* permit) {
  *permit = false;
  int n = static_cast<int>(endpoints_.size());
  int64_t now = clock_.NowMicros();
  int ejected_now = 0;
  for (auto& e : endpoints_) {
    if (e->ejected && e->ejected_until_us <= now) {
      e->ejected = false;
      Emit(EventType::kUnejected, static_cast<int>(&e - &endpoints_[0]));
    }
    if (e->ejected) ++ejected_now;
  }
  auto used = [](const std::vector<int>& v, int i) {
    return std::find(v.begin(), v.end(), i) != v.end();
  };
  // Order: the preferred endpoint (first attempt only), then round-robin.
  std::vector<int> order;
  order.reserve(n + 1);
  if (call.spec.preferred_endpoint >= 0 && call.spec.preferred_endpoint < n && !hedge &&
      call.attempts == 0) {
    order.push_back(call.spec.preferred_endpoint);
  }
  int start = next_endpoint_;
  next_endpoint_ = (next_endpoint_ + 1) % n;
  for (int k = 0; k < n; ++k)
    order.push_back((start + k) % n);
  // Pass 0: fresh endpoints only; pass 1: any not in flight for this call
  // (a hedge must go elsewhere); ejected endpoints only if all are.
  for (int pass = 0; pass < 2; ++pass) {
    for (int i : order) {
      Endpoint& e = *endpoints_[i];
      if (e.ejected && ejected_now < n) continue;
      if (used(call.in_flight, i)) continue;
      if (pass == 0 && used(call.tried, i)) continue;
      if (o_.breaker_enabled && !e.breaker.TryAcquire(now)) {
        Emit(EventType::kBreakerRefused, i);
        continue;
      }
      *permit = o_.breaker_enabled;
      return i;
    }
    if (hedge) break;
  }
  if (hedge || !o_.panic_routing || n < 2) return -1;
  for (int i : order) {
    if (used(call.in_flight, i)) continue;
    Emit(EventType::kPanic, i);
    return i;
  }
  return -1;
}

void Pipeline::StartAttempt(const std::shared_ptr<Call>& call, bool hedge) {
  call->retry_timer = 0;
  if (call->finished) return;
  bool permit = false;
  int ep = PickEndpoint(*call, hedge, &permit);
  if (ep < 0) {
    if (hedge) return;
    AfterFailure(
        call,
        AttemptResult{absl::UnavailableError("bulwark client: every endpoint refused the call "
                                             "(circuit breakers open); nothing was sent"),
                      false, std::nullopt},
        /*sent=*/false);
    return;
  }
  Launch(call, ep, hedge, permit);
}

void Pipeline::Launch(const std::shared_ptr<Call>& call, int ep, bool hedge, bool permit) {
  Endpoint& e = *endpoints_[ep];
  std::weak_ptr<bool> alive = alive_;
  auto go = [this, alive, call, ep, hedge, permit] {
    if (alive.expired()) return;
    int64_t now = clock_.NowMicros();
    Attempt a;
    a.number = call->attempts++;
    a.endpoint = ep;
    a.hedge = hedge;
    a.deadline_us = call->deadline_us;
    if (o_.attempt_timeout_us > 0)
      a.deadline_us = std::min(a.deadline_us, now + o_.attempt_timeout_us);
    ++metrics_.attempts;
    ++call->outstanding;
    call->tried.push_back(ep);
    call->in_flight.push_back(ep);
    if (call->spec.hedge && !hedge && call->hedges == 0 && endpoints_.size() > 1 &&
        call->hedge_timer == 0) {
      call->hedge_timer = timers_.Schedule(o_.hedge_delay_us, [this, alive, call] {
        if (alive.expired() || call->finished) return;
        if (call->outstanding == 0) return;
        if (!budget_.TryRetry(clock_.NowMicros())) {
          Emit(EventType::kBudgetExhausted, -1);
          return;
        }
        ++call->hedges;
        Emit(EventType::kHedge, -1);
        StartAttempt(call, /*hedge=*/true);
      });
    }
    if (a.deadline_us >= call->deadline_us) {
      call->fn(a, [this, alive, call, ep, now, permit](AttemptResult r) {
        if (alive.expired()) return;
        OnAttemptDone(call, ep, now, permit, std::move(r));
      });
      return;
    }
    // An attempt that ends before the call: its own timer, so that an
    // attempt function that ignores the deadline cannot hold the call.
    auto reported = std::make_shared<bool>(false);
    env::TimerId timer =
        timers_.Schedule(a.deadline_us - now, [this, alive, call, ep, now, permit, reported] {
          if (alive.expired() || *reported) return;
          *reported = true;
          OnAttemptDone(call, ep, now, permit,
                        AttemptResult{absl::DeadlineExceededError(
                                          "bulwark client: attempt timed out with no answer"),
                                      true, std::nullopt});
        });
    call->fn(a, [this, alive, call, ep, now, permit, reported, timer](AttemptResult r) {
      if (alive.expired() || *reported) return;
      *reported = true;
      timers_.Cancel(timer);
      OnAttemptDone(call, ep, now, permit, std::move(r));
    });
  };
  if (!o_.bulkhead_enabled) {
    go();
    return;
  }
  uint64_t id = next_waiter_++;
  switch (e.bulkhead.Acquire(id, clock_.NowMicros())) {
    case Bulkhead::Outcome::kGranted:
      go();
      return;
    case Bulkhead::Outcome::kQueued: {
      call->waiting_endpoint = ep;
      call->waiting_permit = permit;
      call->waiter_id = id;
      e.waiters[id] = [this, call, ep, permit, go = std::move(go)](bool granted) {
        call->waiting_endpoint = -1;
        if (!granted) {
          if (permit) endpoints_[ep]->breaker.Release();
          Emit(EventType::kBulkheadRejected, ep);
          if (!call->finished) {
            AfterFailure(call,
                         AttemptResult{absl::ResourceExhaustedError(
                                           "bulwark client: bulkhead full (waited too long for a "
                                           "slot); nothing was sent"),
                                       false, std::nullopt},
                         /*sent=*/false);
          }
          return;
        }
        if (call->finished) {
          if (permit) endpoints_[ep]->breaker.Release();
          ReleaseSlot(ep);
          return;
        }
        go();
      };
      // Tell the waiter when its wait is over.
      timers_.Schedule(o_.bulkhead.max_wait_us, [this, alive, ep] {
        if (alive.expired()) return;
        Endpoint& e = *endpoints_[ep];
        for (uint64_t w : e.bulkhead.TakeExpired(clock_.NowMicros())) {
          auto it = e.waiters.find(w);
          if (it == e.waiters.end()) continue;
          auto fn = std::move(it->second);
          e.waiters.erase(it);
          fn(false);
        }
      });
      return;
    }
    case Bulkhead::Outcome::kRejected:
      if (permit) e.breaker.Release();
      Emit(EventType::kBulkheadRejected, ep);
      AfterFailure(call,
                   AttemptResult{absl::ResourceExhaustedError(
                                     "bulwark client: bulkhead full; nothing was sent"),
                                 false, std::nullopt},
                   /*sent=*/false);
      return;
  }
}

void Pipeline::ReleaseSlot(int ep) {
  if (!o_.bulkhead_enabled) return;
  Endpoint& e = *endpoints_[ep];
  int64_t now = clock_.NowMicros();
  std::optional<uint64_t> next = e.bulkhead.Release(now);
  std::vector<std::function<void(bool)>> expired;
  for (uint64_t w : e.bulkhead.TakeExpired(now)) {
    auto it = e.waiters.find(w);
    if (it == e.waiters.end()) continue;
    expired.push_back(std::move(it->second));
    e.waiters.erase(it);
  }
  std::function<void(bool)> granted;
  if (next) {
    auto it = e.waiters.find(*next);
    if (it != e.waiters.end()) {
      granted = std::move(it->second);
      e.waiters.erase(it);
    } else {
      // The waiter left; give the slot back.
      e.bulkhead.Release(now);
    }
  }
  for (auto& f : expired)
    f(false);
  if (granted) granted(true);
}

void Pipeline::NoteTransport(int ep, bool failed) {
  Endpoint& e = *endpoints_[ep];
  if (!failed) {
    e.consecutive_failures = 0;
    return;
  }
  if (o_.outlier.consecutive_failures == 0 || e.ejected) return;
  if (++e.consecutive_failures < o_.outlier.consecutive_failures) return;
  int n = static_cast<int>(endpoints_.size());
  int ejected = 0;
  for (auto& x : endpoints_)
    ejected += x->ejected ? 1 : 0;
  if ((ejected + 1) * 100.0 > o_.outlier.max_ejection_percent * n) return;
  ++e.times_ejected;
  e.ejected = true;
  e.consecutive_failures = 0;
  e.ejected_until_us = clock_.NowMicros() + std::min(o_.outlier.max_ejection_us,
                                                     o_.outlier.base_ejection_us * e.times_ejected);
  Emit(EventType::kEjected, ep);
}

void Pipeline::OnAttemptDone(const std::shared_ptr<Call>& call, int ep, int64_t started_us,
                             bool permit, AttemptResult r) {
  int64_t now = clock_.NowMicros();
  bool transient = !r.status.ok() && IsTransient(r.status);
  if (permit) {
    endpoints_[ep]->breaker.OnResult(now, now - started_us, transient && !r.answered);
  }
  ReleaseSlot(ep);
  NoteTransport(ep, IsTransportFailure(r.status) && !r.answered);
  --call->outstanding;
  auto it = std::find(call->in_flight.begin(), call->in_flight.end(), ep);
  if (it != call->in_flight.end()) call->in_flight.erase(it);
  if (call->finished) return;
  if (!transient) {
    Outcome o = r.status.ok() ? Outcome::kOk : Outcome::kFailed;
    // A hedge answered while the first attempt is still out: a strike
    // against the slow endpoint, so that one that keeps losing (a paused or
    // overloaded member) is ejected before its hedges drain the budget.
    if (r.status.ok()) {
      for (int slow : call->in_flight)
        NoteTransport(slow, /*failed=*/true);
    }
    Finish(call, o, std::move(r.status), ep);
    return;
  }
  bool write = call->spec.kind == CallKind::kWrite;
  if (write && r.maybe_applied) call->maybe_applied = true;
  if (write && r.maybe_applied && !call->spec.idempotent) {
    Emit(EventType::kOutcomeUnknown, ep);
    Finish(
        call, Outcome::kUnknown,
        absl::UnavailableError(absl::StrCat(
            "bulwark client: outcome unknown: the write was sent without an idempotency key "
            "and no answer came back (",
            r.status.message(), "); it may or may not have been applied, so it was not retried")),
        ep);
    return;
  }
  call->last_error = r.status;
  if (call->outstanding > 0) return;  // a hedge is still out: wait for it
  AfterFailure(call, r);
}

void Pipeline::AfterFailure(const std::shared_ptr<Call>& call, const AttemptResult& r, bool sent) {
  if (call->finished) return;
  call->last_error = r.status;
  bool write = call->spec.kind == CallKind::kWrite;
  auto give_up = [&](std::string why) {
    bool unknown = write && call->maybe_applied;
#ifdef BW_PLANTED_BUGS
    if (o_.planted_unknown_as_failed) unknown = false;
#endif
    if (unknown) Emit(EventType::kOutcomeUnknown, -1);
    Finish(
        call, unknown ? Outcome::kUnknown : Outcome::kFailed,
        absl::Status(r.status.code(),
                     absl::StrCat(unknown ? "bulwark client: outcome unknown: " : "", why,
                                  " after ", call->attempts, " attempt(s): ", r.status.message())),
        -1);
  };
  if (call->attempts >= o_.max_attempts) return give_up("gave up");
  std::optional<int64_t> delay = RetryDelay(o_.backoff, call->retries, r.pushback_us, random_);
  if (!delay) return give_up("the server asked not to retry");
  int64_t now = clock_.NowMicros();
  if (now + *delay >= call->deadline_us) return give_up("no time left for a retry");
  if (sent && !budget_.TryRetry(now)) {
    Emit(EventType::kBudgetExhausted, -1);
    return give_up("retry budget spent");
  }
  ++call->retries;
  Emit(EventType::kRetry, -1);
  std::weak_ptr<bool> alive = alive_;
  call->retry_timer = timers_.Schedule(*delay, [this, alive, call] {
    if (alive.expired()) return;
    StartAttempt(call, /*hedge=*/false);
  });
}

void Pipeline::Finish(const std::shared_ptr<Call>& call, Outcome o, absl::Status s, int endpoint) {
  call->finished = true;
  if (call->deadline_timer) timers_.Cancel(call->deadline_timer);
  if (call->hedge_timer) timers_.Cancel(call->hedge_timer);
  if (call->retry_timer) timers_.Cancel(call->retry_timer);
  call->deadline_timer = call->hedge_timer = call->retry_timer = 0;
  if (call->waiting_endpoint >= 0) {
    Endpoint& e = *endpoints_[call->waiting_endpoint];
    e.bulkhead.Cancel(call->waiter_id);
    e.waiters.erase(call->waiter_id);
    if (call->waiting_permit) e.breaker.Release();
    call->waiting_endpoint = -1;
  }
  int64_t now = clock_.NowMicros();
  if (o_.limit_enabled) {
    limit_.OnResult(now - call->started_us, o != Outcome::kOk && IsTransient(s));
  }
  if (o == Outcome::kOk) ++metrics_.ok;
  if (o == Outcome::kFailed) ++metrics_.failed;
  if (o == Outcome::kUnknown) ++metrics_.unknown;
  // (call->fn stays: this may be running inside it, when an attempt
  // answers synchronously.)
  Done done = std::move(call->done);
  done(CallResult{o, std::move(s), call->attempts, call->hedges, endpoint});
}

}  // namespace bw::client
