// What the resilience pipeline costs a call when nothing fails: the attempt
// answers at once, so the time is the pipeline's own (deadline timer,
// adaptive limit, retry budget, endpoint choice with breaker and ejection,
// bulkhead slot, the attempt and done callbacks).
//
//   BM_DirectCall            the attempt function called directly (baseline)
//   BM_PipelineAllPolicies   every policy on, on a real EventLoop's timers
//   BM_PipelineNoPolicies    breaker, bulkhead and limit off (the machinery)
//   BM_PipelineHedgedRead    all policies and a hedge timer per call
#include <benchmark/benchmark.h>

#include "client/pipeline.h"
#include "env/real/event_loop.h"
#include "env/real/real_env.h"

namespace bw::client {
namespace {

void Attempt(const Attempt&, Pipeline::AttemptDone done) {
  done(AttemptResult{});
}

void BM_DirectCall(benchmark::State& state) {
  Pipeline::AttemptFn fn = Attempt;
  int ok = 0;
  for (auto _ : state) {
    fn(client::Attempt{}, [&ok](AttemptResult r) { ok += r.status.ok() ? 1 : 0; });
  }
  benchmark::DoNotOptimize(ok);
}
BENCHMARK(BM_DirectCall);

void Run(benchmark::State& state, PipelineOptions o, CallSpec spec) {
  env::EventLoop loop;
  env::RealClock clock;
  env::RealRandom random(1);
  Pipeline p(o, 3, clock, loop, random);
  uint64_t ok = 0;
  uint64_t n = 0;
  for (auto _ : state) {
    p.Execute(spec, Attempt, [&ok](CallResult r) { ok += r.outcome == Outcome::kOk ? 1 : 0; });
    // Cancelled timers leave a handler behind in asio: run them now and
    // then, as the client's loop would.
    if (++n % 64 == 0) loop.context().poll();
  }
  loop.context().poll();
  if (ok != n) state.SkipWithError("a call failed");
  state.counters["calls"] = static_cast<double>(n);
}

void BM_PipelineAllPolicies(benchmark::State& state) {
  PipelineOptions o;
  o.limit_enabled = true;
  Run(state, o, CallSpec{CallKind::kWrite, true, 0, false, 0});
}
BENCHMARK(BM_PipelineAllPolicies);

void BM_PipelineNoPolicies(benchmark::State& state) {
  PipelineOptions o;
  o.breaker_enabled = false;
  o.bulkhead_enabled = false;
  o.outlier.consecutive_failures = 0;
  Run(state, o, CallSpec{CallKind::kWrite, true, 0, false, 0});
}
BENCHMARK(BM_PipelineNoPolicies);

void BM_PipelineHedgedRead(benchmark::State& state) {
  PipelineOptions o;
  o.limit_enabled = true;
  Run(state, o, CallSpec{CallKind::kRead, true, 0, true, -1});
}
BENCHMARK(BM_PipelineHedgedRead);

}  // namespace
}  // namespace bw::client
