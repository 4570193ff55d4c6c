// For tests of real threads and sockets: wait, in real time, for something
// another thread does.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

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

}  // namespace bw::env::testing
