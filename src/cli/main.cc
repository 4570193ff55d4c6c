// The `bulwark` binary: one command with subcommands, in the manner of
// `consul` and `cockroach`.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "absl/synchronization/mutex.h"

#include "cli/bench_command.h"
#include "cli/chaos_command.h"
#include "cli/check_data_command.h"
#include "cli/demo_command.h"
#include "cli/sim_command.h"
#include "cli/start_command.h"

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, so every absl::Mutex (gRPC takes
  // several per call) feeds a global lock-order graph for deadlock reports:
  // about 1.5 % of a member's CPU under load (perf: GraphCycles::GetId).
  // Our own code does not use absl::Mutex, so the graph only ever watched gRPC.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"bulwark: a fault-tolerant, replicated key-value store"};
  app.set_version_flag("--version", "bulwark 0.1.0");
  app.require_subcommand(1);
  int exit_code = 0;
  bw::cli::AddStartCommand(app, &exit_code);
  bw::cli::AddSimCommand(app, &exit_code);
  bw::cli::AddDemoCommand(app, &exit_code);
  bw::cli::AddSimDemoCommand(app, &exit_code);
  bw::cli::AddCheckDataCommand(app, &exit_code);
  bw::cli::AddBenchCommand(app, &exit_code);
  bw::cli::AddChaosCommand(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
