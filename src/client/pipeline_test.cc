// The resilience pipeline on simulated time: scripted servers answer (or
// not) after simulated delays, and the pipeline's promises are checked —
// scripted cases for each policy, and a RapidCheck property over random
// server behaviour.
#include "client/pipeline.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <vector>

#include "env/sim/sim_world.h"

namespace bw::client {
namespace {

// A simulated server: each attempt is answered after `latency_us` with the
// status the script gives, or never (a lost reply).
struct Behaviour {
  absl::Status status;
  int64_t latency_us = 1000;
  bool lost = false;  // never answers
  bool maybe_applied = true;
};

struct Rig {
  explicit Rig(PipelineOptions o, int endpoints = 3, uint64_t seed = 1)
      : world(seed), env(world.AddNode(NodeId(1))) {
    pipeline = std::make_unique<Pipeline>(o, endpoints, env.clock(), env.timers(), env.random(),
                                          [this](const Event& e) { events.push_back(e); });
  }
  // Runs one call against `script(attempt)` and the world until it ends.
  CallResult Run(CallSpec spec, std::function<Behaviour(const Attempt&)> script) {
    std::optional<CallResult> out;
    pipeline->Execute(
        spec,
        [this, script](const Attempt& a, Pipeline::AttemptDone done) {
          attempts.push_back(a);
          Behaviour b = script(a);
          if (b.lost) {
            // The reply never comes; the attempt's deadline ends it, as a
            // gRPC deadline would.
            env.timers().Schedule(a.deadline_us - env.clock().NowMicros(), [done] {
              done(AttemptResult{absl::DeadlineExceededError("attempt deadline"), true, {}});
            });
            return;
          }
          env.timers().Schedule(b.latency_us, [done, b] {
            done(AttemptResult{b.status, !b.status.ok() && b.maybe_applied, {}});
          });
        },
        [&out](CallResult r) {
          ASSERT_FALSE(out.has_value()) << "done called twice";
          out = std::move(r);
        });
    // Until the call ends (not beyond: breakers and ejections keep time).
    for (int ms = 0; ms < 120'000 && !out; ++ms)
      world.RunUntil(world.now_us() + 1000);
    EXPECT_TRUE(out.has_value()) << "done never called";
    return out.value_or(CallResult{});
  }
  int Count(EventType t) const {
    int n = 0;
    for (const Event& e : events)
      n += e.type == t ? 1 : 0;
    return n;
  }
  env::SimWorld world;
  env::SimEnv& env;
  std::unique_ptr<Pipeline> pipeline;
  std::vector<Event> events;
  std::vector<Attempt> attempts;
};

PipelineOptions Quiet() {
  PipelineOptions o;
  o.backoff = BackoffOptions{1000, 10'000, 2.0};
  o.default_timeout_us = 2'000'000;
  return o;
}

TEST(PipelineTest, ReadRetriesOnAnotherEndpointUntilItSucceeds) {
  Rig rig(Quiet());
  CallResult r = rig.Run(CallSpec{CallKind::kRead, true, 0, false, 0}, [](const Attempt& a) {
    if (a.endpoint == 0) return Behaviour{absl::UnavailableError("down")};
    return Behaviour{absl::OkStatus()};
  });
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.status;
  EXPECT_EQ(r.attempts, 2);
  ASSERT_EQ(rig.attempts.size(), 2u);
  EXPECT_EQ(rig.attempts[0].endpoint, 0);  // the preferred endpoint first
  EXPECT_NE(rig.attempts[1].endpoint, 0);  // then another
  EXPECT_EQ(rig.Count(EventType::kRetry), 1);
}

TEST(PipelineTest, UnkeyedWriteWithNoAnswerIsOutcomeUnknownAndNotRetried) {
  Rig rig(Quiet());
  CallResult r = rig.Run(CallSpec{CallKind::kWrite, /*idempotent=*/false, 0, false, -1},
                         [](const Attempt&) { return Behaviour{absl::UnavailableError("reset")}; });
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_NE(r.status.message().find("outcome unknown"), std::string_view::npos) << r.status;
  EXPECT_EQ(rig.Count(EventType::kOutcomeUnknown), 1);
}

TEST(PipelineTest, UnkeyedWriteRefusedBeforeSendingIsRetried) {
  Rig rig(Quiet());
  int n = 0;
  CallResult r = rig.Run(CallSpec{CallKind::kWrite, false, 0, false, -1}, [&n](const Attempt&) {
    if (n++ < 2) return Behaviour{absl::UnavailableError("no leader"), 100, false, false};
    return Behaviour{absl::OkStatus()};
  });
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.attempts, 3);
}

TEST(PipelineTest, KeyedWriteIsRetriedThroughLostReplies) {
  Rig rig(Quiet());
  int n = 0;
  CallResult r =
      rig.Run(CallSpec{CallKind::kWrite, /*idempotent=*/true, 0, false, -1}, [&n](const Attempt&) {
        if (n++ < 3) return Behaviour{absl::UnavailableError("reset")};
        return Behaviour{absl::OkStatus()};
      });
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.attempts, 4);
}

TEST(PipelineTest, KeyedWriteThatNeverGetsAnAnswerEndsUnknownAtItsDeadline) {
  PipelineOptions o = Quiet();
  o.attempt_timeout_us = 100'000;
  Rig rig(o);
  CallSpec spec{CallKind::kWrite, true, 0, false, -1};
  spec.deadline_us = rig.env.clock().NowMicros() + 500'000;
  CallResult r = rig.Run(spec, [](const Attempt&) { return Behaviour{{}, 0, /*lost=*/true}; });
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  EXPECT_GE(r.attempts, 3);
  // Ended by the deadline (plus nothing): no attempt ran past it.
  for (const Attempt& a : rig.attempts)
    EXPECT_LE(a.deadline_us, spec.deadline_us);
}

TEST(PipelineTest, ReadWithNoAnswerFailsAtTheDeadlineNotLater) {
  Rig rig(Quiet());
  int64_t t0 = rig.env.clock().NowMicros();
  CallSpec spec{CallKind::kRead, true, t0 + 300'000, false, -1};
  std::optional<int64_t> ended;
  rig.pipeline->Execute(
      spec, [](const Attempt&, Pipeline::AttemptDone) { /* never answers */ },
      [&](CallResult r) {
        EXPECT_EQ(r.outcome, Outcome::kFailed);
        EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
        ended = rig.env.clock().NowMicros();
      });
  rig.world.RunUntil(t0 + 10'000'000);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(*ended, t0 + 300'000);
}

TEST(PipelineTest, AnswersEndTheCallWithoutRetry) {
  Rig rig(Quiet());
  CallResult r = rig.Run(CallSpec{}, [](const Attempt&) {
    return Behaviour{absl::FailedPreconditionError("etcdserver: key not found")};
  });
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.attempts, 1);
}

TEST(PipelineTest, HedgedReadTakesTheFasterEndpoint) {
  PipelineOptions o = Quiet();
  o.hedge_delay_us = 5'000;
  Rig rig(o);
  int64_t t0 = rig.env.clock().NowMicros();
  std::optional<int64_t> ended;
  std::optional<CallResult> res;
  rig.pipeline->Execute(
      CallSpec{CallKind::kRead, true, 0, /*hedge=*/true, 0},
      [&rig](const Attempt& a, Pipeline::AttemptDone done) {
        int64_t latency = a.endpoint == 0 ? 200'000 : 1'000;
        rig.env.timers().Schedule(latency, [done] { done(AttemptResult{}); });
      },
      [&](CallResult r) {
        res = r;
        ended = rig.env.clock().NowMicros();
      });
  rig.world.RunUntil(t0 + 10'000'000);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->outcome, Outcome::kOk);
  EXPECT_EQ(res->hedges, 1);
  EXPECT_NE(res->endpoint, 0);
  EXPECT_EQ(*ended - t0, 6'000);
}

// A member that stalls (paused, overloaded) never fails, it just loses
// every hedge; after a few losses it is ejected, so calls stop going there
// and spending the budget on hedges.
TEST(PipelineTest, AnEndpointThatKeepsLosingHedgesIsEjected) {
  PipelineOptions o = Quiet();
  o.hedge_delay_us = 5'000;
  o.outlier.consecutive_failures = 3;
  Rig rig(o);
  auto stalled = [&rig](const Attempt& a, Pipeline::AttemptDone d) {
    int64_t latency = a.endpoint == 0 ? 10'000'000 : 1'000;
    rig.env.timers().Schedule(latency, [d] { d(AttemptResult{}); });
  };
  for (int i = 0; i < 10; ++i) {
    std::optional<CallResult> res;
    rig.pipeline->Execute(CallSpec{CallKind::kRead, true, 0, true, 0}, stalled,
                          [&res](CallResult r) { res = r; });
    rig.world.RunUntil(rig.world.now_us() + 50'000);
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->outcome, Outcome::kOk);
  }
  EXPECT_EQ(rig.Count(EventType::kEjected), 1);
  EXPECT_TRUE(rig.pipeline->ejected(0));
  // Once ejected, the preferred-but-stalled endpoint is skipped: no more hedges.
  EXPECT_LE(rig.Count(EventType::kHedge), 4);
}

TEST(PipelineTest, BreakerOpensOnAFailingEndpointAndCallsGoElsewhere) {
  PipelineOptions o = Quiet();
  o.breaker.minimum_calls = 5;
  o.breaker.window_size = 10;
  o.outlier.consecutive_failures = 0;  // the breaker alone
  Rig rig(o);
  for (int i = 0; i < 40; ++i) {
    CallResult r = rig.Run(CallSpec{CallKind::kRead, true, 0, false, 0}, [](const Attempt& a) {
      if (a.endpoint == 0) return Behaviour{absl::UnavailableError("down")};
      return Behaviour{absl::OkStatus()};
    });
    EXPECT_EQ(r.outcome, Outcome::kOk);
  }
  EXPECT_GE(rig.Count(EventType::kBreakerOpened), 1);
  int to_zero = 0;
  for (const Attempt& a : rig.attempts)
    to_zero += a.endpoint == 0 ? 1 : 0;
  // 5 failures open it; afterwards only the half-open probes reach it.
  EXPECT_LT(to_zero, 15);
}

// A member that answers "no leader" during an election works; only the
// cluster does not. Its answers are retried but must not open its breaker
// or eject it (else an election would open every member's breaker).
TEST(PipelineTest, ServerAnswersDoNotOpenBreakersOrEject) {
  PipelineOptions o = Quiet();
  o.breaker.minimum_calls = 5;
  o.outlier.consecutive_failures = 3;
  Rig rig(o);
  int n = 0;
  for (int i = 0; i < 30; ++i) {
    rig.pipeline->Execute(
        CallSpec{},
        [&](const Attempt&, Pipeline::AttemptDone d) {
          AttemptResult r;
          if (n++ % 2 == 0) {
            r.status = absl::UnavailableError("etcdserver: no leader");
            r.answered = true;
          }
          rig.env.timers().Schedule(100, [d, r] { d(r); });
        },
        [](CallResult r) { EXPECT_EQ(r.outcome, Outcome::kOk) << r.status; });
    rig.world.RunUntil(rig.world.now_us() + 100'000);
  }
  EXPECT_EQ(rig.Count(EventType::kBreakerOpened), 0);
  EXPECT_EQ(rig.Count(EventType::kEjected), 0);
  EXPECT_GE(rig.Count(EventType::kRetry), 15);
}

// Every member failing at once (an election): their breakers open, and
// panic routing still tries one, so calls succeed as soon as the cluster
// does instead of failing fast for the breakers' whole wait.
TEST(PipelineTest, PanicRoutingTriesAMemberWhenEveryBreakerIsOpen) {
  PipelineOptions o = Quiet();
  o.breaker.minimum_calls = 3;
  o.breaker.wait_in_open_us = 10'000'000;
  o.outlier.consecutive_failures = 0;
  Rig rig(o);
  bool down = true;
  auto script = [&](const Attempt&) {
    return down ? Behaviour{absl::UnavailableError("connection refused"), 100, false, false}
                : Behaviour{absl::OkStatus(), 100};
  };
  for (int i = 0; i < 10; ++i)
    rig.Run(CallSpec{}, script);
  for (int ep = 0; ep < 3; ++ep)
    EXPECT_EQ(rig.pipeline->breaker_state(ep), BreakerState::kOpen);
  down = false;
  CallResult r = rig.Run(CallSpec{}, script);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.status;
  EXPECT_GE(rig.Count(EventType::kPanic), 1);
  // Without panic routing the breakers refuse for their whole wait.
  o.panic_routing = false;
  Rig strict(o);
  bool strict_down = true;
  auto strict_script = [&](const Attempt&) {
    return strict_down ? Behaviour{absl::UnavailableError("connection refused"), 100, false, false}
                       : Behaviour{absl::OkStatus(), 100};
  };
  for (int i = 0; i < 10; ++i)
    strict.Run(CallSpec{}, strict_script);
  strict_down = false;
  EXPECT_EQ(strict.Run(CallSpec{}, strict_script).outcome, Outcome::kFailed);
}

TEST(PipelineTest, OutlierEjectionSkipsAndThenReturnsAnEndpoint) {
  PipelineOptions o = Quiet();
  o.breaker_enabled = false;
  o.outlier.consecutive_failures = 3;
  o.outlier.base_ejection_us = 1'000'000;
  Rig rig(o);
  bool zero_down = true;
  for (int i = 0; i < 20; ++i) {
    rig.Run(CallSpec{CallKind::kRead, true, 0, false, 0}, [&](const Attempt& a) {
      if (a.endpoint == 0 && zero_down) return Behaviour{absl::UnavailableError("down")};
      return Behaviour{absl::OkStatus()};
    });
  }
  EXPECT_EQ(rig.Count(EventType::kEjected), 1);
  EXPECT_TRUE(rig.pipeline->ejected(0));
  size_t before = rig.attempts.size();
  zero_down = false;
  rig.world.RunUntil(rig.world.now_us() + 2'000'000);
  rig.Run(CallSpec{CallKind::kRead, true, 0, false, 0},
          [](const Attempt&) { return Behaviour{absl::OkStatus()}; });
  EXPECT_EQ(rig.Count(EventType::kUnejected), 1);
  ASSERT_GT(rig.attempts.size(), before);
  EXPECT_EQ(rig.attempts[before].endpoint, 0);
}

TEST(PipelineTest, RetryBudgetBoundsTheLoadOfAFailingCluster) {
  PipelineOptions o = Quiet();
  o.budget = RetryBudgetOptions{0.2, 10, 100};
  o.breaker_enabled = false;
  o.outlier.consecutive_failures = 0;
  Rig rig(o);
  int calls = 0;
  int done = 0;
  // 1,000 reads over one simulated second, every attempt failing.
  for (int i = 0; i < 1000; ++i) {
    rig.world.At(i * 1000, [&] {
      ++calls;
      rig.pipeline->Execute(
          CallSpec{},
          [&rig](const Attempt&, Pipeline::AttemptDone d) {
            rig.env.timers().Schedule(500, [d] {
              d(AttemptResult{absl::UnavailableError("down"), true, {}});
            });
          },
          [&done](CallResult r) {
            EXPECT_EQ(r.outcome, Outcome::kFailed);
            ++done;
          });
    });
  }
  rig.world.RunUntil(rig.world.now_us() + 30'000'000);
  EXPECT_EQ(done, 1000);
  uint64_t retries = rig.pipeline->metrics().attempts - 1000;
  // The floor (10), ratio x requests (200), 10/s over the run (~1 s): not 9,000.
  EXPECT_LE(retries, 230u);
  EXPECT_GE(retries, 200u);
  EXPECT_GT(rig.Count(EventType::kBudgetExhausted), 700);
}

TEST(PipelineTest, BulkheadBoundsAttemptsInFlightAndShedsTheRest) {
  PipelineOptions o = Quiet();
  o.bulkhead = BulkheadOptions{2, 1, 50'000};
  Rig rig(o, /*endpoints=*/1);
  int in_flight = 0, peak = 0, ok = 0, failed = 0;
  for (int i = 0; i < 6; ++i) {
    rig.pipeline->Execute(
        CallSpec{CallKind::kRead, true, 0, false, -1},
        [&](const Attempt&, Pipeline::AttemptDone d) {
          peak = std::max(peak, ++in_flight);
          rig.env.timers().Schedule(10'000, [&, d] {
            --in_flight;
            d(AttemptResult{});
          });
        },
        [&](CallResult r) { (r.outcome == Outcome::kOk ? ok : failed)++; });
  }
  rig.world.RunUntil(rig.world.now_us() + 10'000'000);
  EXPECT_EQ(peak, 2);
  EXPECT_EQ(ok + failed, 6);
  EXPECT_GE(rig.Count(EventType::kBulkheadRejected), 3);  // only one could queue
}

TEST(PipelineTest, AdaptiveLimitShedsBeyondTheLimit) {
  PipelineOptions o = Quiet();
  o.limit_enabled = true;
  o.limit = AdaptiveLimitOptions{4, 1, 100, 0.9, 1'000'000};
  Rig rig(o);
  int shed = 0;
  for (int i = 0; i < 10; ++i) {
    rig.pipeline->Execute(
        CallSpec{},
        [&rig](const Attempt&, Pipeline::AttemptDone d) {
          rig.env.timers().Schedule(1000, [d] { d(AttemptResult{}); });
        },
        [&shed](CallResult r) {
          if (r.status.code() == absl::StatusCode::kResourceExhausted) ++shed;
        });
  }
  rig.world.RunUntil(rig.world.now_us() + 1'000'000);
  EXPECT_EQ(shed, 6);
  EXPECT_EQ(rig.Count(EventType::kShed), 6);
}

// Random servers: each attempt answers OK, an answer error, a transient
// error (applied or not), or never. Whatever happens: done runs exactly
// once, no later than the deadline; an unkeyed write is sent at most once
// after an attempt that may have applied it, and a call is OK only if an
// attempt was.
RC_GTEST_PROP(PipelineProperty, EveryCallEndsOnceByItsDeadlineAndUnkeyedWritesAreNotRepeated, ()) {
  PipelineOptions o = Quiet();
  o.attempt_timeout_us = *rc::gen::inRange<int64_t>(0, 300'000);
  o.hedge_delay_us = *rc::gen::inRange<int64_t>(0, 50'000);
  Rig rig(o, *rc::gen::inRange(1, 6), *rc::gen::arbitrary<uint64_t>());
  int calls = *rc::gen::inRange(1, 60);
  struct Seen {
    int done = 0;
    int64_t deadline = 0;
    int64_t ended = 0;
    bool any_ok = false;
    int sent_after_maybe = 0;
    bool maybe = false;
    CallSpec spec;
    CallResult r;
  };
  std::map<int, Seen> seen;
  for (int c = 0; c < calls; ++c) {
    CallSpec spec;
    spec.kind = *rc::gen::element(CallKind::kRead, CallKind::kWrite);
    spec.idempotent = spec.kind == CallKind::kRead || *rc::gen::arbitrary<bool>();
    spec.hedge = spec.kind == CallKind::kRead && *rc::gen::arbitrary<bool>();
    spec.preferred_endpoint = *rc::gen::inRange(-1, rig.pipeline->endpoints());
    spec.deadline_us = rig.env.clock().NowMicros() + *rc::gen::inRange<int64_t>(1000, 3'000'000);
    std::vector<int> script = *rc::gen::container<std::vector<int>>(12, rc::gen::inRange(0, 5));
    seen[c].deadline = spec.deadline_us;
    seen[c].spec = spec;
    auto next = std::make_shared<size_t>(0);
    rig.pipeline->Execute(
        spec,
        [&rig, &seen, c, script, next](const Attempt& a, Pipeline::AttemptDone d) {
          Seen& s = seen[c];
          if (s.maybe) ++s.sent_after_maybe;
          int kind = script[(*next)++ % script.size()];
          int64_t latency = 100 + static_cast<int64_t>(kind) * 7'000;
          AttemptResult r;
          switch (kind) {
            case 0:
              s.any_ok = true;
              break;
            case 1:
              r.status = absl::NotFoundError("answer");
              break;
            case 2:
              r.status = absl::UnavailableError("refused");
              break;
            case 3:
              r.status = absl::UnavailableError("reset");
              r.maybe_applied = true;
              s.maybe = true;
              break;
            case 4:
              s.maybe = true;
              return;  // never answers
          }
          rig.env.timers().Schedule(latency, [d, r] { d(r); });
        },
        [&rig, &seen, c](CallResult r) {
          seen[c].done++;
          seen[c].ended = rig.env.clock().NowMicros();
          seen[c].r = r;
        });
  }
  rig.world.RunUntil(rig.world.now_us() + 60'000'000);
  for (auto& [c, s] : seen) {
    RC_ASSERT(s.done == 1);
    RC_ASSERT(s.ended <= s.deadline);
    if (s.r.outcome == Outcome::kOk) RC_ASSERT(s.any_ok);
    if (s.spec.kind == CallKind::kWrite && !s.spec.idempotent) {
      // Nothing sent after an attempt that may have applied it.
      RC_ASSERT(s.sent_after_maybe == 0);
    }
    if (s.spec.kind == CallKind::kRead) RC_ASSERT(s.r.outcome != Outcome::kUnknown);
  }
}

}  // namespace
}  // namespace bw::client
