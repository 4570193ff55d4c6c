// Absolute wall-clock deadlines for libraries that want one (gRPC's
// Server::Shutdown, client contexts). The wall clock is read here, in
// env/real, and nowhere else outside the CLI.
#pragma once

#include <chrono>
#include <cstdint>

namespace bw::env {

template <class Rep, class Period>
std::chrono::system_clock::time_point WallDeadlineAfter(std::chrono::duration<Rep, Period> d) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
}

// Milliseconds since the Unix epoch (UUIDv7 keys carry it).
inline int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace bw::env
