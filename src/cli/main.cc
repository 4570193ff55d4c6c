// The `bulwark` binary: one command with subcommands, in the manner of
// `consul` and `cockroach`.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/bench_command.h"
#include "cli/chaos_command.h"
#include "cli/demo_command.h"
#include "cli/sim_command.h"
#include "cli/start_command.h"
#include "cli/storage_command.h"

int main(int argc, char** argv) {
  CLI::App app{"bulwark: a fault-tolerant, replicated key-value store"};
  app.set_version_flag("--version", "bulwark 0.1.0");
  app.require_subcommand(1);
  int exit_code = 0;
  bw::cli::AddStartCommand(app, &exit_code);
  bw::cli::AddSimCommand(app, &exit_code);
  bw::cli::AddDemoCommand(app, &exit_code);
  bw::cli::AddSimDemoCommand(app, &exit_code);
  bw::cli::AddCheckDataCommand(app, &exit_code);
  bw::cli::AddStorageLoadCommand(app, &exit_code);
  bw::cli::AddBenchCommand(app, &exit_code);
  bw::cli::AddChaosCommand(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
