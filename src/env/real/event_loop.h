// The event loop of a real member: one thread runs an Asio io_context, and
// everything that touches the member's state runs on it — timers, socket
// callbacks, and work posted from other threads (the storage thread's
// completions). It is the env::Timers of RealEnv.
//
// Thread-safety: Post, Stop and InLoopThread may be called from any thread.
// Schedule and Cancel belong to the loop thread (as env::Timers says), or to
// any thread before the loop starts.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_map>

#include "env/env.h"
#include "env/real/thread.h"

namespace bw::env {

class EventLoop final : public Timers {
 public:
  EventLoop();
  // Stops the loop and joins its thread if Start ran it.
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs the loop on a thread of its own until Stop.
  void Start(std::string thread_name = "bw-loop");
  // Runs the loop on the calling thread until Stop.
  void Run();
  // Makes Run return once the handler in progress (if any) is done; pending
  // timers and posted work are dropped. Idempotent.
  void Stop();
  // Runs `fn` on the loop thread, after what is already queued.
  void Post(std::function<void()> fn);
  bool InLoopThread() const;

  TimerId Schedule(int64_t delay_us, std::function<void()> fn) override;
  void Cancel(TimerId id) override;
  size_t pending_timers() const { return timers_.size(); }

  asio::io_context& context() { return io_; }

 private:
  asio::io_context io_;
  // Keeps Run from returning while there is nothing to do.
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unordered_map<TimerId, std::unique_ptr<asio::steady_timer>> timers_;
  TimerId next_timer_ = 1;
  std::atomic<std::thread::id> loop_thread_{};
  std::unique_ptr<Thread> thread_;
};

}  // namespace bw::env
