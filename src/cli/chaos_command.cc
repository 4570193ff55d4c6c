#include "cli/chaos_command.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "chaos/chaos.h"

namespace bw::cli {

namespace {

std::atomic<bool> g_stop{false};

struct ChaosFlags {
  bw::chaos::ChaosOptions o;
  std::string nemesis = "partition,kill,pause,loss,clock,member,power";
  std::string workload = "register,exactly-once,watch,txn,lock";
};

// Splits a comma list and checks each name against `known`.
bool ParseSet(const std::string& what, const std::string& list, const std::set<std::string>& known,
              std::set<std::string>* out) {
  out->clear();
  for (absl::string_view v : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    std::string s(v);
    if (!known.count(s)) {
      std::fprintf(stderr, "bulwark chaos: unknown %s \"%s\" (known: %s)\n", what.c_str(),
                   s.c_str(), absl::StrJoin(known, ", ").c_str());
      return false;
    }
    out->insert(s);
  }
  return true;
}

}  // namespace

void AddChaosCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ChaosFlags>();
  CLI::App* cmd = app.add_subcommand(
      "chaos",
      "Run bulwark processes in network namespaces under faults, record every operation, check "
      "the history (linearizability) and write an HTML report. Needs root. Exit 0 only when "
      "every checker passes.");
  cmd->add_option("--nodes", flags->o.nodes, "Members (3 or 5)")->check(CLI::Range(1, 9));
  cmd->add_option("--time-limit", flags->o.time_limit_s, "Seconds the run lasts")
      ->check(CLI::Range(10.0, 86400.0));
  cmd->add_option("--nemesis", flags->nemesis,
                  "Faults: partition,kill,pause,loss,clock,member,power (or none)");
  cmd->add_option("--workload", flags->workload,
                  "Workloads: register, exactly-once, watch (follows the exactly-once writes), "
                  "txn, lock");
  cmd->add_option("--out", flags->o.out_dir, "Directory for the report, history and logs")
      ->required();
  cmd->add_option("--clients", flags->o.clients, "Concurrent clients")->check(CLI::Range(1, 200));
  cmd->add_option("--quiet", flags->o.quiet_s, "Seconds between faults (drawn from [x, 2x])");
  cmd->add_option("--fault-duration", flags->o.fault_s, "Seconds a fault lasts (from [x, 2x])");
  cmd->add_option("--seed", flags->o.seed, "Seed of the fault schedule and the clients' choices");
  cmd->add_option("--bulwark", flags->o.bulwark,
                  "The bulwark binary the members run (default: this one)");
  cmd->add_option("--plant-bug", flags->o.plant_bug,
                  "Debug: run the members with a planted bug the checkers must catch "
                  "(stale-reads, skip-dedup, watch-gaps, ack-before-fsync; unfenced-lock: the lock "
                  "workload's clients skip the fence)");
  cmd->add_flag("--progress,!--no-progress", flags->o.progress, "Progress lines while it runs");
  cmd->callback([flags, exit_code] {
    bw::chaos::ChaosOptions& o = flags->o;
    if (flags->nemesis == "none") flags->nemesis.clear();
    if (!ParseSet("nemesis", flags->nemesis, bw::chaos::KnownNemeses(), &o.nemeses) ||
        !ParseSet("workload", flags->workload, bw::chaos::KnownWorkloads(), &o.workloads)) {
      *exit_code = 2;
      return;
    }
    if (o.workloads.empty()) {
      std::fprintf(stderr, "bulwark chaos: --workload needs at least one workload\n");
      *exit_code = 2;
      return;
    }
    if (!o.plant_bug.empty() && o.plant_bug != "stale-reads" && o.plant_bug != "skip-dedup" &&
        o.plant_bug != "watch-gaps" && o.plant_bug != "ack-before-fsync" &&
        o.plant_bug != "unfenced-lock") {
      std::fprintf(stderr,
                   "bulwark chaos: --plant-bug: known: stale-reads, skip-dedup, watch-gaps, "
                   "ack-before-fsync, unfenced-lock\n");
      *exit_code = 2;
      return;
    }
    if (o.bulwark.empty()) {
      char self[4096];
      ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
      if (n <= 0) {
        std::fprintf(stderr, "bulwark chaos: cannot find this binary; pass --bulwark\n");
        *exit_code = 2;
        return;
      }
      o.bulwark.assign(self, static_cast<size_t>(n));
    }
    o.command_line = "bulwark chaos --nodes " + std::to_string(o.nodes) + " --time-limit " +
                     std::to_string(static_cast<int>(o.time_limit_s)) + " --nemesis " +
                     (flags->nemesis.empty() ? "none" : flags->nemesis) + " --workload " +
                     flags->workload + " --seed " + std::to_string(o.seed) +
                     (o.plant_bug.empty() ? "" : " --plant-bug " + o.plant_bug) + " --out " +
                     o.out_dir;
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_stop = true; };
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    *exit_code = bw::chaos::RunChaos(o, g_stop);
  });
}

}  // namespace bw::cli
