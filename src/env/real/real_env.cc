#include "env/real/real_env.h"

#include <chrono>
#include <random>
#include <thread>
#include <utility>

#include "core/assert.h"
#include "env/real/event_loop.h"

namespace bw::env {

namespace {

uint64_t SeedFromDevice() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
}

}  // namespace

void SleepMicros(int64_t us) {
  if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

int64_t RealClock::NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

RealRandom::RealRandom() : RealRandom(SeedFromDevice()) {}

RealEnv::RealEnv(std::unique_ptr<Timers> timers, std::unique_ptr<Network> network)
    : owned_timers_(std::move(timers)), owned_network_(std::move(network)) {
  timers_ = owned_timers_.get();
  network_ = owned_network_.get();
}

RealEnv::RealEnv(Timers& timers, Network& network) : timers_(&timers), network_(&network) {}

RealEnv::~RealEnv() = default;

void RealEnv::StartStorageThread(EventLoop& loop) {
  BW_ASSERT(storage_ == nullptr);
  answer_loop_ = &loop;
  storage_ = std::make_unique<EventLoop>();
  storage_->Start("bw-storage");
}

void RealEnv::Offload(std::function<absl::Status()> work, std::function<void(absl::Status)> done) {
  if (storage_ == nullptr) return Env::Offload(std::move(work), std::move(done));
  EventLoop* answer = answer_loop_;
  storage_->Post([answer, work = std::move(work), done = std::move(done)]() mutable {
    absl::Status s = work();
    answer->Post([done = std::move(done), s = std::move(s)] { done(s); });
  });
}

Timers& RealEnv::timers() {
  BW_ASSERT_MSG(timers_ != nullptr,
                "RealEnv::timers() called but no Timers was given (pass an EventLoop to the "
                "RealEnv constructor)");
  return *timers_;
}

Network& RealEnv::network() {
  BW_ASSERT_MSG(network_ != nullptr,
                "RealEnv::network() called but no Network was given (pass a TcpNetwork to "
                "the RealEnv constructor)");
  return *network_;
}

}  // namespace bw::env
