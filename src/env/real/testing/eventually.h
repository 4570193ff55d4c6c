// For tests of real threads and sockets: wait, in real time, for something
// another thread does; run something on an event loop and wait for it.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <thread>
#include <type_traits>

#include "env/real/event_loop.h"

namespace bw::env::testing {

// Polls `pred` every millisecond until it holds (true) or `patience` has
// passed (false).
inline bool Eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds patience = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Runs `fn` on the loop thread, waits for it and returns what it returned.
template <typename F>
auto OnLoop(EventLoop& loop, F fn) {
  std::promise<decltype(fn())> p;
  auto f = p.get_future();
  loop.Post([&] {
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      p.set_value();
    } else {
      p.set_value(fn());
    }
  });
  return f.get();
}

}  // namespace bw::env::testing
