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
  // With `fake_clock`, members run with libfaketime preloaded (see
  // SetClockOffset).
  Cluster(Network& net, std::string bulwark, std::string dir, std::vector<std::string> extra_args,
          bool fake_clock = false);
  ~Cluster() {
    StopAll();
    UnmountDisks();
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  [[nodiscard]] absl::Status StartAll();
  // Starts member `i` (again, with the same data) if it is not running.
  [[nodiscard]] absl::Status Start(int i);
  void Kill(int i);  // SIGKILL, reaped
  void Pause(int i);
  void Resume(int i);
  void StopAll();

  // Moves member i's wall clock `seconds` away from the real one (0: back
  // to it), within a second. Only CLOCK_REALTIME moves; the monotonic clock,
  // which bulwark times elections and leases with, is left alone, as NTP
  // and an operator's `date -s` leave it.
  [[nodiscard]] absl::Status SetClockOffset(int i, double seconds);

  // Membership, through the Cluster API of a running member (etcd's
  // runtime reconfiguration). RemoveMember takes member i out of the
  // cluster, stops it and deletes its data; AddLearner adds it back as a
  // learner (a new member id) and starts it with --initial-cluster-state
  // existing; Promote makes it a voter once it has caught up.
  [[nodiscard]] absl::Status RemoveMember(int i);
  [[nodiscard]] absl::Status AddLearner(int i);
  [[nodiscard]] absl::Status Promote(int i, int timeout_ms);
  bool removed(int i) const { return removed_[i]; }

  // Puts each member's data on a small filesystem of its own (an ext4 image
  // of `mib` MiB on a loop device, under the run's directory), so that
  // FillDisk can fill it. Before StartAll; unmounted by the destructor.
  [[nodiscard]] absl::Status UseSmallDisks(int mib);
  // Leaves member i's filesystem without free space (a filler file), or
  // frees it again.
  [[nodiscard]] absl::Status FillDisk(int i);
  void FreeDisk(int i);

  // The libfaketime library members preload; "" when it is not installed.
  static std::string FakeTimeLibrary();

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
  std::string clock_path(int i) const;
  std::string data_path(int i) const;
  void UnmountDisks();
  // Calls `call` on each running member (the leader first) until one
  // succeeds.
  template <class Call>
  absl::Status OnAnyMember(Call call) const;
  // Member i's current id in the member list (0: not a member).
  absl::StatusOr<uint64_t> MemberId(int i, bool* learner = nullptr) const;

  Network& net_;
  std::string bulwark_;
  std::string dir_;
  std::vector<std::string> extra_;
  std::vector<pid_t> pids_;
  std::vector<bool> paused_;
  bool fake_clock_;
  // Re-added members join the existing cluster; removed ones stay down.
  std::vector<bool> joins_existing_;
  std::vector<bool> removed_;
  std::vector<std::string> mounted_;  // data directories on their own filesystem
};

}  // namespace bw::chaos
