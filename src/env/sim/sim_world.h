// A deterministic world for the simulator: virtual time, one event queue,
// one seeded random stream, and a network whose faults (loss, duplication,
// delay and reordering, partitions) are decided from that stream. Every
// node gets a SimEnv: a view of the world with its own clock rate (drift),
// its own timers and its own network endpoint.
//
// Single-threaded: everything runs inside SimWorld::Run* on the caller's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "env/env.h"
#include "env/seeded_random.h"
#include "env/sim/sim_disk.h"

namespace bw::env {

struct NetworkFaults {
  double drop = 0;       // probability a message is lost
  double duplicate = 0;  // probability a message is delivered twice
  int64_t delay_min_us = 100;
  int64_t delay_max_us = 2000;  // a wide spread reorders messages
  // Occasional long delays (a message stuck in a queue somewhere).
  double spike = 0;
  int64_t spike_us = 0;
};

class SimWorld;

// One node's view of the world.
class SimEnv final : public Env {
 public:
  Clock& clock() override { return clock_; }
  Timers& timers() override { return timers_; }
  Random& random() override { return random_; }
  Network& network() override { return network_; }
  Disk& disk() override { return *disk_; }
  SimDisk& sim_disk() { return *disk_; }
  NodeId id() const { return id_; }
  // Offloaded work (an fsync) runs this long after it was asked for, and
  // then answers: a crash in between finds the data unsynced.
  void Offload(std::function<absl::Status()> work, std::function<void(absl::Status)> done) override;
  void set_offload_latency_us(int64_t us) { offload_latency_us_ = us; }

 private:
  friend class SimWorld;
  SimEnv(SimWorld* world, NodeId id, uint64_t seed);

  class SimClock final : public Clock {
   public:
    int64_t NowMicros() override;
    SimEnv* env;
  };
  class SimTimers final : public Timers {
   public:
    TimerId Schedule(int64_t delay_us, std::function<void()> fn) override;
    void Cancel(TimerId id) override;
    SimEnv* env;
  };
  class SimNetwork final : public Network {
   public:
    void Send(NodeId to, std::string bytes) override;
    void SetReceiver(Receiver r) override { receiver = std::move(r); }
    Receiver receiver;
    SimEnv* env;
  };

  SimWorld* world_;
  NodeId id_;
  SimClock clock_;
  SimTimers timers_;
  SeededRandom random_;
  SimNetwork network_;
  std::unique_ptr<SimDisk> disk_;
  int64_t offload_latency_us_ = 0;
  // Clock rate relative to true time (1.0 = exact); drift between nodes.
  double rate_ = 1.0;
  int64_t clock_offset_us_ = 0;
  // Bumped at every crash: timers and deliveries of an older incarnation
  // never run.
  uint64_t incarnation_ = 0;
  bool up_ = true;
  // Cancelled timers that have not fired yet (cancels are rarer than
  // schedules, so this stays small).
  std::unordered_set<TimerId> cancelled_timers_;
};

class SimWorld {
 public:
  explicit SimWorld(uint64_t seed);
  // Pending events go first: they may hold what a node's env lent (an
  // offloaded sync holds its file open).
  ~SimWorld() { slots_.clear(); }
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;

  SimEnv& AddNode(NodeId id);
  SimEnv& env(NodeId id) { return *envs_.at(id); }
  bool HasNode(NodeId id) const { return envs_.count(id) > 0; }

  int64_t now_us() const { return now_us_; }
  Random& random() { return random_; }

  // Schedules a world event (not owned by any node) at now + delay.
  void At(int64_t delay_us, std::function<void()> fn);
  // Runs events until the queue is empty or virtual time passes `until_us`.
  void RunUntil(int64_t until_us);
  uint64_t events_run() const { return events_run_; }
  size_t events_pending() const { return queue_.size(); }

  // --- Faults ---
  NetworkFaults& faults() { return faults_; }
  // Messages from `from` to `to` are lost while blocked.
  void Block(NodeId from, NodeId to) { blocked_.insert({from, to}); }
  void Unblock(NodeId from, NodeId to) { blocked_.erase({from, to}); }
  void HealPartitions() { blocked_.clear(); }
  bool Blocked(NodeId from, NodeId to) const { return blocked_.count({from, to}) > 0; }
  bool Partitioned() const { return !blocked_.empty(); }
  // The node stops: its timers and in-flight deliveries are dropped, and its
  // disk loses what was not synced. `Restart` makes it reachable again (the
  // caller creates a new node object on the same SimEnv).
  void Crash(NodeId id);
  void Restart(NodeId id);
  bool Up(NodeId id) const { return envs_.at(id)->up_; }
  void SetClockRate(NodeId id, double rate);

  uint64_t messages_sent() const { return messages_sent_; }
  uint64_t messages_dropped() const { return messages_dropped_; }

 private:
  friend class SimEnv;
  // The heap holds small keys; callbacks sit in slots so that sifting the
  // heap moves 24 bytes, not a std::function.
  struct Event {
    int64_t at_us;
    uint64_t seq;
    uint32_t slot;
    bool operator>(const Event& o) const {
      return at_us != o.at_us ? at_us > o.at_us : seq > o.seq;
    }
  };
  // A slot with this bit set names a message delivery, not a callback.
  static constexpr uint32_t kDeliverySlot = 1u << 31;
  struct Delivery {
    SimEnv* dst;
    NodeId from;
    uint64_t incarnation;
    std::string payload;
  };
  void Push(int64_t at_us, std::function<void()> fn);
  void Deliver(NodeId from, NodeId to, std::string bytes);
  void RunDelivery(Delivery& d);

  SeededRandom random_;
  int64_t now_us_ = 0;
  uint64_t seq_ = 0;
  uint64_t events_run_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  std::vector<std::function<void()>> slots_;
  std::vector<uint32_t> free_slots_;
  // Deliveries, the most common event, skip std::function's allocation.
  std::vector<Delivery> deliveries_;
  std::vector<uint32_t> free_deliveries_;
  std::map<NodeId, std::unique_ptr<SimEnv>> envs_;
  NetworkFaults faults_;
  std::set<std::pair<NodeId, NodeId>> blocked_;
  TimerId next_timer_ = 1;
  uint64_t messages_sent_ = 0;
  uint64_t messages_dropped_ = 0;
};

}  // namespace bw::env
