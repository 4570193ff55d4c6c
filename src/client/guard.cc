// bulwark::Guard: the pipeline (on a loop thread of its own) around a
// blocking function run on the caller's thread. Each Run is a small
// rendezvous: the loop hands attempts to the caller, the caller hands their
// results back.
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>

#include "bulwark/resilience.h"
#include "env/real/event_loop.h"
#include "env/real/real_env.h"

namespace bulwark {

struct Guard::Impl {
  bw::env::EventLoop loop;
  bw::env::RealClock clock;
  bw::env::RealRandom random;
  // Touched on the loop thread only (built before it starts, reset on it).
  std::unique_ptr<Pipeline> pipeline;
  // A copy of the metrics, refreshed on the loop after each call.
  mutable std::mutex mu;
  PipelineMetrics metrics;
};

namespace {

// One Run: attempts handed to the caller, and the call's result.
struct Rendezvous {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<Attempt, Pipeline::AttemptDone>> attempts;
  std::optional<CallResult> result;
};

}  // namespace

Guard::Guard(PipelineOptions o, int endpoints, std::function<void(const Event&)> on_event)
    : impl_(std::make_unique<Impl>()) {
  impl_->pipeline = std::make_unique<Pipeline>(std::move(o), endpoints, impl_->clock, impl_->loop,
                                               impl_->random, std::move(on_event));
  impl_->loop.Start("bw-guard");
}

Guard::~Guard() {
  std::promise<void> gone;
  impl_->loop.Post([this, &gone] {
    impl_->pipeline.reset();
    gone.set_value();
  });
  gone.get_future().wait();
  impl_->loop.Stop();
}

CallResult Guard::Run(const CallSpec& spec_in,
                      const std::function<AttemptResult(const Attempt&)>& fn) {
  CallSpec spec = spec_in;
  spec.hedge = false;
  auto rv = std::make_shared<Rendezvous>();
  Impl* impl = impl_.get();
  impl->loop.Post([impl, spec, rv] {
    impl->pipeline->Execute(
        spec,
        [rv](const Attempt& a, Pipeline::AttemptDone done) {
          std::lock_guard<std::mutex> lock(rv->mu);
          rv->attempts.emplace_back(a, std::move(done));
          rv->cv.notify_all();
        },
        [impl, rv](CallResult r) {
          {
            std::lock_guard<std::mutex> lock(impl->mu);
            impl->metrics = impl->pipeline->metrics();
          }
          std::lock_guard<std::mutex> lock(rv->mu);
          rv->result = std::move(r);
          rv->cv.notify_all();
        });
  });
  for (;;) {
    std::unique_lock<std::mutex> lock(rv->mu);
    rv->cv.wait(lock, [&] { return rv->result.has_value() || !rv->attempts.empty(); });
    if (rv->result) {
      // Attempts handed over after the call ended were never made: give
      // their slots back.
      for (auto& [a, done] : rv->attempts) {
        impl->loop.Post([done = std::move(done)] {
          done(AttemptResult{absl::CancelledError("the call had ended"), false, std::nullopt});
        });
      }
      return *rv->result;
    }
    auto [attempt, done] = std::move(rv->attempts.front());
    rv->attempts.pop_front();
    lock.unlock();
    AttemptResult r = fn(attempt);
    impl->loop.Post([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  }
}

std::chrono::microseconds Guard::Remaining(const Attempt& a) const {
  return std::chrono::microseconds(std::max<int64_t>(0, a.deadline_us - impl_->clock.NowMicros()));
}

int64_t Guard::DeadlineAfter(std::chrono::microseconds timeout) const {
  return impl_->clock.NowMicros() + timeout.count();
}

PipelineMetrics Guard::metrics() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->metrics;
}

}  // namespace bulwark
