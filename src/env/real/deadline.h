// Absolute wall-clock deadlines for libraries that want one (gRPC's
// Server::Shutdown, client contexts). The wall clock is read here, in
// env/real, and nowhere else outside the CLI.
#pragma once

#include <chrono>

namespace bw::env {

inline std::chrono::system_clock::time_point WallDeadlineAfter(std::chrono::milliseconds d) {
  return std::chrono::system_clock::now() + d;
}

}  // namespace bw::env
