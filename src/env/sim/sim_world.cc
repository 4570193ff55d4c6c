#include "env/sim/sim_world.h"

#include <cmath>

#include "core/assert.h"

namespace bw::env {

// --- SimEnv ---------------------------------------------------------------

SimEnv::SimEnv(SimWorld* world, NodeId id, uint64_t seed)
    : world_(world), id_(id), random_(seed), disk_(std::make_unique<SimDisk>(random_)) {
  clock_.env = this;
  timers_.env = this;
  network_.env = this;
}

int64_t SimEnv::SimClock::NowMicros() {
  return env->clock_offset_us_ + static_cast<int64_t>(std::llround(
                                     static_cast<double>(env->world_->now_us()) * env->rate_));
}

void SimEnv::Offload(std::function<absl::Status()> work, std::function<void(absl::Status)> done) {
  // One latency for every work of this env keeps them in order.
  timers_.Schedule(offload_latency_us_,
                   [work = std::move(work), done = std::move(done)] { done(work()); });
}

TimerId SimEnv::SimTimers::Schedule(int64_t delay_us, std::function<void()> fn) {
  BW_ASSERT_GE(delay_us, 0);
  SimWorld* w = env->world_;
  TimerId id = w->next_timer_++;
  // A node whose clock runs fast fires its timers early in true time.
  int64_t true_delay =
      static_cast<int64_t>(std::llround(static_cast<double>(delay_us) / env->rate_));
  uint64_t incarnation = env->incarnation_;
  SimEnv* e = env;
  w->Push(w->now_us() + true_delay, [e, id, incarnation, fn = std::move(fn)]() {
    if (e->incarnation_ != incarnation || !e->up_) return;
    if (!e->cancelled_timers_.empty() && e->cancelled_timers_.erase(id) > 0) return;
    fn();
  });
  return id;
}

void SimEnv::SimTimers::Cancel(TimerId id) {
  // Ids are never reused; cancelling one that already ran leaves a stale
  // entry, which is cleared at the next crash.
  if (id != 0) env->cancelled_timers_.insert(id);
}

void SimEnv::SimNetwork::Send(NodeId to, std::string bytes) {
  env->world_->Deliver(env->id_, to, std::move(bytes));
}

// --- SimWorld -------------------------------------------------------------

SimWorld::SimWorld(uint64_t seed) : random_(seed) {}

SimEnv& SimWorld::AddNode(NodeId id) {
  BW_ASSERT(!envs_.count(id));
  auto env = std::unique_ptr<SimEnv>(new SimEnv(this, id, random_.Next()));
  SimEnv& ref = *env;
  envs_[id] = std::move(env);
  return ref;
}

void SimWorld::Push(int64_t at_us, std::function<void()> fn) {
  uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<uint32_t>(slots_.size());
    BW_ASSERT_LT(slot, kDeliverySlot);
    slots_.push_back(std::move(fn));
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = std::move(fn);
  }
  queue_.push(Event{at_us, seq_++, slot});
}

void SimWorld::At(int64_t delay_us, std::function<void()> fn) {
  Push(now_us_ + delay_us, std::move(fn));
}

void SimWorld::RunUntil(int64_t until_us) {
  while (!queue_.empty() && queue_.top().at_us <= until_us) {
    Event ev = queue_.top();
    queue_.pop();
    BW_ASSERT_GE(ev.at_us, now_us_);
    now_us_ = ev.at_us;
    ++events_run_;
    if (ev.slot & kDeliverySlot) {
      uint32_t slot = ev.slot & ~kDeliverySlot;
      Delivery d = std::move(deliveries_[slot]);
      free_deliveries_.push_back(slot);
      RunDelivery(d);
      continue;
    }
    std::function<void()> fn = std::move(slots_[ev.slot]);
    free_slots_.push_back(ev.slot);
    fn();
  }
  if (now_us_ < until_us) now_us_ = until_us;
}

void SimWorld::Deliver(NodeId from, NodeId to, std::string bytes) {
  ++messages_sent_;
  auto it = envs_.find(to);
  if (it == envs_.end() || Blocked(from, to) || random_.Chance(faults_.drop)) {
    ++messages_dropped_;
    return;
  }
  int copies = random_.Chance(faults_.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    int64_t span = std::max<int64_t>(0, faults_.delay_max_us - faults_.delay_min_us);
    int64_t delay = faults_.delay_min_us + static_cast<int64_t>(random_.Below(span + 1));
    if (faults_.spike > 0 && random_.Chance(faults_.spike)) delay += faults_.spike_us;
    SimEnv* dst = it->second.get();
    uint64_t incarnation = dst->incarnation_;
    Delivery d{dst, from, incarnation, i + 1 < copies ? bytes : std::move(bytes)};
    uint32_t slot;
    if (free_deliveries_.empty()) {
      slot = static_cast<uint32_t>(deliveries_.size());
      BW_ASSERT_LT(slot, kDeliverySlot);
      deliveries_.push_back(std::move(d));
    } else {
      slot = free_deliveries_.back();
      free_deliveries_.pop_back();
      deliveries_[slot] = std::move(d);
    }
    queue_.push(Event{now_us_ + delay, seq_++, slot | kDeliverySlot});
  }
}

void SimWorld::RunDelivery(Delivery& d) {
  // A message in flight when the receiver crashed dies with it; a partition
  // that started meanwhile also catches it.
  if (!d.dst->up_ || d.dst->incarnation_ != d.incarnation || Blocked(d.from, d.dst->id_)) {
    ++messages_dropped_;
    return;
  }
  if (d.dst->network_.receiver) d.dst->network_.receiver(d.from, d.payload);
}

void SimWorld::Crash(NodeId id) {
  SimEnv& e = *envs_.at(id);
  if (!e.up_) return;
  e.up_ = false;
  ++e.incarnation_;
  e.cancelled_timers_.clear();
  e.network_.receiver = nullptr;
  e.disk_->Crash();
}

void SimWorld::Restart(NodeId id) {
  SimEnv& e = *envs_.at(id);
  e.up_ = true;
}

void SimWorld::SetClockRate(NodeId id, double rate) {
  SimEnv& e = *envs_.at(id);
  // Keep the node's clock continuous across the change.
  int64_t before = e.clock_.NowMicros();
  e.rate_ = rate;
  e.clock_offset_us_ += before - e.clock_.NowMicros();
}

}  // namespace bw::env
