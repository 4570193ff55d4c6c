// A named OS thread, joined on destruction. The one place outside the
// standard library where bulwark starts threads (see env/env.h).
#pragma once

#include <functional>
#include <string>
#include <thread>

namespace bw::env {

class Thread {
 public:
  // Starts `fn` on a new thread named `name` (at most 15 characters show).
  Thread(std::string name, std::function<void()> fn);
  // Joins: `fn` must be made to return first.
  ~Thread();
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;

 private:
  std::thread thread_;
};

}  // namespace bw::env
