#include "env/real/event_loop.h"

#include <asio/post.hpp>
#include <chrono>
#include <utility>

#include "core/assert.h"

namespace bw::env {

EventLoop::EventLoop()
    : work_(std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
          io_.get_executor())) {}

EventLoop::~EventLoop() {
  Stop();
  thread_.reset();  // joins
  // Timers die before the context that owns their handlers.
  timers_.clear();
}

void EventLoop::Start(std::string thread_name) {
  BW_ASSERT_MSG(thread_ == nullptr, "event loop started twice");
  thread_ = std::make_unique<Thread>(std::move(thread_name), [this] { Run(); });
}

void EventLoop::Run() {
  loop_thread_ = std::this_thread::get_id();
  io_.run();
  loop_thread_ = std::thread::id();
}

void EventLoop::Stop() {
  work_.reset();
  io_.stop();
}

void EventLoop::Post(std::function<void()> fn) {
  asio::post(io_, std::move(fn));
}

bool EventLoop::InLoopThread() const {
  return loop_thread_.load() == std::this_thread::get_id();
}

TimerId EventLoop::Schedule(int64_t delay_us, std::function<void()> fn) {
  const TimerId id = next_timer_++;
  if (delay_us <= 0) {
    // Due now: queued behind what the loop already holds, without a timer
    // (an Asio timer costs an allocation and two timerfd_settime calls, and
    // the members schedule one after nearly every message: Node::PumpSoon).
    // The map keeps a null entry, so Cancel still works.
    asio::post(io_, [this, id, fn = std::move(fn)] {
      auto it = timers_.find(id);
      if (it == timers_.end()) return;
      timers_.erase(it);
      fn();
    });
    timers_.emplace(id, nullptr);
    return id;
  }
  auto timer = std::make_unique<asio::steady_timer>(io_);
  timer->expires_after(std::chrono::microseconds(delay_us));
  timer->async_wait([this, id, fn = std::move(fn)](const std::error_code& ec) {
    // A cancelled timer is gone from the map before its handler runs (and
    // the handler runs with operation_aborted): nothing to do.
    auto it = timers_.find(id);
    if (ec || it == timers_.end()) return;
    timers_.erase(it);
    fn();
  });
  timers_.emplace(id, std::move(timer));
  return id;
}

void EventLoop::Cancel(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  if (it->second != nullptr) it->second->cancel();
  timers_.erase(it);
}

}  // namespace bw::env
