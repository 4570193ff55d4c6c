// The production world: the steady clock, a fast PRNG seeded once from the
// OS, and POSIX files. Timers and the network are injected: the timers are
// an EventLoop's (env/real/event_loop.h), the network the TCP transport's;
// RealEnv asserts if asked for one it was not given.
//
// Thread-safety: RealClock may be called from any thread; RealRandom and
// RealEnv belong to the single event-loop thread that owns the node.
#pragma once

#include <cstdint>
#include <memory>

#include "env/env.h"
#include "env/real/real_disk.h"
#include "env/seeded_random.h"

namespace bw::env {

class EventLoop;

// std::chrono::steady_clock in microseconds.
class RealClock final : public Clock {
 public:
  int64_t NowMicros() override;
};

// Blocks the calling thread for `us` microseconds (harness and tool threads
// only: the event loop never sleeps).
void SleepMicros(int64_t us);

// xoshiro256**, its state filled by splitmix64 from one seed. Not for
// cryptography: it picks election timeouts, jitter and request ids.
class RealRandom final : public SeededRandom {
 public:
  // Seeds from std::random_device, once.
  RealRandom();
  // A reproducible stream, for tests and tools.
  explicit RealRandom(uint64_t seed) : SeededRandom(seed) {}
};

class RealEnv final : public Env {
 public:
  // `timers` and `network` may be null; calling timers() or network() on an
  // env built without one is a programming error and aborts.
  explicit RealEnv(std::unique_ptr<Timers> timers = nullptr,
                   std::unique_ptr<Network> network = nullptr);
  // Borrows the timers (an EventLoop's) and the network, which must outlive
  // the env.
  RealEnv(Timers& timers, Network& network);
  // Finishes the offloaded work in progress (if any), drops what waits.
  ~RealEnv() override;
  RealEnv(const RealEnv&) = delete;
  RealEnv& operator=(const RealEnv&) = delete;

  Clock& clock() override { return clock_; }
  Timers& timers() override;
  Random& random() override { return random_; }
  Network& network() override;
  Disk& disk() override { return disk_; }
  // Offloaded work (the member's fsyncs) runs, one at a time, on a storage
  // thread of this env's, and `done` is posted to `loop`, the thread that
  // owns the node (the env's timers). Call once, on that thread, before
  // anything is offloaded. Without it Offload runs the work on the caller's
  // thread (Env's default), as tools and tests need no thread.
  void StartStorageThread(EventLoop& loop);
  void Offload(std::function<absl::Status()> work, std::function<void(absl::Status)> done) override;

 private:
  RealClock clock_;
  RealRandom random_;
  RealDisk disk_;
  std::unique_ptr<Timers> owned_timers_;
  std::unique_ptr<Network> owned_network_;
  Timers* timers_ = nullptr;
  Network* network_ = nullptr;
  EventLoop* answer_loop_ = nullptr;
  // Last: it stops (joining its thread) before the rest goes.
  std::unique_ptr<EventLoop> storage_;
};

}  // namespace bw::env
