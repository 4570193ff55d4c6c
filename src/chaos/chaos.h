// `bulwark chaos`: real bulwark processes in network namespaces, concurrent
// clients, a nemesis schedule of real faults, a history of every operation
// and checkers over it, and a report. See docs/chaos.md.
//
// The run: create the namespaces and the bridge; start the members; start
// the workload; then, until the time limit, alternate quiet periods with
// faults (each held for a few seconds, then healed: partitions, kills,
// pauses, packet loss); heal everything, let the workload run on for a
// few seconds, stop it; check; write the report; remove everything it
// created (also after SIGINT or SIGTERM).
#pragma once

#include <atomic>
#include <cstdint>
#include <set>
#include <string>

namespace bw::chaos {

struct ChaosOptions {
  int nodes = 3;
  double time_limit_s = 60;
  std::set<std::string> nemeses = {"partition", "kill",   "pause", "loss",
                                   "clock",     "member", "power"};
  // "watch" follows the exactly-once workload's writes (and brings it along).
  std::set<std::string> workloads = {"register", "exactly-once", "watch", "txn", "lock"};
  std::string out_dir;
  std::string bulwark;  // the binary the members run
  // "", "stale-reads", "skip-dedup", "watch-gaps" or "ack-before-fsync": a debug server flag
  // the checkers must catch.
  std::string plant_bug;
  int clients = 10;
  // Seconds between the end of one fault and the start of the next, and how
  // long a fault lasts (each drawn uniformly from [x, 2x]).
  double quiet_s = 2;
  double fault_s = 3;
  uint64_t seed = 1;
  bool progress = true;
  std::string command_line;
};

// Nemeses and workloads this build knows.
const std::set<std::string>& KnownNemeses();
const std::set<std::string>& KnownWorkloads();

// Runs the whole thing; returns the process exit code: 0 when every checker
// passed, 1 when one did not (or gave up), 2 for a run that could not be
// made (not root, no `ip` or `nft`, a member that would not start), 130
// when interrupted. `stop` may be set from a signal handler.
int RunChaos(const ChaosOptions& o, std::atomic<bool>& stop);

}  // namespace bw::chaos
