#include "cli/sim_command.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "sim/simulator.h"

namespace bw::cli {

namespace {

// The flags of `bulwark sim`. Counts and switches bind straight into the
// simulator's options (so their defaults are the simulator's); durations are
// taken in seconds and milliseconds and converted by MakeOptions.
struct SimFlags {
  sim::SimOptions options;
  uint64_t seeds = 0;
  std::string faults = "all";
  std::string workload = "registers";
  double safety_s = static_cast<double>(sim::SimOptions{}.safety_us) / 1e6;
  double liveness_s = static_cast<double>(sim::SimOptions{}.liveness_us) / 1e6;
  double progress_s = static_cast<double>(sim::SimOptions{}.progress_every_us) / 1e6;
  double tick_ms = static_cast<double>(sim::SimOptions{}.tick_us) / 1e3;
  bool verbose = false;
  std::vector<std::string> bugs;
};

std::string ReproduceCommand(const SimFlags& f, uint64_t seed) {
  const sim::SimOptions defaults;
  const SimFlags default_flags;
  const sim::SimOptions& o = f.options;
  std::string cmd = absl::StrCat("bulwark sim --seed ", seed, " --nodes ", o.nodes, " --clients ",
                                 o.clients, " --keys ", o.keys, " --faults ", f.faults);
  if (f.safety_s != default_flags.safety_s) absl::StrAppend(&cmd, " --safety-seconds ", f.safety_s);
  if (f.liveness_s != default_flags.liveness_s) {
    absl::StrAppend(&cmd, " --liveness-seconds ", f.liveness_s);
  }
  if (f.tick_ms != default_flags.tick_ms) absl::StrAppend(&cmd, " --tick-ms ", f.tick_ms);
  if (o.lease_reads) absl::StrAppend(&cmd, " --lease-reads");
  if (o.election_ticks != defaults.election_ticks) {
    absl::StrAppend(&cmd, " --election-ticks ", o.election_ticks);
  }
  if (o.heartbeat_ticks != defaults.heartbeat_ticks) {
    absl::StrAppend(&cmd, " --heartbeat-ticks ", o.heartbeat_ticks);
  }
  if (o.corrupt_nodes != 0) absl::StrAppend(&cmd, " --corrupt-nodes ", o.corrupt_nodes);
  if (o.rebuild_damaged) absl::StrAppend(&cmd, " --rebuild");
  if (f.workload != default_flags.workload) absl::StrAppend(&cmd, " --workload ", f.workload);
  if (o.sdk_clients) absl::StrAppend(&cmd, " --sdk");
  if (o.keyed_reuse_chance != defaults.keyed_reuse_chance) {
    absl::StrAppend(&cmd, " --reuse-chance ", o.keyed_reuse_chance);
  }
  for (const std::string& b : f.bugs)
    absl::StrAppend(&cmd, " --plant-bug ", b);
  return cmd;
}

absl::StatusOr<sim::SimOptions> MakeOptions(const SimFlags& f) {
  sim::SimOptions o = f.options;
  BW_ASSIGN_OR_RETURN(o.faults, sim::ParseFaults(f.faults));
  BW_ASSIGN_OR_RETURN(o.workload, sim::ParseWorkload(f.workload));
  if (f.safety_s < 0 || f.liveness_s <= 0) {
    return absl::InvalidArgumentError("--safety-seconds must be >= 0 and --liveness-seconds > 0");
  }
  if (f.tick_ms <= 0) return absl::InvalidArgumentError("--tick-ms must be positive");
  o.safety_us = static_cast<int64_t>(f.safety_s * 1e6);
  o.liveness_us = static_cast<int64_t>(f.liveness_s * 1e6);
  o.progress_every_us = static_cast<int64_t>(f.progress_s * 1e6);
  o.tick_us = static_cast<int64_t>(f.tick_ms * 1000);
  for (const std::string& b : f.bugs) {
#ifdef BW_PLANTED_BUGS
    if (b == "commit-previous-term") {
      o.raft_bugs.commit_previous_term_by_counting = true;
    } else if (b == "skip-vote-log-check") {
      o.raft_bugs.skip_vote_log_check = true;
    } else if (b == "ack-before-persist") {
      o.node_bugs.ack_before_persist = true;
    } else if (b == "reads-without-read-index") {
      o.node_bugs.reads_without_read_index = true;
    } else if (b == "wal-skip-checksums") {
      o.node_bugs.wal_skip_checksums = true;
    } else if (b == "skip-dedup") {
      o.planted_skip_dedup = true;
    } else if (b == "proposer-time") {
      o.planted_proposer_time = true;
    } else if (b == "watch-gaps") {
      o.planted_watch_gaps = true;
    } else if (b == "compaction-drops-delete") {
      o.planted_compaction_drops_delete = true;
    } else if (b == "stale-token") {
      o.planted_stale_token = true;
    } else if (b == "skip-apply-auth") {
      o.planted_skip_apply_auth = true;
    } else if (b == "auth-before-barrier") {
      o.planted_auth_before_barrier = true;
    } else if (b == "sdk-key-per-attempt") {
      o.planted_sdk_key_per_attempt = true;
    } else if (b == "sdk-unknown-as-failed") {
      o.planted_sdk_unknown_as_failed = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown planted bug '", b,
                       "'; known: commit-previous-term, skip-vote-log-check, ack-before-persist, "
                       "reads-without-read-index, wal-skip-checksums, skip-dedup, proposer-time, "
                       "watch-gaps, compaction-drops-delete, stale-token, skip-apply-auth, "
                       "auth-before-barrier, sdk-key-per-attempt (with --sdk), "
                       "sdk-unknown-as-failed (with --sdk)"));
    }
#else
    return absl::InvalidArgumentError(
        absl::StrCat("--plant-bug ", b, ": planted bugs are not compiled into this build"));
#endif
  }
  BW_RETURN_IF_ERROR(o.Validate());
  return o;
}

void PrintSummary(const sim::SimResult& r, uint64_t seed) {
  const sim::SimStats& s = r.stats;
  std::printf(
      "seed %llu: %s | %.1fs simulated, %llu events, %llu messages (%llu lost) | ops: %llu ok, "
      "%llu failed, %llu unknown | %llu elections, %llu crashes, %llu partitions, %llu conf "
      "changes, %llu snapshots installed | disk: %llu halts, %llu refused starts, %llu full | "
      "leader %.0f ms after heal | digest %016llx\n",
      static_cast<unsigned long long>(seed), r.ok ? "ok" : "FAILED", s.virtual_us / 1e6,
      static_cast<unsigned long long>(s.events), static_cast<unsigned long long>(s.messages),
      static_cast<unsigned long long>(s.messages_dropped),
      static_cast<unsigned long long>(s.ops_ok), static_cast<unsigned long long>(s.ops_failed),
      static_cast<unsigned long long>(s.ops_unknown), static_cast<unsigned long long>(s.elections),
      static_cast<unsigned long long>(s.crashes), static_cast<unsigned long long>(s.partitions),
      static_cast<unsigned long long>(s.conf_changes),
      static_cast<unsigned long long>(s.snapshots_installed),
      static_cast<unsigned long long>(s.halts), static_cast<unsigned long long>(s.refused_starts),
      static_cast<unsigned long long>(s.disk_full), s.leader_after_heal_us / 1e3,
      static_cast<unsigned long long>(r.final_digest));
  if (s.log_entries_read > 0 || s.log_read_failures > 0) {
    std::printf("  raft log: %llu entries sent from the WAL, %llu sends whose read failed\n",
                static_cast<unsigned long long>(s.log_entries_read),
                static_cast<unsigned long long>(s.log_read_failures));
  }
  if (s.keyed_requests > 0) {
    std::printf(
        "  keyed: %llu requests, %llu attempts, %llu answers replayed, %llu reused keys "
        "refused\n",
        static_cast<unsigned long long>(s.keyed_requests),
        static_cast<unsigned long long>(s.keyed_attempts),
        static_cast<unsigned long long>(s.keyed_replays),
        static_cast<unsigned long long>(s.keyed_refused));
  }
  if (s.leases_granted > 0) {
    std::printf("  leases: %llu granted, %llu keep-alives answered, %llu revocations checked\n",
                static_cast<unsigned long long>(s.leases_granted),
                static_cast<unsigned long long>(s.lease_keepalives),
                static_cast<unsigned long long>(s.lease_revocations));
  }
  if (s.auth_changes > 0 || s.auth_honoured > 0) {
    std::printf(
        "  auth: %llu permission changes (%llu revocations), %llu operations honoured, "
        "%llu refused\n",
        static_cast<unsigned long long>(s.auth_changes),
        static_cast<unsigned long long>(s.auth_revocations),
        static_cast<unsigned long long>(s.auth_honoured),
        static_cast<unsigned long long>(s.auth_denied));
  }
  if (s.records_started > 0) {
    std::printf("  records: %llu jobs started, %llu taken over, %llu completed\n",
                static_cast<unsigned long long>(s.records_started),
                static_cast<unsigned long long>(s.records_taken_over),
                static_cast<unsigned long long>(s.records_completed));
  }
  if (s.sdk_calls > 0) {
    std::printf(
        "  sdk: %llu calls, %llu attempts, %llu retries, %llu ended unknown, %llu breakers "
        "opened, %llu ejections, %llu retries refused by the budget\n",
        static_cast<unsigned long long>(s.sdk_calls),
        static_cast<unsigned long long>(s.sdk_attempts),
        static_cast<unsigned long long>(s.sdk_retries),
        static_cast<unsigned long long>(s.sdk_unknown),
        static_cast<unsigned long long>(s.sdk_breaker_opened),
        static_cast<unsigned long long>(s.sdk_ejections),
        static_cast<unsigned long long>(s.sdk_budget_exhausted));
  }
  if (s.watch_events > 0) {
    std::printf("  watches: %llu events checked, %llu resumes, %llu cancels for compaction\n",
                static_cast<unsigned long long>(s.watch_events),
                static_cast<unsigned long long>(s.watch_resumes),
                static_cast<unsigned long long>(s.watch_compactions));
  }
}

void PrintFailure(const sim::SimResult& r, const SimFlags& f, uint64_t seed) {
  std::printf("\nviolation: %s\n\ntrace (last %zu events):\n", r.violation.c_str(),
              r.trace_tail.size());
  for (const std::string& line : r.trace_tail)
    std::printf("  %s\n", line.c_str());
  std::printf("\nreproduce with:\n  %s\n", ReproduceCommand(f, seed).c_str());
}

int RunSim(const SimFlags& f) {
  absl::StatusOr<sim::SimOptions> base = MakeOptions(f);
  if (!base.ok()) {
    std::fprintf(stderr, "bulwark sim: %s\n", std::string(base.status().message()).c_str());
    return 2;
  }
  if (f.verbose) {
    base->narrate = [](const std::string& line) { std::printf("  %s\n", line.c_str()); };
  }
  if (f.seeds == 0) {
    sim::SimOptions o = *base;
    o.seed = f.options.seed;
    sim::SimResult r = sim::RunSimulation(o);
    PrintSummary(r, f.options.seed);
    if (!r.ok) {
      PrintFailure(r, f, f.options.seed);
      return 1;
    }
    return 0;
  }
  auto start = std::chrono::steady_clock::now();
  double simulated_s = 0;
  for (uint64_t i = 0; i < f.seeds; ++i) {
    uint64_t seed = f.options.seed + i;
    sim::SimOptions o = *base;
    o.seed = seed;
    sim::SimResult r = sim::RunSimulation(o);
    simulated_s += r.stats.virtual_us / 1e6;
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!r.ok) {
      std::fprintf(stderr, "\n");
      PrintSummary(r, seed);
      PrintFailure(r, f, seed);
      return 1;
    }
    if ((i + 1) % 100 == 0 || i + 1 == f.seeds) {
      std::fprintf(stderr, "\rseeds %llu/%llu passed, %.1f s wall, %.0fx real time ",
                   static_cast<unsigned long long>(i + 1), static_cast<unsigned long long>(f.seeds),
                   wall, simulated_s / std::max(wall, 1e-9));
    }
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");
  std::printf(
      "%llu seeds passed (%d nodes, faults %s) in %.1f s; %.0f simulated seconds, %.0fx real "
      "time\n",
      static_cast<unsigned long long>(f.seeds), f.options.nodes, f.faults.c_str(), wall,
      simulated_s, simulated_s / std::max(wall, 1e-9));
  return 0;
}

}  // namespace

void AddSimCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<SimFlags>();
  CLI::App* cmd = app.add_subcommand("sim", "Run the deterministic cluster simulator");
  cmd->add_option("--seed", flags->options.seed, "Seed (with --seeds: the first of the sweep)");
  cmd->add_option("--seeds", flags->seeds, "Sweep this many consecutive seeds");
  cmd->add_option("--nodes", flags->options.nodes, "Voters in the initial cluster (1-7)");
  cmd->add_option("--clients", flags->options.clients, "Concurrent clients");
  cmd->add_option("--keys", flags->options.keys, "Keys the clients use");
  cmd->add_option("--faults", flags->faults,
                  "Comma-separated faults (" + sim::KnownFaults() + "), or all/none");
  cmd->add_option("--workload", flags->workload,
                  "What the clients do: registers (linearizability), exactly-once (keyed "
                  "etcd writes retried through the faults), leases (no lease revoked before "
                  "its TTL), watches (every revision once, in order, across failover and "
                  "compaction), records (idempotency records: fencing tokens, takeovers) or "
                  "auth (no revoked permission honoured)");
  cmd->add_flag("--sdk", flags->options.sdk_clients,
                "Registers: the clients call through the C++ SDK's resilience pipeline "
                "(retries, backoff, retry budget, breakers, ejection), one call per operation");
  cmd->add_option("--reuse-chance", flags->options.keyed_reuse_chance,
                  "Exactly-once: how often a request reuses an answered key (must be refused)");
  cmd->add_option("--safety-seconds", flags->safety_s, "Simulated seconds with faults on");
  cmd->add_option("--liveness-seconds", flags->liveness_s, "Simulated seconds after healing");
  cmd->add_flag("--lease-reads", flags->options.lease_reads, "Serve reads from the leader's lease");
  cmd->add_option("--election-ticks", flags->options.election_ticks, "Election timeout, in ticks");
  cmd->add_option("--heartbeat-ticks", flags->options.heartbeat_ticks,
                  "Heartbeat interval, in ticks");
  cmd->add_option("--tick-ms", flags->tick_ms, "Length of a tick, in simulated milliseconds");
  cmd->add_flag("-v,--verbose", flags->verbose, "Print the trace as it happens");
  cmd->add_option("--corrupt-nodes", flags->options.corrupt_nodes,
                  "Flip a bit in a synced WAL record of this many voters halfway through; they "
                  "must refuse to start (a majority: the cluster must halt safely)");
  cmd->add_flag("--rebuild", flags->options.rebuild_damaged,
                "After healing, replace each damaged voter with a fresh member (needs a "
                "damaged minority)");
  cmd->add_option("--plant-bug", flags->bugs,
                  "Plant a bug to see the checkers catch it (test builds only)");
  cmd->callback([flags, exit_code] { *exit_code = RunSim(*flags); });
}

void AddSimDemoCommand(CLI::App& app, int* exit_code) {
  auto seed = std::make_shared<uint64_t>(7);
  CLI::App* cmd = app.add_subcommand(
      "sim-demo",
      "A narrated simulated three-node cluster under client load, with crashes and partitions");
  cmd->add_option("--seed", *seed, "Seed of the run");
  cmd->callback([seed, exit_code] {
    std::printf(
        "bulwark sim-demo: a simulated three-node cluster, in one process from one seed.\nFour "
        "clients read, write and compare-and-set while the nemesis crashes "
        "nodes, cuts the network and drifts clocks; then everything heals and the checkers "
        "verify the run.\n\n");
    SimFlags f;
    f.options.seed = *seed;
    f.faults = "drop,duplicate,reorder,partition,crash,drift,snapshot,transfer";
    f.safety_s = 15;
    f.liveness_s = 5;
    f.verbose = true;
    f.progress_s = 2;
    int rc = RunSim(f);
    if (rc == 0) {
      std::printf(
          "\nEvery acknowledged write is on every replica, the replicas' states are identical, "
          "and the clients' history is linearizable.\n");
    }
    *exit_code = rc;
  });
}

}  // namespace bw::cli
