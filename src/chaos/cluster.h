// The members of a chaos run: bulwark processes, one per network namespace
// (chaos/netns.h), started, killed, paused and restarted by PID. Data
// directories and logs live under the run's output directory.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "chaos/netns.h"
#include "core/status.h"

namespace bw::chaos {

class Cluster {
 public:
  // `extra_args` go to every `bulwark start` (planted bugs, for instance).
  Cluster(Network& net, std::string bulwark, std::string dir, std::vector<std::string> extra_args);
  ~Cluster() { StopAll(); }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  [[nodiscard]] absl::Status StartAll();
  // Starts member `i` (again, with the same data) if it is not running.
  [[nodiscard]] absl::Status Start(int i);
  void Kill(int i);  // SIGKILL, reaped
  void Pause(int i);
  void Resume(int i);
  void StopAll();

  int size() const { return static_cast<int>(pids_.size()); }
  bool running(int i) const { return pids_[i] > 0; }
  bool paused(int i) const { return paused_[i]; }
  std::string name(int i) const { return "n" + std::to_string(i); }
  std::string endpoint(int i) const;
  std::vector<std::string> endpoints() const;
  std::string log_path(int i) const;

  // The member the running members agree leads (Maintenance.Status, 500 ms
  // per member), or -1.
  int Leader() const;
  // Until a leader is agreed, at most `timeout_ms`.
  [[nodiscard]] absl::Status WaitForLeader(int timeout_ms) const;

 private:
  std::vector<std::string> Argv(int i) const;

  Network& net_;
  std::string bulwark_;
  std::string dir_;
  std::vector<std::string> extra_;
  std::vector<pid_t> pids_;
  std::vector<bool> paused_;
};

}  // namespace bw::chaos
