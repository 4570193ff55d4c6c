// `bulwark demo`: a local three-member cluster of real processes.
#pragma once

#include <CLI/CLI.hpp>

namespace bw::cli {

void AddDemoCommand(CLI::App& app, int* exit_code);

}  // namespace bw::cli
