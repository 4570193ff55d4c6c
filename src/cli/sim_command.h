// `bulwark sim` and the simulated `bulwark demo`.
#pragma once

#include <CLI/CLI.hpp>

namespace bw::cli {

// Registers the subcommands on `app`; the returned callbacks run them.
void AddSimCommand(CLI::App& app, int* exit_code);
void AddSimDemoCommand(CLI::App& app, int* exit_code);

}  // namespace bw::cli
