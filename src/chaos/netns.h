// The chaos harness's network: one network namespace per member, joined by
// a bridge in the harness's namespace (veth pairs), on a /24 of 10.213.0.0/16
// chosen per run. The harness and its clients reach members through the
// bridge address (.254); members reach each other through it too.
//
// Faults are nftables rules inside the members' namespaces (one table,
// `inet bwchaos`, rewritten whole on every change): partitions drop what a
// member receives from the members outside its group (the harness's own
// address is never blocked, so clients keep talking to the side they are
// on); loss drops a share of everything a member receives. Nothing outside
// the namespaces and the bridge this object created is touched, and
// Destroy (also run by the destructor) removes all of it.
//
// Not here: latency, duplication and reordering with tc netem (this kernel
// has no sch_netem); see docs/chaos.md.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace bw::chaos {

class Network {
 public:
  Network() = default;
  ~Network() { Destroy(); }
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // Creates `nodes` namespaces and the bridge; `tag` (0..249; the next free
  // one if a live run has it) picks the names (namespaces
  // bwc<tag>-<pid>-n<i>, bridge bwc<tag>) and the subnet 10.213.<tag>.0/24.
  [[nodiscard]] absl::Status Create(int nodes, int tag);
  void Destroy();

  std::string ns(int node) const;
  std::string address(int node) const;  // 10.213.<tag>.<node+1>
  std::string host_address() const;     // 10.213.<tag>.254
  int nodes() const { return nodes_; }
  int tag() const { return tag_; }

  // Members in different groups cannot reach each other (a member in no
  // group reaches everyone). Replaces any earlier partition.
  [[nodiscard]] absl::Status Partition(const std::vector<std::vector<int>>& groups);
  // One-way links: for each (from, to), `to` stops hearing from `from` (but
  // `from` still hears `to`). Replaces any earlier partition or block.
  [[nodiscard]] absl::Status Block(const std::vector<std::pair<int, int>>& links);
  // Each member drops `percent` of what it receives (0: none).
  [[nodiscard]] absl::Status SetLoss(int percent);
  // Removes every partition, block and loss.
  [[nodiscard]] absl::Status Heal();

  // Removes namespaces and bridges left by earlier runs that were killed
  // before they could clean up: namespaces whose run (the pid in the name)
  // is gone, bridges with no port. Returns how many.
  static int RemoveLeftovers();

 private:
  [[nodiscard]] absl::Status Apply();

  int nodes_ = 0;
  int tag_ = -1;
  bool created_ = false;
  // blocked_[to][from]: `to` drops what `from` sends.
  std::vector<std::vector<bool>> blocked_;
  int loss_percent_ = 0;
};

}  // namespace bw::chaos
